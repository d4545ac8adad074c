"""`make run`: start the suite on the embedded database, prepare a dataset, print its chunk table.

Usage: python scripts/run_sample.py [DATASET] (default: the sample dataset shipped in the repo).
DEAL_SIZE in the environment overrides the deal size (default 256KiB for the sample, else 32GiB);
SINGULARITY_CONFIG another configuration than ./config.toml (its own ports and paths).
REPLICATE=1 then replicates the dataset to three providers of a local fake network: the fake
boost of scripts/fakes (which downloads each CAR from the hosting service, as a provider would,
and puts the deal on the chain) and the fake Lotus node, with deal tracking and ranking on.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

from shared import config as config_module

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "sample" / "dataset"


def singularity(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cli", *args], check=check, text=True, capture_output=True)


def main() -> int:
    dataset = Path(sys.argv[1] if len(sys.argv) > 1 else SAMPLE).resolve()
    if not dataset.is_dir():
        print(f"error: {dataset} is not a directory", file=sys.stderr)
        return 2
    deal_size = os.environ.get("DEAL_SIZE") or ("256KiB" if dataset == SAMPLE else "32GiB")
    os.chdir(REPO)  # ./config.toml and ./.singularity, unless $SINGULARITY_CONFIG names another config
    fakes = None
    if os.environ.get("REPLICATE") not in (None, "", "0"):
        fakes = FakeNetwork.start(run_log(config_module.find_config_file()).parent / "fake-network")
    try:
        return run(dataset, deal_size, fakes)
    finally:
        if fakes:
            fakes.stop()


def run(dataset: Path, deal_size: str, fakes: "FakeNetwork | None") -> int:
    config = run_config(dataset, fakes)
    log_path = run_log(config)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        suite = subprocess.Popen([sys.executable, "-m", "cli", "--config", str(config), "run"],
                                 stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for_service(suite, log_path, config)
        name = f"{dataset.name}-{time.strftime('%Y%m%d-%H%M%S')}"
        print(f"Preparing {dataset} as {name!r} (deal size {deal_size}); services log to {log_path}")
        result = subprocess.run([sys.executable, "-m", "cli", "--config", str(config), "prep", "start", "--name", name, "--path", str(dataset),
                                 "--deal-size", deal_size, "--wait"])
        if result.returncode != 0 or fakes is None:
            return result.returncode
        return fakes.replicate(config, name)
    finally:
        suite.send_signal(signal.SIGINT)
        try:
            suite.wait(timeout=20)
        except subprocess.TimeoutExpired:
            suite.kill()


def run_log(config: Path) -> Path:
    """Beside the database of the configuration `run` uses: ./.singularity/run.log by default."""
    try:
        path = config_module.load(config).database.path
    except config_module.ConfigError as exc:
        raise SystemExit(f"error: configuration: {exc}") from None
    return (REPO / ".singularity" if path == "memory" else Path(path).resolve().parent) / "run.log"


def run_config(dataset: Path, fakes: "FakeNetwork | None" = None) -> Path:
    """The config (./config.toml or $SINGULARITY_CONFIG) with the dataset added to
    deal_preparation_service.dataset_roots, for this run only: `make run DATASET=/path` exports
    that directory and nothing else new."""
    source = config_module.find_config_file()
    data = tomllib.loads(source.read_text()) if source else {}
    section = data.setdefault("deal_preparation_service", {})
    section["dataset_roots"] = [*section.get("dataset_roots", []), str(dataset)]
    if fakes:
        fakes.configure(data)
    path = REPO / ".singularity" / "make-run.toml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(f"# Written by `make run` from {source or 'the defaults'}; rewritten at every run.\n"
                    + config_module.to_toml(data))
    return path


def wait_for_service(suite: subprocess.Popen, log_path: Path, config: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if suite.poll() is not None:
            sys.stderr.write(log_path.read_text()[-3000:])
            raise SystemExit(f"singularity run exited with code {suite.returncode}")
        if singularity("--config", str(config), "prep", "list", "--json", check=False).returncode == 0:
            return
        time.sleep(0.3)
    raise SystemExit(f"the preparation service did not answer within {timeout:.0f}s; see {log_path}")


class FakeNetwork:
    """The fake boost and Lotus of scripts/fakes, and a throwaway wallet, for REPLICATE=1."""
    PROVIDERS = ("f01000", "f01001", "f01002")

    def __init__(self, lotus: subprocess.Popen, url: str, directory: Path):
        self.lotus, self.url, self.dir = lotus, url, directory

    @classmethod
    def start(cls, directory: Path) -> "FakeNetwork":
        sys.path.insert(0, str(REPO))
        from scripts.fakes import boost
        from shared.deal_params import encode_address
        (directory / "keys").mkdir(parents=True, exist_ok=True)
        boost.install(directory)
        (directory / "control.json").write_text('{"publish": true, "download": true}')
        wallet = encode_address(1, bytes(range(20)))
        key = directory / "keys" / "wallet.key"
        key.write_text('{"Type": "secp256k1", "PrivateKey": "ZmFrZS1rZXk="}'.encode().hex())
        key.chmod(0o600)
        import socket
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        lotus = subprocess.Popen([sys.executable, "-m", "scripts.fakes.lotus", str(port), f"{wallet}=f0100200"],
                                 stdout=subprocess.PIPE, text=True)
        url = lotus.stdout.readline().strip()
        network = cls(lotus, url, directory)
        network.wallet, network.key = wallet, key
        return network

    def configure(self, data: dict) -> None:
        data.setdefault("connection", {})["full_node_api"] = self.url
        data.setdefault("deal_making_service", {}).update(enabled=True, boost_path=str(self.dir / "boost"),
                                                           key_dir=str(self.dir / "keys"), timeout=30.0)
        data.setdefault("deal_tracking_service", {}).update(enabled=True, interval=2.0)
        data.setdefault("ranking_service", {}).update(enabled=True, sources=[], providers=list(self.PROVIDERS))
        data.setdefault("replication_service", {}).update(enabled=True, interval=2.0, verified=False)

    def replicate(self, config: Path, name: str) -> int:
        base = [sys.executable, "-m", "cli", "--config", str(config), "rep"]
        criteria = "provider in (" + ", ".join(self.PROVIDERS) + ")"
        print(f"Replicating {name!r} to 2 of {', '.join(self.PROVIDERS)} on a local fake network "
              f"(fake boost and Lotus in {self.dir})")
        started = subprocess.run([*base, "start", "--dataset-id", name, "--min-replicas", "2", "--criteria", criteria,
                                  "--client", self.wallet, "--key-path", str(self.key), "--json"],
                                 capture_output=True, text=True)
        if started.returncode != 0:
            sys.stderr.write(started.stderr)
            return started.returncode
        import json
        request_id = json.loads(started.stdout)["id"]
        return subprocess.run([*base, "status", request_id, "--wait"]).returncode

    def stop(self) -> None:
        self.lotus.terminate()
        try:
            self.lotus.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.lotus.kill()


if __name__ == "__main__":
    sys.exit(main())

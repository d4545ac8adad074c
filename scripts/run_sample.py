"""`make run`: start the suite on the embedded database, prepare a dataset, print its chunk table.

Usage: python scripts/run_sample.py [DATASET] (default: the sample dataset shipped in the repo).
DEAL_SIZE in the environment overrides the deal size (default 256KiB for the sample, else 32GiB);
SINGULARITY_CONFIG another configuration than ./config.toml (its own ports and paths).
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
    config = run_config(dataset)
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
        return result.returncode
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


def run_config(dataset: Path) -> Path:
    """The config (./config.toml or $SINGULARITY_CONFIG) with the dataset added to
    deal_preparation_service.dataset_roots, for this run only: `make run DATASET=/path` exports
    that directory and nothing else new."""
    source = config_module.find_config_file()
    data = tomllib.loads(source.read_text()) if source else {}
    section = data.setdefault("deal_preparation_service", {})
    section["dataset_roots"] = [*section.get("dataset_roots", []), str(dataset)]
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


if __name__ == "__main__":
    sys.exit(main())

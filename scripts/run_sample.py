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
from pathlib import Path

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
    log_path = run_log()
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        suite = subprocess.Popen([sys.executable, "-m", "cli", "run"], stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for_service(suite, log_path)
        name = f"{dataset.name}-{time.strftime('%Y%m%d-%H%M%S')}"
        print(f"Preparing {dataset} as {name!r} (deal size {deal_size}); services log to {log_path}")
        result = subprocess.run([sys.executable, "-m", "cli", "prep", "start", "--name", name, "--path", str(dataset),
                                 "--deal-size", deal_size, "--wait"])
        return result.returncode
    finally:
        suite.send_signal(signal.SIGINT)
        try:
            suite.wait(timeout=20)
        except subprocess.TimeoutExpired:
            suite.kill()


def run_log() -> Path:
    """Beside the database of the configuration `run` uses: ./.singularity/run.log by default."""
    from shared.config import ConfigError, load

    try:
        path = load().database.path
    except ConfigError as exc:
        raise SystemExit(f"error: configuration: {exc}") from None
    return (REPO / ".singularity" if path == "memory" else Path(path).resolve().parent) / "run.log"


def wait_for_service(suite: subprocess.Popen, log_path: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if suite.poll() is not None:
            sys.stderr.write(log_path.read_text()[-3000:])
            raise SystemExit(f"singularity run exited with code {suite.returncode}")
        if singularity("prep", "list", "--json", check=False).returncode == 0:
            return
        time.sleep(0.3)
    raise SystemExit(f"the preparation service did not answer within {timeout:.0f}s; see {log_path}")


if __name__ == "__main__":
    sys.exit(main())

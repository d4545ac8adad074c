"""Running `singularity` as real processes against the test database."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path


from tests.conftest import free_port
from tests.wait import BUDGET


def write_config(tmp_path: Path, db_url: str, **sections: dict) -> Path:
    base = {
        "connection": {"database": db_url},
        "database": {"enabled": False},
        "deal_preparation_service": {"port": free_port(), "worker_timeout": 2.0, "maintenance_interval": 0.2},
        "deal_preparation_worker": {"out_dir": str(tmp_path / "cars"), "heartbeat_interval": 0.2,
                                    "poll_interval": 0.05},
        "http_hosting_service": {"port": free_port(), "car_dir": str(tmp_path / "cars")},
        "deal_making_service": {"port": free_port()},
    }
    for name, values in sections.items():
        base.setdefault(name, {}).update(values)
    base["connection"]["deal_preparation_service"] = f"http://127.0.0.1:{base['deal_preparation_service']['port']}"
    base["connection"]["http_hosting_service"] = f"http://127.0.0.1:{base['http_hosting_service']['port']}"
    base["connection"]["deal_making_service"] = f"http://127.0.0.1:{base['deal_making_service']['port']}"
    lines = []
    for name, values in base.items():
        lines.append(f"[{name}]")
        lines += [f"{key} = {toml_value(value)}" for key, value in values.items()]
    path = tmp_path / f"config-{free_port()}.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid TOML basic string
    return str(value)


def singularity(config: Path, *args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "cli", "--config", str(config), *args],
                            capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"singularity {' '.join(args)} exited {result.returncode}: {result.stderr}")
    return result


def start(config: Path, *modules: str, log: Path | None = None) -> subprocess.Popen:
    out = open(log, "ab") if log else subprocess.DEVNULL
    return subprocess.Popen([sys.executable, "-m", "cli", "--config", str(config), "run", *modules],
                            stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def stop(process: subprocess.Popen, sig: int = signal.SIGINT) -> None:
    if process.poll() is None:
        os.killpg(process.pid, sig)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def wait_http(url: str, timeout: float = BUDGET) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1).close()
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"{url} did not answer within {timeout}s")

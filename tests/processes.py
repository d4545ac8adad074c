"""Running `singularity` as real processes against the test database."""
from __future__ import annotations

import asyncio
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
        "deal_preparation_service": {"port": free_port(), "worker_timeout": 2.0, "maintenance_interval": 0.2,
                                     "dataset_roots": [str(tmp_path)]},
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
    if isinstance(value, (str, list)):
        return json.dumps(value)  # a JSON string (or list of them) is a valid TOML value
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


def embedded_config(tmp_path: Path, port: int, **sections: dict) -> Path:
    """A config whose `run` starts its own embedded database on `port`, with its data under tmp_path."""
    return write_config(tmp_path, f"mongodb://127.0.0.1:{port}/singularity",
                        database={"enabled": True, "path": str(tmp_path / "database"), "port": port}, **sections)


def processes_with(*words: str) -> list[int]:
    """Pids of live processes whose command line holds every one of `words` as an argument."""
    import psutil

    found = []
    for process in psutil.process_iter(["pid", "cmdline", "status"]):
        cmdline = process.info["cmdline"] or []
        if process.info["status"] != psutil.STATUS_ZOMBIE and all(word in cmdline for word in words):
            found.append(process.info["pid"])
    return found


def database_servers(port: int) -> list[int]:
    """The nx-27017 processes serving `port`, however they were started."""
    import psutil

    found = []
    for pid in processes_with("-p", str(port)):
        try:
            if any("nx_27017" in part for part in psutil.Process(pid).cmdline()):
                found.append(pid)
        except psutil.Error:
            pass
    return found


def wait_until(predicate, timeout: float, interval: float = 0.05, what: str = "condition"):
    """Poll a synchronous predicate; its last truthy value, or AssertionError after `timeout` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"{what}: not within {timeout}s")


async def cli_against(service: str, api, tmp_path: Path, *args: str) -> tuple[int, str, str]:
    """`singularity ARGS` as a process whose config points `connection.<service>` at the aiohttp
    test server `api`: its exit code, stdout and stderr."""
    config = tmp_path / "cli.toml"
    config.write_text(f'[connection]\n{service} = "{str(api.make_url("")).rstrip("/")}"\n'
                      '[database]\nenabled = false\n')
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "from cli.main import main; main()", "--config", str(config), *args,
        cwd=str(Path(__file__).parents[1]), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    stdout, stderr = await process.communicate()
    return process.returncode, stdout.decode(), stderr.decode()

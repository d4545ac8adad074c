"""The embedded database: a local `nx-27017` MongoDB wire-protocol server under `.singularity/`.

Started when `[database] enabled = true`; an instance already answering on bind:port is reused
and left running; the one we started is stopped when the suite exits.
"""
from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)


class EmbeddedDatabaseError(RuntimeError):
    pass


def _answers(host: str, port: int, timeout: float = 0.5) -> bool:
    """A MongoDB `hello` round-trip, so a foreign service on the port does not count as a database."""
    from pymongo import MongoClient
    from pymongo.errors import PyMongoError

    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError:
        return False
    client = MongoClient(host, port, serverSelectionTimeoutMS=int(timeout * 1000), connectTimeoutMS=int(timeout * 1000))
    try:
        client.admin.command("ping")
        return True
    except PyMongoError:
        return False
    finally:
        client.close()


def _port_taken(host: str, port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server binds
        try:
            probe.bind((host, port))
        except OSError:
            return True
    return False


@dataclass
class EmbeddedDatabase:
    path: str  # a directory, or "memory" for a throwaway in-memory server
    host: str = "127.0.0.1"
    port: int = 37000
    start_timeout: float = 20.0
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"mongodb://{self.host}:{self.port}"

    def start(self) -> "EmbeddedDatabase":
        if _answers(self.host, self.port):
            log.info("reusing the database already running at %s", self.url)
            return self
        if _port_taken(self.host, self.port):
            raise EmbeddedDatabaseError(
                f"port {self.host}:{self.port} is taken by a program that is not a MongoDB server "
                "(change [database] port, or set enabled = false and give [connection] database)")
        if self.path == "memory":
            data_dir, log_dir = "memory", Path(os.environ.get("TMPDIR", "/tmp"))
        else:
            data_path = Path(self.path).resolve()
            data_path.mkdir(parents=True, exist_ok=True)
            data_dir, log_dir = str(data_path), data_path
        argv = [
            sys.executable, "-m", "nx_27017.nx_27017",
            "--data-dir", data_dir, "--host", self.host, "-p", str(self.port),
            "--log-file", str(log_dir / f"nx-27017-{self.port}.log"),
            "--pid-file", str(log_dir / f"nx-27017-{self.port}.pid"),
        ]
        # The server logs every command at INFO to its log file; its stderr would drown ours.
        self.process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise EmbeddedDatabaseError(
                    f"the embedded database exited with code {self.process.returncode}; "
                    f"see {log_dir / f'nx-27017-{self.port}.log'}")
            if _answers(self.host, self.port):
                log.info("embedded database started at %s (data in %s)", self.url, data_dir)
                return self
            time.sleep(0.1)
        self.stop()
        raise EmbeddedDatabaseError(f"the embedded database did not answer on {self.url} within {self.start_timeout:.0f}s")

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def __enter__(self) -> "EmbeddedDatabase":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

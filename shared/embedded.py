"""The embedded database: a local `nx-27017` MongoDB wire-protocol server under `.singularity/`.

Started when `[database] enabled = true`. Who stops it is settled by ownership:
- the process that starts the server owns it: `supervise()` restarts it when it dies (with backoff,
  logged) and `stop()` stops it;
- the server is started with PR_SET_PDEATHSIG, so it dies with its owner even after a `kill -9`;
  where that is unavailable, the owner record beside the data (`nx-27017-<port>.owner.json`) lets
  the next run adopt a server whose run is gone, and stop it on its own exit;
- a process that finds the server answering while the owner named in the record is alive (or with
  no record: a server started by hand) is a guest: it never stops it, and starts one itself only
  when the server is gone and its owner with it.

Start it from a thread that lives as long as the server should (the main thread): the kernel's
parent-death signal is tied to the thread that forked the server.
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

log = logging.getLogger(__name__)

# Seconds before the 1st, 2nd, ... restart of a server that keeps dying. The first one waits too:
# a server that dies at once (a corrupt file, a full disk) must not be restarted in a tight loop.
RESTART_BACKOFF = (2.0, 4.0, 8.0, 15.0, 30.0)
STABLE_AFTER = 60.0  # seconds up after which a death counts as the first again
OWNER_POLL = 0.25  # seconds between checks that our server is alive (a cheap process lookup)
GUEST_POLL = 2.0  # seconds between checks that someone else's server still answers

# Run in the server's own interpreter before nx-27017: ask the kernel for SIGTERM when the process
# that started us goes, then make sure it has not gone already (it could die before the prctl).
_LAUNCHER = """\
import ctypes, os, runpy, signal, sys
parent = int(sys.argv[1])
try:
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
except (AttributeError, OSError):
    pass  # not Linux: the owner record lets the next run adopt and stop us
if os.getppid() != parent:
    sys.exit(0)
def _end_after_owner():
    # The parent-death signal does not always arrive: servers of killed owners were found living on
    # under init with nothing pending (a plain SIGTERM ended them at once). So watch the parent too:
    # once it is gone, a grace for that signal's clean exit, then out.
    while os.getppid() == parent:
        time.sleep(0.5)
    time.sleep(5.0)
    os._exit(0)
import threading, time
threading.Thread(target=_end_after_owner, daemon=True).start()
sys.argv = ["nx_27017", *sys.argv[2:]]
from shared import nx_batches
nx_batches.install()  # one SQLite transaction per write command (see shared/nx_batches.py)
runpy.run_module("nx_27017.nx_27017", run_name="__main__")
"""


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


def process_identity(pid: int) -> float | None:
    """The start time of a live process, None if it is gone (zombies count as gone). With the pid
    it names one process: a pid alone may have been reused since it was recorded."""
    try:
        process = psutil.Process(pid)
        if process.status() in (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD):
            return None
        return process.create_time()
    except psutil.Error:
        return None


def alive(pid: int | None, identity: float | None) -> bool:
    return pid is not None and identity is not None and process_identity(pid) == identity


@dataclass
class EmbeddedDatabase:
    path: str  # a directory, or "memory" for a throwaway in-memory server
    host: str = "127.0.0.1"
    port: int = 37000
    start_timeout: float = 20.0
    process: subprocess.Popen | None = None  # the server, when this process started it
    server_pid: int | None = None  # the server this process owns: started or adopted
    server_identity: float | None = None

    @property
    def url(self) -> str:
        return f"mongodb://{self.host}:{self.port}"

    @property
    def owner(self) -> bool:
        return self.server_pid is not None

    @property
    def _files_dir(self) -> Path:
        if self.path == "memory":
            return Path(os.environ.get("TMPDIR", "/tmp"))
        return Path(self.path).resolve()

    @property
    def owner_file(self) -> Path:
        return self._files_dir / f"nx-27017-{self.port}.owner.json"

    @property
    def log_file(self) -> Path:
        return self._files_dir / f"nx-27017-{self.port}.log"

    # --- starting -------------------------------------------------------------------------------

    def start(self) -> "EmbeddedDatabase":
        if _answers(self.host, self.port):
            self._adopt_or_join()
            return self
        self._launch()
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self._started(_answers(self.host, self.port)):
                return self
            time.sleep(0.1)
        self._give_up()

    async def start_async(self) -> "EmbeddedDatabase":
        """start(), without blocking the event loop it is called from (the supervisor's)."""
        if await asyncio.to_thread(_answers, self.host, self.port):
            self._adopt_or_join()
            return self
        self._launch()  # here, in the loop's thread: see the module docstring
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self._started(await asyncio.to_thread(_answers, self.host, self.port)):
                return self
            await asyncio.sleep(0.1)
        self._give_up()

    def _launch(self) -> None:
        if _port_taken(self.host, self.port):
            raise EmbeddedDatabaseError(
                f"port {self.host}:{self.port} is taken by a program that is not a MongoDB server "
                "(change [database] port, or set enabled = false and give [connection] database)")
        files = self._files_dir
        files.mkdir(parents=True, exist_ok=True)
        pid_file = files / f"nx-27017-{self.port}.pid"
        # Nothing answers on the port, so a pid file left by a killed server is stale; kept, it
        # would stop the new server from starting should its pid have been reused meanwhile.
        pid_file.unlink(missing_ok=True)
        argv = [
            sys.executable, "-c", _LAUNCHER, str(os.getpid()),
            "--data-dir", "memory" if self.path == "memory" else str(files), "--host", self.host, "-p", str(self.port),
            "--log-file", str(self.log_file), "--pid-file", str(pid_file),
        ]
        # The server logs every command at INFO to its log file; its stderr would drown ours. Its
        # own session keeps a Ctrl-C at the terminal for `run`, which stops it last.
        self.process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                        start_new_session=True)
        self.server_pid, self.server_identity = self.process.pid, process_identity(self.process.pid)

    def _started(self, answers: bool) -> bool:
        """One look at a server being started: True once it answers; raises if it exited."""
        if self.process.poll() is not None:
            code = self.process.returncode
            self.process = self.server_pid = self.server_identity = None
            if _answers(self.host, self.port):  # another process bound the port first: use theirs
                self._adopt_or_join()
                return True
            raise EmbeddedDatabaseError(f"the embedded database exited with code {code}; see {self.log_file}")
        if not answers:
            return False
        self._write_owner()
        log.info("embedded database started at %s (pid %d, data in %s)", self.url, self.server_pid,
                 "memory" if self.path == "memory" else self._files_dir)
        return True

    def _give_up(self):
        self.stop()
        raise EmbeddedDatabaseError(f"the embedded database did not answer on {self.url} within {self.start_timeout:.0f}s")

    # --- ownership ------------------------------------------------------------------------------

    def _read_owner(self) -> dict | None:
        try:
            record = json.loads(self.owner_file.read_text())
        except (OSError, ValueError):
            return None
        return record if isinstance(record, dict) else None

    def _write_owner(self) -> None:
        record = {"run": os.getpid(), "runIdentity": process_identity(os.getpid()), "server": self.server_pid,
                  "serverIdentity": self.server_identity, "host": self.host, "port": self.port}
        temporary = self.owner_file.with_suffix(f".tmp{os.getpid()}")
        try:
            temporary.write_text(json.dumps(record))
            os.replace(temporary, self.owner_file)
        except OSError as exc:  # the record only helps a later run adopt the server
            log.warning("cannot write %s: %s", self.owner_file, exc)

    def _remove_owner(self) -> None:
        record = self._read_owner()
        if record and record.get("run") == os.getpid():
            self.owner_file.unlink(missing_ok=True)

    def _owner_alive(self, record: dict | None) -> bool:
        return bool(record) and alive(record.get("run"), record.get("runIdentity"))

    def _adopt_or_join(self) -> None:
        record = self._read_owner()
        if (record and record.get("port") == self.port and not self._owner_alive(record)
                and alive(record.get("server"), record.get("serverIdentity"))):
            self.server_pid, self.server_identity = record["server"], record["serverIdentity"]
            self._write_owner()
            log.warning("adopted the embedded database at %s (pid %d) left by run %s, which is gone; "
                        "it stops when this run does", self.url, self.server_pid, record.get("run"))
        else:
            log.info("reusing the database already running at %s; its owner stops it", self.url)

    def _server_alive(self) -> bool:
        if self.process is not None:
            return self.process.poll() is None
        return alive(self.server_pid, self.server_identity)

    # --- supervising ----------------------------------------------------------------------------

    async def supervise(self) -> None:
        """Until cancelled: restart our server when it dies; as a guest, take over a server that
        disappeared along with its owner."""
        failures, up_since = 0, time.monotonic()
        while True:
            try:
                if self.owner:
                    await asyncio.sleep(OWNER_POLL)
                    if self._server_alive():
                        if time.monotonic() - up_since > STABLE_AFTER:
                            failures = 0
                        continue
                    code = self.process.returncode if self.process is not None else None
                    log.warning("the embedded database (pid %d) died%s%s", self.server_pid,
                                f" with code {code}" if code is not None else "",
                                "; its in-memory data is lost" if self.path == "memory" else "")
                    self.process = self.server_pid = self.server_identity = None
                else:
                    await asyncio.sleep(GUEST_POLL)
                    if self._owner_alive(self._read_owner()) or await asyncio.to_thread(_answers, self.host, self.port):
                        continue  # its owner restarts it, or it is there
                    log.warning("the database at %s is gone along with its owner; starting it", self.url)
                delay = RESTART_BACKOFF[min(failures, len(RESTART_BACKOFF) - 1)]
                failures += 1
                log.warning("restarting the embedded database in %.0fs (attempt %d)", delay, failures)
                await asyncio.sleep(delay)
                try:
                    await self.start_async()
                except EmbeddedDatabaseError as exc:
                    log.error("cannot restart the embedded database: %s", exc)
                    continue
                up_since = time.monotonic()
                if self.owner:
                    log.warning("embedded database back at %s (pid %d)", self.url, self.server_pid)
            except asyncio.CancelledError:
                raise
            except Exception:  # the supervisor must outlive its own bugs
                log.exception("embedded database supervision failed; retrying")

    # --- stopping -------------------------------------------------------------------------------

    def stop(self) -> None:
        process, self.process = self.process, None
        pid, identity = self.server_pid, self.server_identity
        self.server_pid = self.server_identity = None
        if pid is None:
            return  # a guest: the server is not ours to stop
        self._remove_owner()
        if process is not None:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            return
        # Adopted: not our child, so poll for its end instead of waiting on it.
        for sig, patience in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
            if not alive(pid, identity):
                return
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                return
            deadline = time.monotonic() + patience
            while alive(pid, identity) and time.monotonic() < deadline:
                time.sleep(0.05)
        log.info("embedded database (pid %d) stopped", pid)

    def __enter__(self) -> "EmbeddedDatabase":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

"""`singularity run` as a user starts it: which modules it starts, what it refuses, and a worker that
really runs `parallelism` jobs at once. Real processes against the test database."""
from __future__ import annotations

import socket

import pytest

from shared import models
from tests.processes import singularity, start, stop, wait_http, write_config
from tests.scan_helpers import write_random
from tests.wait import wait_until

MiB = 1 << 20
# Every module and the config section that enables it.
SECTIONS = {"preparation": "deal_preparation_service", "worker": "deal_preparation_worker",
            "dealmaking": "deal_making_service", "tracking": "deal_tracking_service",
            "hosting": "http_hosting_service"}


# Health records of workers (a run may report one of its own).
WORKERS = {"kind": {"$ne": "run"}}


def only_enabled(*modules: str) -> dict:
    return {section: {"enabled": name in modules} for name, section in SECTIONS.items()}


def answers(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def port_of(config_file, section: str) -> int:
    import tomllib

    with open(config_file, "rb") as f:
        return tomllib.load(f)[section]["port"]


def one_line_error(result) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


@pytest.mark.parametrize("enabled", [("preparation", "hosting"), ("worker", "dealmaking")])
async def test_run_without_names_starts_exactly_the_enabled_modules(db, db_url, tmp_path, enabled):
    config = write_config(tmp_path, db_url, **only_enabled(*enabled))
    ports = {name: port_of(config, SECTIONS[name]) for name in ("preparation", "dealmaking", "hosting")}
    log = tmp_path / "run.log"
    process = start(config, log=log)
    try:
        for name in enabled:
            if name in ports:
                wait_http(f"http://127.0.0.1:{ports[name]}/", timeout=60)
        if "worker" in enabled:
            await wait_until(lambda: db[models.HEALTH].count_documents(WORKERS), what="the worker to report health")
        text = log.read_text()
        assert f"starting {', '.join(n for n in SECTIONS if n in enabled)}\n" in text, text
        assert process.poll() is None, text
        for name, port in ports.items():
            assert answers(port) == (name in enabled), f"{name} on port {port}"
        if "worker" not in enabled:
            # A worker reports health as it starts, before its first job: by now it would have.
            assert await db[models.HEALTH].count_documents(WORKERS) == 0
    finally:
        stop(process)
    assert process.returncode == 0, log.read_text()


@pytest.mark.parametrize("names", [["nonsense"], ["preparation", "nonsense"], ["worker", "worker2"]])
def test_run_refuses_an_unknown_module_in_one_line(tmp_path, db_url, names):
    config = write_config(tmp_path, db_url)
    result = singularity(config, "run", *names, check=False, timeout=60)
    assert result.returncode == 2
    line = one_line_error(result)
    assert "unknown module" in line and repr(names[-1]) in line


def test_run_with_no_module_enabled_refuses_in_one_line(tmp_path, db_url):
    config = write_config(tmp_path, db_url, **only_enabled())
    result = singularity(config, "run", check=False, timeout=60)
    assert result.returncode == 2
    assert "no module is enabled" in one_line_error(result)


async def test_a_worker_runs_parallelism_jobs_at_once(db, db_url, tmp_path):
    """Three chunks, three slots: all three are packed at the same time, by one worker process."""
    slots, size = 3, 48 * MiB
    root = tmp_path / "ds"
    root.mkdir()
    for i in range(slots):
        write_random(root / f"f{i}.bin", size, seed=i)
    # One file per chunk: each fills a chunk to its maximum, which closes it.
    scan = models.scanning_request("parallel", str(root), 64 * MiB, size, size)
    await db[models.SCANNING].insert_one(scan)
    config = write_config(tmp_path, db_url, deal_preparation_worker={"parallelism": slots})
    out_dir = tmp_path / "cars"
    seen_temps = 0
    process = start(config, "worker", log=tmp_path / "worker.log")
    try:
        async def all_packed():
            nonlocal seen_temps
            if out_dir.exists():  # CARs being written at this moment
                seen_temps = max(seen_temps, len(list(out_dir.glob(".pack-*.car.tmp"))))
            done = await db[models.GENERATION].count_documents({"preparationId": scan["_id"], "status": "completed"})
            return done == slots
        await wait_until(all_packed, interval=0.01, what="the chunks to be packed")
    finally:
        stop(process)
    chunks = await db[models.GENERATION].find({"preparationId": scan["_id"]}).to_list(None)
    assert len(chunks) == slots and len({c["workerId"] for c in chunks}) == 1
    # The worker's own record of each job: claimed at claimedAt, saved at completedAt. With one
    # slot these never overlap (the next claim follows the last save); with three, all three do.
    events = sorted([(c["claimedAt"], 1) for c in chunks] + [(c["completedAt"], -1) for c in chunks])
    running = most = 0
    for _, step in events:
        running += step
        most = max(most, running)
    assert most == slots, f"at most {most} of {slots} chunks were packed at once"
    assert seen_temps >= 2, f"never saw more than {seen_temps} CAR being written at once"


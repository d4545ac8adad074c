"""`singularity rep ...` against a replication API, as a user runs it."""
from __future__ import annotations

import asyncio
import json
import sys

from shared import config as config_module

from .conftest import add_dataset


async def rep(env, tmp_path, *args: str) -> tuple[int, str, str]:
    path = tmp_path / "cli.toml"
    path.write_text(config_module.to_toml({"connection": {"replication_service": str(env.api.make_url(""))}}))
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "cli", "--config", str(path), "rep", *args,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode, out.decode(), err.decode()


async def test_start_list_status_pause_csv(env, tmp_path):
    env.boost.control()
    dataset = await add_dataset(env.db, 2, name="cli-data")
    base = ["--min-replicas", "2", "--criteria", "provider in (f01003, f01004)", "--client",
            env.request(dataset)["client"], "--key-path", str(env.key_file)]
    code, out, err = await rep(env, tmp_path, "start", "--dataset-id", "cli-data", *base, "--json")
    assert code == 0, err
    request_id = json.loads(out)["id"]
    code, out, err = await rep(env, tmp_path, "start", "--dataset-id", "cli-data", *base[:1], "1000", *base[2:])
    assert code != 0 and err.count("\n") == 1 and "minReplicas" in err and "Traceback" not in err
    await env.replicator().one()
    code, out, err = await rep(env, tmp_path, "status", request_id)
    assert code == 0 and "Factor" in out and "f01003, f01004" in out, out + err
    code, out, _ = await rep(env, tmp_path, "list", "--json")
    assert json.loads(out)["replications"][0]["replicationInProgress"] == 2
    code, out, err = await rep(env, tmp_path, "csv", request_id, "-o", str(tmp_path / "csv"))
    assert code == 0 and "4 deals" in out, out + err
    assert len((tmp_path / "csv" / f"{request_id}.csv").read_text().splitlines()) == 5
    code, out, _ = await rep(env, tmp_path, "pause", request_id)
    assert code == 0 and "paused" in out
    code, out, err = await rep(env, tmp_path, "status", "nope")
    assert code == 1 and "HTTP 404" in err

"""Two replicator processes, two requests on one dataset, one replicator killed with SIGKILL
mid-round: no piece ever passes maxReplicas, none is proposed twice to a provider, and the
survivor finishes the work."""
from __future__ import annotations

import asyncio
import os
import signal
import time
from collections import Counter
from pathlib import Path

from shared import config as config_module
from shared import models
from tests.conftest import free_port
from tests.processes import start, stop

from .conftest import GOOD, REJECTS, TIMES_OUT, add_dataset

LIVE = ["sending", "proposed", "published", "active"]


def write_config(env, tmp_path, db_url) -> str:
    data = {
        "connection": {"database": db_url, "deal_making_service": env.deal_url, "ranking_service": env.ranking_url,
                       "full_node_api": env.lotus.url},
        "database": {"enabled": False},
        "deal_preparation_service": {"worker_timeout": 2.0, "maintenance_interval": 0.2, "dataset_roots": [str(tmp_path)]},
        "deal_preparation_worker": {"heartbeat_interval": 0.2},
        "deal_making_service": {"key_dir": env.config.deal_making_service.key_dir, "timeout": 3.0},
        "deal_tracking_service": {"enabled": True},
        "replication_service": {"port": free_port(), "interval": 0.2, "verified": False, "backoff_base": 0.5},
    }
    path = tmp_path / f"replicator-{free_port()}.toml"
    path.write_text(config_module.to_toml(data))
    return str(path)


async def test_two_replicators_and_a_kill_never_exceed_max_replicas(env, tmp_path, db_url):
    providers = [REJECTS, TIMES_OUT, *GOOD]
    # Every provider accepts, slowly enough that a round is under way when the kill comes.
    env.boost.control(providers={p: {"sleep": 0.2} for p in providers})
    dataset = await add_dataset(env.db, 10)
    criteria = "provider in (" + ", ".join(providers) + ")"
    for low, high in ((2, 3), (3, 4)):
        response = await env.api.post("/replication", json=env.request(dataset, minReplicas=low, maxReplicas=high,
                                                                       criteria=criteria))
        assert response.status == 201
    procs = [start(Path(write_config(env, tmp_path, db_url)), "replication", log=tmp_path / f"replicator-{i}.log")
             for i in range(2)]
    killed = False
    try:
        deadline = time.monotonic() + 120
        while True:
            deals = await env.db[models.DEAL_STATE].find({"state": {"$in": LIVE}}, {"pieceCid": 1, "provider": 1}).to_list(None)
            per_piece = Counter(d["pieceCid"] for d in deals)
            pairs = Counter((d["pieceCid"], d["provider"]) for d in deals)
            assert max(per_piece.values(), default=0) <= 3, per_piece
            assert max(pairs.values(), default=0) <= 1, pairs
            if not killed and len(deals) >= 5:
                os.kill(procs[0].pid, signal.SIGKILL)
                procs[0].wait()
                killed = True
            if killed and len(per_piece) == 10 and all(n == 3 for n in per_piece.values()):
                break
            assert time.monotonic() < deadline, (len(deals), (tmp_path / "replicator-1.log").read_text()[-3000:])
            assert procs[1].poll() is None, (tmp_path / "replicator-1.log").read_text()[-3000:]
            await asyncio.sleep(0.05)
        # The survivor keeps its rounds going and proposes nothing more: boost was started once per
        # deal (each start is logged as "timeout" before its delay), never for a duplicate.
        await asyncio.sleep(1.5)
        deals = await env.db[models.DEAL_STATE].find({"state": {"$in": LIVE}}).to_list(None)
        assert len(deals) == 30
        assert len([c for c in env.boost.deals() if c["outcome"] == "timeout"]) == 30
    finally:
        for proc in procs:
            stop(proc)

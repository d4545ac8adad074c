"""`make run REPLICATE=1`: the sample dataset prepared, then replicated on the local fake network,
each CAR downloaded from the hosting service by the fake provider."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import free_port
from tests.processes import embedded_config

REPO = Path(__file__).resolve().parents[2]


def test_make_run_replicate_shows_chunks_replicated(tmp_path):
    replication, ranking = free_port(), free_port()
    config = embedded_config(tmp_path, free_port(), replication_service={"port": replication},
                             ranking_service={"port": ranking},
                             connection={"replication_service": f"http://127.0.0.1:{replication}",
                                         "ranking_service": f"http://127.0.0.1:{ranking}"})
    env = {**os.environ, "SINGULARITY_CONFIG": str(config), "REPLICATE": "1"}
    env.pop("DEAL_SIZE", None)
    result = subprocess.run([sys.executable, "scripts/run_sample.py"], cwd=REPO, env=env, capture_output=True,
                            text=True, timeout=300)
    log = tmp_path / "run.log"
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr + (log.read_text()[-3000:] if log.exists() else "")
    assert "Replicating" in result.stdout and "completed" in result.stdout and "2.0" in result.stdout
    downloads = [json.loads(line) for line in (tmp_path / "fake-network" / "downloads.jsonl").read_text().splitlines()]
    assert downloads and all(d["status"] == 200 and d["bytes"] > 0 for d in downloads)

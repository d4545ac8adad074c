"""An independent client reads our gateway: the CAR of `/ipfs/{rootCid}?format=car&dag-scope=all`
unpacks with ipfs-car (the reference tool in ../shared/tools/ref) to identical files.

ipfs-car needs Node, which the test run does not: its verdict is recorded once in
tests/fixtures/gateway/ (`RECORD_GATEWAY_FIXTURE=1 pytest tests/hosting/test_gateway_ipfs_car.py`
re-records it, running `ipfs-car unpack dataset.car --output DIR`). The test checks that the gateway
still serves exactly the recorded bytes, so the recorded verdict applies to what it serves now, and
unpacks the CAR with its own reader as well.
"""
from __future__ import annotations

import hashlib
import json
import os
import random
import subprocess
from pathlib import Path

from tests.pipeline import prepare, write_tree
from tests.hosting.test_gateway import CAR, get, read_car, unpack
from shared.ipld import cid as cidlib

FIXTURE = Path(__file__).parent.parent / "fixtures" / "gateway"
IPFS_CAR = Path(__file__).resolve().parents[3] / "shared" / "tools" / "ref" / "node_modules" / ".bin" / "ipfs-car"


def files() -> dict[str, bytes]:
    rng = random.Random(13)
    return {"hello.txt": b"hello, gateway\n", "sub/a.bin": rng.randbytes(2 * (1 << 20) + 12345),
            "sub/deeper/b.txt": b"b" * 1000, "z.bin": rng.randbytes(300_000)}


def digests(tree: dict[str, bytes]) -> dict[str, str]:
    return {path: hashlib.sha256(data).hexdigest() for path, data in sorted(tree.items())}


async def test_ipfs_car_unpacks_the_gateway_car(db, config, tmp_path, aiohttp_server):
    from services.hosting.service import create
    root = tmp_path / "dataset"
    write_tree(root, files())
    prepared = await prepare(db, config, root, "gateway", 8 << 20, 5 << 20, 6 << 20)
    assert len(prepared.chunks) == 1
    data_cid = prepared.chunks[0]["dataCid"]
    server = await aiohttp_server(create(config, db))
    hosting = str(server.make_url("")).rstrip("/")
    status, _, body = await get(hosting, f"/ipfs/{data_cid}", {**CAR, "dag-scope": "all"})
    assert status == 200
    # Our own reader: every block verified, the tree rebuilt from the blocks alone.
    _, frames = read_car(body)
    assert digests(unpack(cidlib.from_str(data_cid), dict(frames))) == digests(files())
    if os.environ.get("RECORD_GATEWAY_FIXTURE"):
        FIXTURE.mkdir(parents=True, exist_ok=True)
        (FIXTURE / "dataset.car").write_bytes(body)
        out = tmp_path / "unpacked"
        command = [str(IPFS_CAR), "unpack", str(FIXTURE / "dataset.car"), "--output", str(out)]
        subprocess.run(command, check=True, capture_output=True, timeout=120)
        unpacked = {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()}
        (FIXTURE / "ipfs-car-unpack.json").write_text(json.dumps({
            "command": "ipfs-car unpack dataset.car --output DIR (ipfs-car 3.1.0, ../shared/tools/ref)",
            "root": data_cid, "files": digests(unpacked)}, indent=2) + "\n")
    recorded = json.loads((FIXTURE / "ipfs-car-unpack.json").read_text())
    assert recorded["root"] == data_cid
    assert body == (FIXTURE / "dataset.car").read_bytes(), "the gateway no longer serves the recorded CAR"
    assert recorded["files"] == digests(files())

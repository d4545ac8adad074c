"""Documents a second the embedded database (nx-27017) stores and reads, the floor under the
pipeline of many small files: each file costs an insert at scan, a read, a block insert and an
update at CAR generation, and a read for the dataset index.

Prints, for the server as the suite runs it (one SQLite transaction per write command,
shared/nx_batches.py) and as released (one commit per document), in the same run:
insert_many of GenerationFile documents with their indexes, of the same documents into a
collection without indexes, bulk_write of UpdateOne by _id setting a file's CID and CAR span, and
a find of them all.

    .venv/bin/python bench/docrates.py [--docs 20000] [--batch 5000]
"""
from __future__ import annotations

import argparse
import asyncio
import os
import time
from pathlib import Path

from common import connect, embedded, scratch
from pymongo import UpdateOne  # noqa: E402

from shared import embedded as embedded_module  # noqa: E402
from shared import models  # noqa: E402


def file_docs(n: int, generation: str) -> list[dict]:
    return [{"generationId": generation, "preparationId": "6560a1b2c3d4e5f601234568", "order": i,
             "relativePath": f"folder{i % 50:03d}/file{i:07d}.bin", "size": 8192, "mtime": 1764588000.123456,
             "start": 0, "end": 8192} for i in range(n)]


async def rates(work: Path, n: int, batch: int) -> dict[str, float]:
    out: dict[str, float] = {}
    with embedded(str(work / "db")) as server:
        async with connect(f"{server.url}/bench") as db:
            await measure(db, n, batch, out)
    return out


async def measure(db, n: int, batch: int, out: dict[str, float]) -> None:
    async def timed(name: str, step) -> None:
        start = time.perf_counter()
        await step()
        out[name] = n / (time.perf_counter() - start)

    docs = file_docs(n, "6560a1b2c3d4e5f601234567")

    async def insert(collection: str, documents: list[dict]):
        for i in range(0, n, batch):
            await db[collection].insert_many(documents[i:i + batch], ordered=False)

    await timed("insert_many, GenerationFile with its 2 indexes", lambda: insert(models.GENERATION_FILES, docs))
    await timed("insert_many, no index but _id", lambda: insert("Plain", file_docs(n, "x")))

    async def update():
        for i in range(0, n, batch):
            await db[models.GENERATION_FILES].bulk_write(
                [UpdateOne({"_id": d["_id"]}, {"$set": {"cid": f"bafkrei{j:052d}", "carOffset": j * 8300,
                                                      "carLength": 8300}})
                 for j, d in enumerate(docs[i:i + batch], i)], ordered=False)

    await timed("bulk_write UpdateOne by _id", update)

    async def read():
        got = await db[models.GENERATION_FILES].find({"generationId": docs[0]["generationId"]},
                                                     batch_size=10_000).sort("order", 1).to_list(None)
        assert len(got) == n

    await timed("find by generationId, sorted", read)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, default=20_000)
    ap.add_argument("--batch", type=int, default=5000)
    args = ap.parse_args()
    launcher = embedded_module._LAUNCHER
    with scratch("bench-docrates-") as work:
        try:
            batched = asyncio.run(rates(work / "batched", args.docs, args.batch))
            # The server as released: the launcher without the transaction per command.
            embedded_module._LAUNCHER = launcher.replace("nx_batches.install()", "pass")
            released = asyncio.run(rates(work / "released", args.docs, args.batch))
        finally:
            embedded_module._LAUNCHER = launcher
    print(f"nx-27017, {args.docs} documents in batches of {args.batch}; load average {os.getloadavg()[0]:.1f}")
    print(f"  {'operation':<48} {'as run here':>12} {'as released':>12}  (documents/s)")
    for name, rate in batched.items():
        print(f"  {name:<48} {rate:>12,.0f} {released[name]:>12,.0f}")


if __name__ == "__main__":
    main()

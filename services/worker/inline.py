"""Storing and dropping the layout of an inline chunk (shared/ipld/layout.py): one CarLayout
document per segment, written before the chunk is marked completed so a completed inline chunk
always has its whole layout."""
from __future__ import annotations

from pymongo.asynchronous.database import AsyncDatabase

from shared import models
from shared.ipld.layout import Segment

BATCH_BYTES = 8 << 20  # of layout per insert_many: a few segments, far below a message's 48 MB


async def save_layout(db: AsyncDatabase, chunk: dict, data_cid: str, segments: list[Segment]) -> None:
    collection = db[models.CAR_LAYOUTS]
    await delete_layout(db, chunk["_id"])  # a retry's leftovers
    batch: list[dict] = []
    size = 0
    for segment in segments:
        batch.append({"_id": f"{chunk['_id']}-{segment.seq}", "generationId": chunk["_id"],
                      "preparationId": chunk["preparationId"], "dataCid": data_cid, "seq": segment.seq,
                      "start": segment.start, "end": segment.end,
                      "files": [list(f) for f in segment.files], "records": segment.records})
        size += segment.encoded_size()
        if size >= BATCH_BYTES:
            await collection.insert_many(batch, ordered=False)
            batch, size = [], 0
    if batch:
        await collection.insert_many(batch, ordered=False)


async def delete_layout(db: AsyncDatabase, generation_id: str) -> None:
    await db[models.CAR_LAYOUTS].delete_many({"generationId": {"$eq": generation_id}})

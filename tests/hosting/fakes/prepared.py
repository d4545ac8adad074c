"""A completed preparation, produced the way the preparation worker does it: files split into
chunks by byte ranges, each chunk packed with shared.ipld.pack.pack_chunk, and the documents
(ScanningRequest, GenerationRequest, GenerationFile, CarBlock) saved in the worker's shapes."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from shared import models
from shared.ipld.pack import pack_chunk


def write_tree(root: Path, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def plan_chunks(root: Path, max_chunk: int) -> list[list[dict]]:
    """Files in sorted path order, cut into chunks of at most max_chunk bytes of file data;
    a file that does not fit is split into consecutive ranges."""
    files = sorted(p for p in root.rglob("*") if p.is_file())
    chunks: list[list[dict]] = [[]]
    used = 0
    for path in files:
        st = path.stat()
        start = 0
        while True:
            room = max_chunk - used
            if room <= 0 and st.st_size > start:
                chunks.append([])
                used, room = 0, max_chunk
            end = min(st.st_size, start + room)
            chunks[-1].append({"path": str(path), "relative_path": path.relative_to(root).as_posix(),
                               "start": start, "end": end, "size": st.st_size, "mtime": st.st_mtime})
            used += end - start
            start = end
            if start >= st.st_size:
                break
    return [c for c in chunks if c]


@dataclass
class Prepared:
    id: str
    name: str
    chunks: list[dict]  # the GenerationRequest documents


async def prepare(db, config, root: Path, name: str, max_chunk: int, complete: bool = True) -> Prepared:
    out_dir = config.deal_preparation_worker.out_dir
    os.makedirs(out_dir, exist_ok=True)
    scan = models.scanning_request(name, str(root), 1 << 30, 0, max_chunk)
    scan["status"] = models.Status.COMPLETED.value
    await db[models.SCANNING].insert_one(scan)
    gens = []
    for index, entries in enumerate(plan_chunks(root, max_chunk)):
        gen = models.generation_request(scan, index, len(entries), sum(e["end"] - e["start"] for e in entries))
        result = pack_chunk(entries, out_dir, collect_blocks=True)
        await db[models.GENERATION_FILES].insert_many([
            {"generationId": gen["_id"], "preparationId": scan["_id"], "order": order, "relativePath": e["relative_path"],
             "size": e["size"], "mtime": e["mtime"], "start": e["start"], "end": e["end"], "cid": cid}
            for order, (e, cid) in enumerate(zip(entries, result.entry_cids))])
        base = {"generationId": gen["_id"], "preparationId": scan["_id"], "dataCid": result.data_cid,
                "pieceCid": result.piece_cid}
        await db[models.CAR_BLOCKS].insert_many([{**base, "cid": c, "offset": o, "length": n}
                                                 for c, o, n in result.blocks])
        gen.update(status=models.Status.COMPLETED.value if complete or index == 0 else models.Status.ACTIVE.value,
                   dataCid=result.data_cid, pieceCid=result.piece_cid, pieceSize=result.piece_size,
                   carSize=result.car_size, carPath=result.car_path)
        await db[models.GENERATION].insert_one(gen)
        gens.append(gen)
    return Prepared(scan["_id"], name, gens)

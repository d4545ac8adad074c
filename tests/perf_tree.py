"""A seeded random dataset tree and what the suite makes of it (CIDs, pieces, index sources),
shared by tests/fixtures/perf/record.py (which recorded the values before the speed work of
issue 12) and tests/test_recorded_cids.py (which compares against them)."""
from __future__ import annotations

import hashlib
import os
import random

from services.indexing import builder
from services.worker.generation import GenerationRun
from services.worker.scanning import ScanRun
from shared.ipld import cid as cidlib
from shared import jobs, models
from shared.ipld.commp import CommP
from shared.ipld.pack import pack_chunk, pack_path

MiB = 1 << 20
SEED = 20261201
PIPELINE_DEAL = 4 * MiB
# Boundary sizes of the piece tree: one group (127 bytes), powers of two of groups, one byte either side.
COMMP_SIZES = [0, 1, 126, 127, 128, 254, 255, 127 * 4 - 1, 127 * 4, 127 * 1024 + 1, MiB, 127 << 14,
               (127 << 15) - 1, (127 << 15) + 1, 8 * MiB + 5]


def make_random_tree(root: str) -> dict[str, int]:
    """About 1,600 files: mostly small, some of several blocks, one split across chunks, a folder
    large enough to be a HAMT shard, duplicates, empty files and empty folders."""
    rng = random.Random(SEED)
    sizes: dict[str, int] = {}
    contents: dict[str, bytes] = {}
    for d in range(5):
        for s in range(rng.randint(1, 3)):
            folder = f"d{d}/s{s}" if s else f"d{d}"
            for f in range(rng.randint(20, 90)):
                roll = rng.random()
                n = (rng.randint(0, 200) if roll < 0.4 else rng.randint(200, 20000) if roll < 0.85
                     else rng.randint(20000, 300000))
                contents[f"{folder}/f{f:03d}.bin"] = rng.randbytes(n)
    for f in range(1100):  # above the 1,000-entry shard threshold
        contents[f"many/x{f}"] = rng.randbytes(rng.randint(0, 3000))
    same = rng.randbytes(5000)
    contents.update({"dup/a": same, "dup/b": same, "dup/c/d": same, "empty": b"",
                     "big/edge-1": rng.randbytes(MiB - 1), "big/edge": rng.randbytes(MiB),
                     "big/edge+1": rng.randbytes(MiB + 1), "big/split": rng.randbytes(5 * MiB + 123)})
    for relative, data in contents.items():
        path = os.path.join(root, relative)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
        sizes[relative] = len(data)
    for empty in ("void", "d0/void", "deep/a/b/c"):
        os.makedirs(os.path.join(root, empty), exist_ok=True)
    return sizes


def _digest(lines) -> str:
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def commp_values() -> dict[str, str]:
    rng = random.Random(SEED + 1)
    out = {}
    for n in COMMP_SIZES:
        h = CommP()
        h.update(rng.randbytes(n))
        piece = h.digest()
        out[str(n)] = f"{piece.cid} {piece.padded_size}"
    return out


def pack_values(root: str, out_dir: str) -> dict:
    """pack_path of the tree (as `singularity pack`), and pack_chunk of ranges with a piece size."""
    whole = pack_path(root, out_dir, collect_blocks=True)
    with open(whole.car_path, "rb") as f:
        car_sha = hashlib.sha256(f.read()).hexdigest()
    names = sorted(os.path.relpath(os.path.join(d, n), root) for d, _, ns in os.walk(root) for n in ns)
    entries = []
    for i, rel in enumerate(names[::7]):
        size = os.path.getsize(os.path.join(root, rel))
        start = (size * (i % 3)) // 4
        entries.append({"path": os.path.join(root, rel), "relative_path": rel, "start": start, "end": size,
                        "size": size, "mtime": None})
    ranged = pack_chunk(entries, out_dir, piece_size=64 * MiB, collect_blocks=True, empty_dirs=["void"])
    return {
        "pack": {"dataCid": whole.data_cid, "pieceCid": whole.piece_cid, "pieceSize": whole.piece_size,
                 "carSize": whole.car_size, "carSha256": car_sha, "entries": len(whole.entry_cids),
                 "entryCids": _digest(whole.entry_cids),
                 "blocks": _digest(f"{c} {o} {n}" for c, o, n in whole.blocks)},
        "packChunk": {"dataCid": ranged.data_cid, "pieceCid": ranged.piece_cid, "pieceSize": ranged.piece_size,
                      "carSize": ranged.car_size, "entryCids": _digest(ranged.entry_cids),
                      "blocks": _digest(f"{c} {o} {n}" for c, o, n in ranged.blocks)},
    }


async def pipeline_values(db, root: str, out_dir: str) -> dict:
    """Scan, CAR generation and the index's file sources, as the worker and indexer do them."""
    scan = models.scanning_request("perf", root, PIPELINE_DEAL, int(PIPELINE_DEAL * 0.6), int(PIPELINE_DEAL * 0.9))
    await db[models.SCANNING].insert_one(scan)
    job = await jobs.claim(db, models.SCANNING, "scanner")
    await ScanRun(db, job, "scanner").run()
    while job := await jobs.claim(db, models.GENERATION, "gen"):
        await GenerationRun(db, job, "gen", out_dir).run()
    generations = await db[models.GENERATION].find({"preparationId": scan["_id"]}).sort("index", 1).to_list(None)
    chunks = [f"{g['index']} {g['status']} {g['dataCid']} {g['pieceCid']} {g['pieceSize']} {g['carSize']} "
              f"{g['fileCount']} {g['size']}" for g in generations]
    files = []
    for g in generations:
        docs = await db[models.GENERATION_FILES].find({"generationId": g["_id"]}).sort("order", 1).to_list(None)
        files += [f"{g['index']} {d['order']} {d['relativePath']} {d['start']} {d['end']} {d.get('cid')}" for d in docs]
    blocks = await db[models.CAR_BLOCKS].find({"preparationId": scan["_id"]}).to_list(None)
    sources = await index_sources(db, scan["_id"], out_dir)
    return {"chunks": chunks, "files": len(files), "fileCids": _digest(files),
            "carBlocks": _digest(sorted(f"{b['dataCid']} {b['cid']} {b['offset']} {b['length']}" for b in blocks)),
            "indexSources": _digest(sources), "sourceCount": len(sources)}


async def index_sources(db, preparation_id: str, out_dir: str) -> list[str]:
    """Every file source of the dataset index, as text lines in path order."""
    generations = await db[models.GENERATION].find({"preparationId": preparation_id}).sort("index", 1).to_list(None)
    tree = await builder.collect(db, preparation_id, generations, out_dir)
    sources = []

    def visit(node, prefix):
        for name in sorted(node.files):
            for s in node.files[name].sources:
                # Links (CIDs as bytes since the index is an IPLD DAG) are written as CID text: the
                # same sources as recorded before that change.
                sources.append(f"{prefix}{name} " + " ".join(
                    cidlib.to_str(s[k]) if isinstance(s[k], bytes) else str(s[k]) for k in sorted(s)))
        for name in sorted(node.dirs):
            visit(node.dirs[name], f"{prefix}{name}/")

    visit(tree, "")
    return sources


def digest(lines) -> str:
    return _digest(lines)

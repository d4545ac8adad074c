"""Building dataset trees and checking chunk layouts, shared by the scanning tests."""
from __future__ import annotations

import os
from collections import defaultdict

from services.worker.chunker import CLOSE, Chunker, Unplaceable
from services.worker.walk import File, walk
from shared import models


def make_tree(root, files: dict[str, int]) -> None:
    """files: relative path -> size; content is derived from the path so ranges can be checked."""
    for relative, size in files.items():
        path = os.path.join(root, relative)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write((relative.encode() * (size // max(len(relative), 1) + 1))[:size])


def reference_chunks(root, min_size, max_size, car_limit=None, deal_size=None) -> list[list[tuple[str, int, int]]]:
    """The layout a single uninterrupted scan must produce, from the pure walk + chunker (a scan
    limits each chunk's CAR to its deal size * 127/128)."""
    if deal_size is not None:
        car_limit = deal_size * 127 // 128
    chunker, chunks, current = Chunker(min_size, max_size, car_limit), [], []
    for item in walk(str(root)):
        if not isinstance(item, File):
            continue
        for placed in chunker.add(item):
            if placed is CLOSE:
                chunks.append(current)
                current = []
            elif isinstance(placed, Unplaceable):
                continue  # the scan reports it and leaves it out
            else:
                current.append((item.relative_path, placed.start, placed.end))
    if current:
        chunks.append(current)
    return chunks


def assert_layout(chunks: list[list[tuple[str, int, int]]], sizes: dict[str, int], min_size: int, max_size: int):
    """Every byte of every file in exactly one range; every chunk but the last within bounds."""
    ranges = defaultdict(list)
    for chunk in chunks:
        for path, start, end in chunk:
            ranges[path].append((start, end))
    assert set(ranges) == set(sizes)
    for path, size in sizes.items():
        position = 0
        for start, end in sorted(ranges[path]):
            assert start == position, f"{path}: gap or overlap at {position}"
            position = end
        assert position == size, f"{path}: {position} of {size} bytes covered"
        if size:
            assert all(end > start for start, end in ranges[path]), f"{path}: empty range of a non-empty file"
    for i, chunk in enumerate(chunks):
        total = sum(end - start for _, start, end in chunk)
        assert total <= max_size
        if i < len(chunks) - 1 and min_size:
            assert total >= min_size, f"chunk {i} holds {total} < {min_size}"


async def stored_chunks(db, preparation_id) -> list[list[tuple[str, int, int]]]:
    generations = await db[models.GENERATION].find({"preparationId": preparation_id}).sort("index", 1).to_list(None)
    assert [g["index"] for g in generations] == list(range(len(generations)))
    chunks = []
    for generation in generations:
        files = await db[models.GENERATION_FILES].find({"generationId": generation["_id"]}).sort("order", 1).to_list(None)
        assert [f["order"] for f in files] == list(range(len(files)))
        assert generation["fileCount"] == len(files)
        assert generation["size"] == sum(f["end"] - f["start"] for f in files)
        chunks.append([(f["relativePath"], f["start"], f["end"]) for f in files])
    # Nothing may be left of chunks that were not completed.
    known = {g["_id"] for g in generations}
    assert {f["generationId"] async for f in db[models.GENERATION_FILES].find({"preparationId": preparation_id})} <= known
    return chunks


def write_random(path, size: int, seed: int = 1) -> None:
    """Incompressible, non-repeating bytes (no block deduplicates), written 16 MiB at a time."""
    import random

    rng = random.Random(seed)
    with open(path, "wb") as f:
        for _ in range(size // (16 << 20)):
            f.write(rng.randbytes(16 << 20))
        f.write(rng.randbytes(size % (16 << 20)))

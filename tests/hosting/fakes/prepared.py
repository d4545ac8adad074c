"""The former fake preparation's entry point, kept for tests written against it: it now prepares
with the real scanner and worker (tests/pipeline.py), which every shape those tests need can come
from. New tests import tests.pipeline directly."""
from __future__ import annotations

from pathlib import Path

from tests.pipeline import Prepared, prepare as prepare_for_real, prepare_partly, write_tree

__all__ = ["Prepared", "prepare", "write_tree"]


async def prepare(db, config, root: Path, name: str, max_chunk: int, complete: bool = True) -> Prepared:
    """Chunks of `max_chunk` bytes of file data (the last one less), files split across them; with
    complete=False only the first chunk is packed, the others wait for a worker."""
    deal_size = 1 << (2 * max_chunk - 1).bit_length()  # room for the CAR's own bytes beside the data
    if complete:
        return await prepare_for_real(db, config, root, name, deal_size, max_chunk, max_chunk)
    return await prepare_partly(db, config, root, name, deal_size, max_chunk, max_chunk, packed=1)

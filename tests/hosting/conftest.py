from __future__ import annotations

import random
from pathlib import Path

import pytest

from services.hosting.service import create
from services.indexing.indexer import build_index
from tests.pipeline import prepare, write_tree

MiB = 1 << 20


def dataset_files() -> dict[str, bytes]:
    rng = random.Random(4)
    return {
        "a/big.bin": rng.randbytes(3 * MiB + 300_000),  # spans three chunks
        "a/b/small.txt": b"small file\n" * 9,
        "a/b/empty": b"",
        "c/mid.bin": rng.randbytes(MiB + 5),
        "c/dup.bin": b"\x00" * (MiB + 5),  # identical 1 MiB leaves: deduplicated in the CAR
        "d/e/f/deep.bin": rng.randbytes(2 * MiB + 1),
        "top.txt": b"top\n",
        "__type": b"a file named like a reserved key\n",
        "c/empty.txt": b"",  # with the empty directory beside it, the first entries of a chunk
    }


# Empty directories are entries of their chunk like empty files: one inside a folder with files,
# one opening a chunk, and a nested one at the very end of the dataset.
EMPTY_DIRS = ("a/b/nothing", "c/empty-dir", "zz/deeper/empty")
DEAL = 2 * MiB
# Chunks of 1 to 1.5 MiB of data: a/big.bin spans three of them, its middle filling one whole.
MIN_CHUNK, MAX_CHUNK = MiB, MiB + MiB // 2


@pytest.fixture
def source_dir(tmp_path) -> Path:
    root = tmp_path / "dataset"
    write_tree(root, dataset_files(), EMPTY_DIRS)
    return root


@pytest.fixture
async def prepared(db, config, source_dir):
    """The dataset scanned and packed by the real worker."""
    return await prepare(db, config, source_dir, "demo", DEAL, MIN_CHUNK, MAX_CHUNK)


@pytest.fixture
async def indexed(db, config, prepared):
    index_cid = await build_index(db, config, prepared.id)
    assert index_cid
    return prepared, index_cid


@pytest.fixture
async def hosting(aiohttp_server, db, config):
    server = await aiohttp_server(create(config, db))
    return str(server.make_url("")).rstrip("/")

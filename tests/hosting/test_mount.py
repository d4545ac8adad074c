"""`singularity mount`: the file-system operations over the index, tested directly (this machine
has /dev/fuse but no libfuse, and a container cannot mount without CAP_SYS_ADMIN), and the clear
error the command gives where FUSE is missing."""
from __future__ import annotations

import asyncio
import errno
import random
import stat

import pytest

from services.indexing import mountfs, retrieval
from services.indexing.sources import Source
from tests.hosting.conftest import EMPTY_DIRS, MiB, dataset_files
from tests.hosting.test_cli_retrieve import singularity, write_config

FILES = dataset_files()


@pytest.fixture
async def fs(indexed, hosting):
    _, index_cid = indexed
    retriever = retrieval.Retriever([Source(hosting)], ("car", "block"))
    return await asyncio.to_thread(mountfs.IndexFS, retriever, index_cid)


async def call(fn, *args):
    return await asyncio.to_thread(fn, *args)


async def test_readdir_and_getattr(fs):
    paths = list(FILES) + list(EMPTY_DIRS)

    def children(folder: str) -> list[str]:
        prefix = folder + "/" if folder else ""
        return sorted({".", ".."} | {p[len(prefix):].split("/")[0] for p in paths if p.startswith(prefix)})

    assert sorted(await call(fs.readdir, "/")) == children("") and "top.txt" in children("")
    assert sorted(await call(fs.readdir, "/a/b")) == children("a/b") and "small.txt" in children("a/b")
    top = await call(fs.getattr, "/a/big.bin")
    assert stat.S_ISREG(top["st_mode"]) and top["st_size"] == len(FILES["a/big.bin"])
    assert stat.S_ISDIR((await call(fs.getattr, "/d/e"))["st_mode"])
    for path, code in (("/nope", errno.ENOENT), ("/top.txt/x", errno.ENOTDIR)):
        with pytest.raises(mountfs.FsError) as caught:
            await call(fs.getattr, path)
        assert caught.value.errno == code
    with pytest.raises(mountfs.FsError) as caught:
        await call(fs.read, "/a", 10, 0)
    assert caught.value.errno == errno.EISDIR


@pytest.mark.parametrize("methods", [("car",), ("block",)])
async def test_reads_of_any_range_fetch_only_what_they_need(indexed, hosting, methods):
    _, index_cid = indexed
    fs = await call(mountfs.IndexFS, retrieval.Retriever([Source(hosting)], methods), index_cid, methods)
    data = FILES["a/big.bin"]
    rng = random.Random(7)
    spans = [(0, 10), (MiB + MiB // 2 - 5, 10), (len(data) - 3, 100), (len(data) + 5, 10), (2 * MiB, 128 << 10)]
    spans += [(rng.randrange(len(data)), rng.randrange(1, 300_000)) for _ in range(5)]
    for offset, size in spans:  # across chunk boundaries (the file spans three chunks), past the end
        assert await call(fs.read, "/a/big.bin", size, offset) == data[offset:offset + size], (offset, size)
    assert await call(fs.read, "/a/b/empty", 10, 0) == b""
    served = fs.retriever.report()["sources"][0]
    # Only the bytes asked for were delivered, not whole files.
    assert served["bytes"] < len(data) and served["methods"] == {f"mount-{methods[0]}": served["ranges"]}


async def test_a_corrupted_block_is_an_io_error(indexed, hosting, db):
    from tests.hosting.test_corruption import corrupt_a_leaf_of
    _, index_cid = indexed
    await corrupt_a_leaf_of(db, "c/mid.bin")
    fs = await call(mountfs.IndexFS, retrieval.Retriever([Source(hosting)], ("block",)), index_cid, ("block",))
    with pytest.raises(mountfs.FsError) as caught:
        await call(fs.read, "/c/mid.bin", MiB + 5, 0)
    assert caught.value.errno == errno.EIO and "CID mismatch" in str(caught.value)


async def test_mount_without_fuse_is_one_clear_line(indexed, hosting, tmp_path):
    (tmp_path / "mnt").mkdir()
    code, out, err = await singularity(write_config(tmp_path, hosting), "mount", "demo", str(tmp_path / "mnt"))
    lines = err.decode().strip().splitlines()
    assert code == 1 and len(lines) == 1 and "FUSE is not available" in lines[0], lines

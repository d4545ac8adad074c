"""Tar bundles streamed by the hosting service from the CARs."""
from __future__ import annotations

import io
import tarfile

import aiohttp

from tests.hosting.test_retrieve import FILES
from tests.pipeline import snapshot


async def fetch(url: str) -> tuple[int, dict, bytes]:
    async with aiohttp.ClientSession() as session:
        async with session.get(url) as response:
            return response.status, dict(response.headers), await response.read()


def members(body: bytes) -> tuple[dict[str, bytes], list[str]]:
    with tarfile.open(fileobj=io.BytesIO(body)) as tar:
        files = {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}
        dirs = [m.name for m in tar.getmembers() if m.isdir()]
    return files, dirs


def tree_as_members(root, prefix: str) -> tuple[dict[str, bytes], list[str]]:
    """What a bundle of `root` must hold, its members named under `prefix`."""
    files, dirs = snapshot(root)
    return {f"{prefix}/{k}": v for k, v in files.items()}, sorted([prefix] + [f"{prefix}/{d}" for d in dirs])


async def test_folder_bundle(indexed, hosting, source_dir):
    prepared, _ = indexed
    status, headers, body = await fetch(f"{hosting}/bundle/demo/a?filename=x.tar")
    assert status == 200 and headers["Content-Type"] == "application/x-tar"
    assert int(headers["Content-Length"]) == len(body)
    assert "x.tar" in headers["Content-Disposition"]
    files, dirs = members(body)
    assert files == {k: v for k, v in FILES.items() if k.startswith("a/")}
    assert (files, sorted(dirs)) == tree_as_members(source_dir / "a", "a")
    assert "a/b/nothing" in dirs  # the empty directory too
    status, _, by_id = await fetch(f"{hosting}/bundle/{prepared.id}/a")
    assert (status, by_id) == (200, body)


async def test_whole_dataset_and_single_file_bundle(indexed, hosting, source_dir):
    status, _, body = await fetch(f"{hosting}/bundle/demo")
    assert status == 200
    files, dirs = members(body)
    assert files == {f"demo/{k}": v for k, v in FILES.items()}
    assert (files, sorted(dirs)) == tree_as_members(source_dir, "demo")
    status, _, body = await fetch(f"{hosting}/bundle/demo/d/e/f/deep.bin")
    assert members(body)[0] == {"deep.bin": FILES["d/e/f/deep.bin"]}


async def test_unknown_bundle_paths(indexed, hosting):
    assert (await fetch(f"{hosting}/bundle/demo/nope"))[0] == 404
    assert (await fetch(f"{hosting}/bundle/other/a"))[0] == 404
    # "a/b" must not match the sibling "a/big.bin" by prefix.
    files, dirs = members((await fetch(f"{hosting}/bundle/demo/a/b"))[2])
    assert sorted(files) == ["b/empty", "b/small.txt"] and sorted(dirs) == ["b", "b/nothing"]

"""The trustless gateway: CARs of chunk roots, files and dataset-index paths, checked by an
independent reader (libipld's CAR decoder, every block hashed, the DFS order recomputed);
dag-scope and entity-bytes; HEAD; bad requests as JSON errors."""
from __future__ import annotations

import hashlib

import aiohttp
import libipld
import pytest

from shared import models
from shared.ipld import cid as cidlib
from shared.ipld import carfile, pbnode
from tests.hosting.conftest import MiB, dataset_files

FILES = dataset_files()
CAR = {"format": "car"}


def read_car(body: bytes) -> tuple[list[str], list[tuple[bytes, bytes]]]:
    """(roots, [(cid, block)] in stream order), each block checked against its CID by hand."""
    from shared.ipld import varint
    header_len, at = varint.decode(body, 0)
    header = libipld.decode_dag_cbor(body[at:at + header_len])
    assert header["version"] == 1
    at += header_len
    frames = []
    while at < len(body):
        size, at = varint.decode(body, at)
        frame = body[at:at + size]
        at += size
        cid_len = 36
        cid, data = frame[:cid_len], frame[cid_len:]
        assert hashlib.sha256(data).digest() == cidlib.parse(cid)[2], "block does not match its CID"
        frames.append((cid, data))
    return [cidlib.to_str(r) for r in header["roots"]], frames


def links(cid: bytes, data: bytes) -> list[bytes]:
    if cidlib.parse(cid)[0] == cidlib.DAG_PB:
        return [link.cid for link in pbnode.decode_node(data).links]
    return []


def dfs(root: bytes, blocks: dict[bytes, bytes]) -> list[bytes]:
    order, seen, stack = [], set(), [root]
    while stack:
        cid = stack.pop()
        if cid in seen:
            continue
        seen.add(cid)
        order.append(cid)
        stack.extend(reversed(links(cid, blocks[cid])))
    return order


def unixfs_read(cid: bytes, blocks: dict[bytes, bytes]) -> bytes:
    if cidlib.parse(cid)[0] == cidlib.RAW:
        return blocks[cid]
    layout = pbnode.file_layout(blocks[cid])
    return layout.inline + b"".join(unixfs_read(c, blocks) for c in layout.children)


def unpack(cid: bytes, blocks: dict[bytes, bytes], prefix: str = "") -> dict[str, bytes]:
    if cidlib.parse(cid)[0] == cidlib.RAW:
        return {prefix: blocks[cid]}
    node = pbnode.decode_node(blocks[cid])
    fs = pbnode.decode_unixfs(node.data)
    if fs.type != pbnode.TYPE_DIRECTORY:
        return {prefix: unixfs_read(cid, blocks)}
    out = {}
    for link in node.links:
        out.update(unpack(link.cid, blocks, f"{prefix}/{link.name.decode()}".lstrip("/")))
    return out


async def get(hosting, path, params=None, method="GET", headers=None):
    async with aiohttp.ClientSession() as session:
        async with session.request(method, hosting + path, params=params, headers=headers) as response:
            return response.status, response.headers, await response.read()


async def test_chunk_root_all_is_the_whole_chunk_in_dfs_order(indexed, hosting):
    prepared, _ = indexed
    gen = prepared.chunks[0]
    status, headers, body = await get(hosting, f"/ipfs/{gen['dataCid']}", CAR)
    assert status == 200
    assert headers["Content-Type"] == "application/vnd.ipld.car; version=1; order=dfs; dups=n"
    assert headers["X-Ipfs-Roots"] == gen["dataCid"] and "attachment" in headers["Content-Disposition"]
    roots, frames = read_car(body)
    assert roots == [gen["dataCid"]]
    cids = [c for c, _ in frames]
    assert len(cids) == len(set(cids)), "dups=n"
    blocks = dict(frames)
    root = cidlib.from_str(gen["dataCid"])
    assert cids == dfs(root, blocks)
    _, in_car = carfile.frame_map(gen["carPath"])
    assert set(cids) == set(in_car)  # everything the chunk holds, nothing else
    files = unpack(root, blocks)
    for path, data in files.items():
        assert data == FILES[path] or data in FILES[path]  # a range of a file split across chunks


async def test_index_path_resolves_to_the_file_and_entity_bytes_limits_blocks(indexed, hosting):
    _, index_cid = indexed
    status, headers, body = await get(hosting, f"/ipfs/{index_cid}/a/big.bin", CAR)
    assert status == 200
    roots, frames = read_car(body)
    assert roots == [index_cid]
    blocks = dict(frames)
    sources = headers["X-Ipfs-Roots"].split(",")
    assert sources[0] == index_cid and len(sources) == 2 + 3  # root, dir "a", three ranges' DAGs
    data = b"".join(unixfs_read(cidlib.from_str(c), blocks) for c in sources[2:])
    assert data == FILES["a/big.bin"]
    # Only the blocks for bytes [2 MiB, 2 MiB + 10): the leaf holding them and its parents.
    status, _, ranged = await get(hosting, f"/ipfs/{index_cid}/a/big.bin",
                                  {**CAR, "entity-bytes": f"{2 * MiB}:{2 * MiB + 9}"})
    assert status == 200
    _, few = read_car(ranged)
    leaves = [c for c, d in few if cidlib.parse(c)[0] == cidlib.RAW]
    assert len(leaves) == 1 and FILES["a/big.bin"][2 * MiB:2 * MiB + 10] in dict(few)[leaves[0]]
    assert len(few) < len(frames)
    # The path blocks come first: the index root, then the directory "a".
    assert cidlib.to_str(few[0][0]) == index_cid and cidlib.to_str(few[1][0]) == sources[1]


async def test_file_entity_bytes_and_scopes_on_a_unixfs_file(indexed, hosting, db):
    prepared, _ = indexed
    docs = await db[models.GENERATION_FILES].find({"relativePath": "d/e/f/deep.bin"}).to_list(None)
    doc = max(docs, key=lambda d: d["end"] - d["start"])
    expected = FILES["d/e/f/deep.bin"][doc["start"]:doc["end"]]
    assert len(expected) > MiB  # several leaves
    status, _, body = await get(hosting, f"/ipfs/{doc['cid']}", CAR)
    _, frames = read_car(body)
    assert unixfs_read(cidlib.from_str(doc["cid"]), dict(frames)) == expected
    _, _, body = await get(hosting, f"/ipfs/{doc['cid']}", {**CAR, "entity-bytes": "-1:*"})
    _, last = read_car(body)
    assert len(last) == 2 and last[1][1].endswith(expected[-1:])  # root + the last leaf
    _, _, body = await get(hosting, f"/ipfs/{doc['cid']}", {**CAR, "dag-scope": "block"})
    assert [c for c, _ in read_car(body)[1]] == [cidlib.from_str(doc["cid"])]
    # Through the chunk's own UnixFS directories.
    gen = next(g for g in prepared.chunks if g["_id"] == doc["generationId"])
    # The chunk's DAG holds this range under the file's path.
    status, headers, body = await get(hosting, f"/ipfs/{gen['dataCid']}/d/e/f/deep.bin", CAR,
                                      headers={"Accept": "application/vnd.ipld.raw"})  # format wins
    assert status == 200 and headers["X-Ipfs-Roots"].split(",")[-1] == doc["cid"]
    _, frames = read_car(body)
    assert [cidlib.to_str(c) for c, _ in frames[:5]] == headers["X-Ipfs-Roots"].split(",")
    # Accept alone asks for a CAR too; HEAD has the headers and no body.
    status, headers, body = await get(hosting, f"/ipfs/{doc['cid']}", method="HEAD",
                                      headers={"Accept": "application/vnd.ipld.car"})
    assert status == 200 and headers["Content-Type"].startswith("application/vnd.ipld.car") and body == b""


@pytest.mark.parametrize("path,params,status", [
    ("/ipfs/not-a-cid", CAR, 400),
    ("/ipfs/{index}/no/such/file", CAR, 404),
    ("/ipfs/{index}/top.txt/below", CAR, 404),
    ("/ipfs/{index}", {**CAR, "dag-scope": "everything"}, 400),
    ("/ipfs/{index}/top.txt", {**CAR, "entity-bytes": "a:b"}, 400),
    ("/ipfs/{index}/top.txt", {**CAR, "entity-bytes": "99999999999999999999999:*"}, 400),
    ("/ipfs/{index}/top.txt", {**CAR, "entity-bytes": "100:*"}, 400),  # past its 4 bytes
    ("/ipfs/{index}", {"format": "tar"}, 406),
    ("/ipfs/bafkreiadgzfdjnfiitdqu3klu3kvxs3bgozfgkieav3iv2za7gnovcnra4", CAR, 404),
    ("/ipfs/{index}/..", CAR, 404),
    ("/ipfs/{index}/%2e%2e%2f%2e%2e%2fetc%2fpasswd", CAR, 404),
])
async def test_bad_requests_are_json_errors(indexed, hosting, path, params, status):
    _, index_cid = indexed
    got, headers, body = await get(hosting, path.replace("{index}", index_cid), params)
    assert got == status, body
    import json
    answer = json.loads(body)
    assert answer["error"] and "detail" in answer


async def test_removed_preparation_is_not_served(indexed, hosting, db):
    prepared, index_cid = indexed
    await db[models.SCANNING].delete_one({"_id": prepared.id})
    status, _, _ = await get(hosting, f"/ipfs/{index_cid}/a/big.bin", CAR)
    assert status == 404


async def test_nothing_outside_car_dir_is_read(indexed, hosting, config, tmp_path):
    """A CAR in car_dir that is a symlink to a file elsewhere is not followed."""
    import os
    prepared, _ = indexed
    gen = prepared.chunks[0]
    outside = tmp_path / "elsewhere.car"
    os.replace(gen["carPath"], outside)
    os.symlink(outside, gen["carPath"])
    status, _, body = await get(hosting, f"/ipfs/{gen['dataCid']}", CAR)
    assert status == 404 and b"no such block" in body


async def test_paths_through_a_hamt_sharded_directory(db, config, tmp_path, aiohttp_server):
    """A folder of more than 1000 entries is a HAMT in the chunk's DAG: a path through it goes
    by the name's hash, and the shard blocks on the way are sent first."""
    from services.hosting.service import create
    from tests.pipeline import prepare, write_tree
    files = {f"many/f{i:04d}.txt": f"file {i}\n".encode() for i in range(1100)}
    write_tree(tmp_path / "ds", files)
    prepared = await prepare(db, config, tmp_path / "ds", "hamt", 8 << 20, 5 << 20, 6 << 20)
    data_cid = prepared.chunks[0]["dataCid"]
    hosting = str((await aiohttp_server(create(config, db))).make_url("")).rstrip("/")
    for name in ("f0000.txt", "f0777.txt", "f1099.txt"):
        status, headers, body = await get(hosting, f"/ipfs/{data_cid}/many/{name}", CAR)
        assert status == 200, body
        _, frames = read_car(body)
        blocks = dict(frames)
        kinds = [pbnode.decode_unixfs(pbnode.decode_node(d).data).type for c, d in frames[1:-1]]
        assert kinds and all(k == pbnode.TYPE_HAMT_SHARD for k in kinds)  # root, shard(s), file
        assert blocks[frames[-1][0]] == files[f"many/{name}"]
    status, _, _ = await get(hosting, f"/ipfs/{data_cid}/many/f1100.txt", CAR)
    assert status == 404

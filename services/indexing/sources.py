"""Where blocks come from when retrieving: hosting services, storage-provider HTTP endpoints, kubo.

Three ways to get a file range's blocks from one endpoint:
  block: `GET /ipfs/{cid}?format=raw` per block, walking the UnixFS DAG from its root;
  piece: one `GET /piece/{pieceCid}` with `Range` over the span of the CAR the index says holds
         all of the range's blocks, parsed frame by frame;
  car:   one trustless-gateway `GET /ipfs/{cid}?format=car&dag-scope=entity` (with entity-bytes
         for part of a range), parsed frame by frame.
Every block is verified against its CID whichever way it came (a 200 can still be truncated or
wrong); raw leaves from a piece span are spooled to a temporary file, never held in memory.
"""
from __future__ import annotations

import http.client
import os
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import BinaryIO, Callable

from services.indexing import model
from shared.ipld import carfile, pbnode
from shared.ipld import cid as cidlib
from shared.ipld import varint

_READ = 1 << 20
MAX_BLOCK = 4 << 20  # larger frames are refused rather than buffered


class FetchError(Exception):
    pass


class Unreachable(FetchError):
    """The endpoint did not answer at all: not worth asking again during this run."""


@dataclass
class Source:
    url: str
    token: str = ""  # sent only to the suite's own hosting service, never to third parties
    timeout: float = 60.0
    label: str = ""  # how --json names it: "hosting", "f01000 (active deal)", "<peer> (IPNI)"

    def open(self, path: str, headers: dict | None = None):
        try:
            request = urllib.request.Request(self.url.rstrip("/") + path, headers=dict(headers or {}))
        except ValueError as exc:
            raise FetchError(f"{self.url}: {exc}") from None
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        try:
            return _Response(urllib.request.urlopen(request, timeout=self.timeout), f"{self.url}{path}")
        except urllib.error.HTTPError as exc:
            raise FetchError(f"{self.url}{path}: HTTP {exc.code}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise Unreachable(f"{self.url}: {getattr(exc, 'reason', exc)}") from None
        except (http.client.HTTPException, ValueError) as exc:  # a bad status line, an invalid URL
            raise FetchError(f"{self.url}{path}: {type(exc).__name__}: {exc}") from None

    def get_json(self, path: str):
        import json
        with self.open(path, {"Accept": "application/json"}) as response:
            try:
                return json.loads(response.read())
            except ValueError:
                raise FetchError(f"{self.url}{path}: not JSON") from None

    def block(self, cid: bytes) -> bytes:
        name = cidlib.to_str(cid)
        with self.open(f"/ipfs/{name}?format=raw", {"Accept": "application/vnd.ipld.raw"}) as response:
            data = response.read(MAX_BLOCK + 1)
        if len(data) > MAX_BLOCK:
            raise FetchError(f"block {name} from {self.url} is larger than {MAX_BLOCK} bytes")
        pbnode.verify(cid, data, self.url)
        return data


class KuboSource(Source):
    """A kubo RPC API (`ipfs_api`): index blocks through `POST /api/v0/block/get`, since the
    index is pinned there. It serves no pieces or gateway CARs."""

    def block(self, cid: bytes) -> bytes:
        name = cidlib.to_str(cid)
        request = urllib.request.Request(f"{self.url}/api/v0/block/get?arg={name}", data=b"", method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                data = _Response(response, self.url).read(MAX_BLOCK + 1)
        except urllib.error.HTTPError as exc:
            raise FetchError(f"{self.url} block/get {name}: HTTP {exc.code}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise Unreachable(f"{self.url}: {getattr(exc, 'reason', exc)}") from None
        if len(data) > MAX_BLOCK:
            raise FetchError(f"block {name} from {self.url} is larger than {MAX_BLOCK} bytes")
        pbnode.verify(cid, data, self.url)
        return data


class _Response:
    """An HTTP response whose read failures (a chunked body cut short raises IncompleteRead, which
    is no OSError) are FetchErrors, so the caller falls back to the next source or method."""

    def __init__(self, response, where: str):
        self._response = response
        self._where = where
        self.status = response.status
        self.headers = response.headers

    def read(self, size: int = -1) -> bytes:
        try:
            return self._response.read() if size is None or size < 0 else self._response.read(size)
        except (http.client.HTTPException, OSError) as exc:
            raise FetchError(f"{self._where}: the response broke off ({type(exc).__name__})") from None

    def __enter__(self) -> "_Response":
        return self

    def __exit__(self, *exc) -> None:
        self._response.close()


def _read_exact(stream: BinaryIO, n: int) -> bytes:
    first = stream.read(n)
    if len(first) == n:  # the usual case: no copy
        return first
    out = bytearray(first)
    if not first:
        raise FetchError("response ended in the middle of a CAR frame")
    while len(out) < n:
        chunk = stream.read(n - len(out))
        if not chunk:
            raise FetchError("response ended in the middle of a CAR frame")
        out += chunk
    return bytes(out)


def _read_varint(stream: BinaryIO) -> int | None:
    raw = bytearray()
    while True:
        b = stream.read(1)
        if not b:
            if raw:
                raise FetchError("response ended in the middle of a CAR frame")
            return None
        raw += b
        if not b[0] & 0x80:
            return varint.decode(raw, 0)[0]
        if len(raw) > 9:
            raise FetchError("malformed CAR frame length")


Sink = Callable[[int, bytes], None]  # (offset within the range, bytes)


def walk_blocks(root: bytes, get: Callable[[bytes], bytes], sink: Sink) -> int:
    """Write a UnixFS file DAG's bytes in order through `sink`; return how many."""
    position = 0
    stack = [root]
    while stack:
        cid = stack.pop()
        data = get(cid)
        if pbnode.codec_of(cid) == cidlib.RAW:
            sink(position, data)
            position += len(data)
            continue
        layout = pbnode.file_layout(data)
        if layout.inline:
            sink(position, layout.inline)
            position += len(layout.inline)
        stack.extend(reversed(layout.children))
    return position


def fetch_by_blocks(source: Source, info: dict, sink: Sink, spool_dir: str | None = None) -> int:
    return walk_blocks(model.link(info["cid"]), source.block, sink)


def fetch_by_piece(source: Source, info: dict, sink: Sink, spool_dir: str | None = None) -> int:
    """A CAR written leaves first, in file order (ours are), goes straight to `sink`: each leaf at
    the next offset as it arrives, verified, then the DAG walked to confirm every leaf sits where
    the file needs it. Only a span laid out otherwise (repeated leaves, another packer's order) is
    fetched again and spooled."""
    try:
        return _fetch_piece_span(source, info, sink, spool_dir, direct=True)
    except _NotInFileOrder:
        return _fetch_piece_span(source, info, sink, spool_dir, direct=False)


class _NotInFileOrder(Exception):
    pass


def _fetch_piece_span(source: Source, info: dict, sink: Sink, spool_dir: str | None, direct: bool) -> int:
    if info.get("carOffset") is None or not info.get("pieceCid"):
        raise FetchError("the index has no piece span for this range")
    start, length = int(info["carOffset"]), int(info["carLength"])
    path = f"/piece/{info['pieceCid']}"
    with tempfile.TemporaryFile(dir=spool_dir) as spool:
        with source.open(path, {"Range": f"bytes={start}-{start + length - 1}"}) as response:
            if response.status != 206 or not (response.headers.get("Content-Range") or "").startswith(
                    f"bytes {start}-{start + length - 1}/"):
                raise FetchError(f"{source.url}{path} did not answer the range request with 206 and that range")
            store = _Frames(spool, f"{source.url}{path}", sink if direct else None, int(info["length"]))
            store.read(response, length)
        if direct:
            return store.confirm(model.link(info["cid"]))
        return walk_blocks(model.link(info["cid"]), store.get, sink)


def fetch_by_car(source: Source, info: dict, sink: Sink, spool_dir: str | None = None,
                 span: tuple[int, int] | None = None) -> int:
    """The range's DAG as a trustless-gateway CAR; with `span` (bytes [start, end) of the range),
    only the blocks for those bytes, and only those bytes go to `sink`."""
    root = model.link(info["cid"])
    path = f"/ipfs/{cidlib.to_str(root)}?format=car&dag-scope=entity"
    if span is not None:
        path += f"&entity-bytes={span[0]}:{span[1] - 1}"
    with tempfile.TemporaryFile(dir=spool_dir) as spool:
        with source.open(path, {"Accept": "application/vnd.ipld.car; version=1; order=dfs; dups=n"}) as response:
            size = _read_varint(response)
            if size is None or size > MAX_BLOCK:
                raise FetchError(f"{source.url}{path}: not a CAR")
            _read_exact(response, size)  # the header: roots are not to be trusted anyway (spec)
            if span is None and "order=dfs" in (response.headers.get("Content-Type") or ""):
                return _walk_stream(root, response, sink, f"{source.url}{path}")
            store = _Frames(spool, f"{source.url}{path}")
            store.read(response, None)
        if span is None:
            return walk_blocks(root, store.get, sink)
        return walk_range(root, store.get, sink, *span)


LEAF_CACHE = 32 << 20  # leaves kept for a DAG that repeats them (dups=n sends each block once)


def _walk_stream(root: bytes, response, sink: Sink, where: str) -> int:
    """A whole UnixFS file from a CAR in depth-first order, written as it arrives: each frame
    must be the next block of the walk (or one already sent), verified, never spooled."""
    nodes: dict[bytes, bytes] = {}
    leaves: dict[bytes, bytes] = {}
    cached = 0
    position = 0
    stack = [root]
    while stack:
        cid = stack.pop()
        data = nodes.get(cid) if cid in nodes else leaves.get(cid)
        if data is None:
            size = _read_varint(response)
            if size is None:
                raise FetchError(f"{where}: the CAR ended before block {cidlib.to_str(cid)}")
            if size > MAX_BLOCK:
                raise FetchError(f"{where}: CAR frame of {size} bytes is too large")
            frame = _read_exact(response, size)
            cid_len = carfile.cid_length(frame)
            if frame[:cid_len] != cid:
                raise FetchError(f"{where}: block {cidlib.to_str(frame[:cid_len])} arrived where the walk needs "
                                 f"{cidlib.to_str(cid)} (not in dfs order, or a block repeated beyond the cache)")
            data = memoryview(frame)[cid_len:]  # a view: 1 MiB leaves are not copied again
            pbnode.verify(cid, data, where)
        if pbnode.codec_of(cid) == cidlib.RAW:
            sink(position, data)
            position += len(data)
            if cid not in leaves and cached + len(data) <= LEAF_CACHE:
                leaves[cid] = data
                cached += len(data)
            continue
        nodes[cid] = data = bytes(data)
        layout = pbnode.file_layout(data)
        if layout.inline:
            sink(position, layout.inline)
            position += len(layout.inline)
        stack.extend(reversed(layout.children))
    return position


class _Frames:
    """Verified blocks of a CAR stream: inner nodes in memory, raw leaves spooled to a file."""

    def __init__(self, spool, where: str, direct: Sink | None = None, limit: int = 0):
        self.spool = spool
        self.where = where
        self.nodes: dict[bytes, bytes] = {}
        self.leaves: dict[bytes, tuple[int, int]] = {}  # cid -> (spool offset, or output offset when direct; length)
        self.direct = direct
        self.limit = limit  # bytes the direct sink takes: more means other blocks share the span
        self.written = 0

    def read(self, response, length: int | None) -> None:
        consumed = 0
        while length is None or consumed < length:
            size = _read_varint(response)
            if size is None:
                if length is None:
                    break
                raise FetchError(f"{self.where}: range ended after {consumed} of {length} bytes")
            if size > MAX_BLOCK:
                raise FetchError(f"{self.where}: CAR frame of {size} bytes is too large")
            frame = _read_exact(response, size)
            consumed += len(varint.encode(size)) + size
            cid_len = carfile.cid_length(frame)
            cid, data = frame[:cid_len], memoryview(frame)[cid_len:]
            pbnode.verify(cid, data, self.where)
            if pbnode.codec_of(cid) == cidlib.RAW and self.direct is not None:
                if cid in self.leaves or self.written + len(data) > self.limit:
                    raise _NotInFileOrder()
                self.direct(self.written, data)
                self.leaves[cid] = (self.written, len(data))
                self.written += len(data)
            elif pbnode.codec_of(cid) == cidlib.RAW:
                self.leaves[cid] = (self.spool.tell(), len(data))
                self.spool.write(data)
            else:
                self.nodes[cid] = bytes(data)
        self.spool.flush()

    def confirm(self, root: bytes) -> int:
        """After a direct read: walk the DAG and check each leaf was written where it belongs."""
        position = 0
        stack = [root]
        while stack:
            cid = stack.pop()
            if pbnode.codec_of(cid) == cidlib.RAW:
                where = self.leaves.get(cid)
                if where is None:
                    raise FetchError(f"block {cidlib.to_str(cid)} is not in what {self.where} sent")
                if where[0] != position:
                    raise _NotInFileOrder()
                position += where[1]
                continue
            data = self.nodes.get(cid)
            if data is None:
                raise FetchError(f"block {cidlib.to_str(cid)} is not in what {self.where} sent")
            layout = pbnode.file_layout(data)
            if layout.inline:
                raise _NotInFileOrder()
            stack.extend(reversed(layout.children))
        if position != self.written:
            raise _NotInFileOrder()  # leaves of something else in the span were written too
        return position

    def get(self, cid: bytes) -> bytes:
        if cid in self.nodes:
            return self.nodes[cid]
        where = self.leaves.get(cid)
        if where is None:
            raise FetchError(f"block {cidlib.to_str(cid)} is not in what {self.where} sent")
        return os.pread(self.spool.fileno(), where[1], where[0])


def walk_range(root: bytes, get: Callable[[bytes], bytes], sink: Sink, start: int, end: int) -> int:
    """Like walk_blocks for bytes [start, end) of the DAG only, skipping subtrees outside it by
    their blocksizes; `sink` gets offsets relative to the DAG. Returns the bytes written."""
    written = 0
    stack = [(root, 0)]
    while stack:
        cid, position = stack.pop()
        data = get(cid)
        if pbnode.codec_of(cid) == cidlib.RAW:
            pieces = [(position, data)]
            children = []
        else:
            node = pbnode.decode_node(data)
            fs = pbnode.decode_unixfs(node.data)
            pieces = [(position, fs.data)] if fs.data else []
            children, at = [], position + len(fs.data)
            for link, size in zip(node.links, fs.blocksizes):
                if at < end and at + size > start:
                    children.append((link.cid, at))
                at += size
            if len(fs.blocksizes) != len(node.links):
                raise FetchError(f"UnixFS node {cidlib.to_str(cid)} has no blocksizes for its links")
        for offset, chunk in pieces:
            low, high = max(offset, start), min(offset + len(chunk), end)
            if low < high:
                sink(low, chunk[low - offset:high - offset])
                written += high - low
        stack.extend(reversed(children))
    return written


METHODS = {"piece": fetch_by_piece, "block": fetch_by_blocks, "car": fetch_by_car}

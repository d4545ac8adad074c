"""Retrieving a file, a folder or a whole dataset through its index.

The index is read block by block over `/ipfs/{cid}?format=raw` and each file range is fetched
from the first source and method that delivers it with every block verified. The sources are
the `--from` endpoints, or else those discovery.py finds for each range (our providers, IPNI,
the hosting service); one that is unreachable or sends a block not matching its CID is skipped
for the rest of the run. A file is written
under a temporary name in its destination folder and renamed only once all its ranges arrived
and its size is right, so a failure leaves no partial output file. A file already on disk whose
ranges hash to the index's CIDs is skipped, which is what makes a retrieval resumable.
"""
from __future__ import annotations

import glob
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Callable, Iterator

from services.indexing import model, sources, tarformat
from shared.ipld import pbnode
from shared.ipld import cid as cidlib
from shared.ipld import unixfs

Progress = Callable[[int], None]

if TYPE_CHECKING:
    from services.indexing.discovery import Discovery


class RetrievalError(Exception):
    pass


@dataclass
class Item:
    """One file to retrieve: where it goes (relative, posix) and its index node."""
    path: str
    node: dict


@dataclass
class Plan:
    index_cid: str
    path: str  # inside the dataset, '' for the root
    root_name: str  # the name the target gets in the output
    is_dir: bool
    files: list[Item] = field(default_factory=list)
    dirs: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(int(i.node["__size"]) for i in self.files)


def split_target(target: str) -> tuple[str, str]:
    target = target.strip()
    for prefix in ("/ipfs/", "ipfs://"):
        if target.startswith(prefix):
            target = target[len(prefix):]
    head, _, rest = target.strip("/").partition("/")
    if not head:
        raise RetrievalError("give a dataset name or an index CID, optionally followed by /path")
    return head, "/".join(p for p in rest.split("/") if p)


def is_index_cid(text: str) -> bool:
    try:
        binary = cidlib.from_str(text)
        return cidlib.parse(binary)[0] == model.DAG_CBOR and cidlib.to_str(binary) == text
    except ValueError:
        return False


def _safe_name(name: str) -> str:
    try:
        return model.check_name(name)
    except ValueError as exc:
        raise RetrievalError(str(exc)) from None


class Retriever:
    def __init__(self, srcs: list[sources.Source], methods: tuple[str, ...] = ("piece", "block"),
                 discovery: "Discovery | None" = None):
        if not srcs and discovery is None:
            raise RetrievalError("no source to retrieve from")
        self.sources = srcs
        self.discovery = discovery
        self.methods = methods
        self._index_blocks: dict[bytes, dict] = {}
        self.skipped: dict[str, str] = {}  # url -> why it is not asked again in this run
        self.served: dict[str, dict] = {}  # url -> what it delivered

    def _range_sources(self, info: dict) -> Iterator[sources.Source]:
        for source in self.sources or self.discovery.range_sources(info):
            if source.url not in self.skipped:
                yield source

    def _index_sources(self, cid: bytes) -> list[sources.Source]:
        found = self.sources or self.discovery.index_sources(cid)
        return [s for s in found if s.url not in self.skipped]

    def _failed(self, source: sources.Source, exc: Exception) -> None:
        # Silence and lies (a block that is not what its CID says) rule a source out for the
        # run; a 404 or a refused range only fails this request.
        if isinstance(exc, (sources.Unreachable, pbnode.CidMismatch)):
            self.skipped.setdefault(source.url, str(exc))

    def _credit(self, source: sources.Source, method: str, nbytes: int) -> None:
        entry = self.served.setdefault(source.url, {"url": source.url, "label": source.label, "ranges": 0,
                                                    "bytes": 0, "methods": {}})
        entry["ranges"] += 1
        entry["bytes"] += nbytes
        entry["methods"][method] = entry["methods"].get(method, 0) + 1

    def report(self) -> dict:
        return {"sources": list(self.served.values()),
                "skippedSources": [{"url": u, "reason": r} for u, r in self.skipped.items()],
                "lookupErrors": list(self.discovery.notes) if self.discovery else []}

    # --- the index ---

    def index_cid_of(self, name: str) -> str:
        failures = []
        hosts = self.sources or ([self.discovery.settings.hosting] if self.discovery.settings.hosting else [])
        for source in hosts:
            try:
                answer = source.get_json(f"/index/{urllib_quote(name)}")
                if isinstance(answer, dict) and is_index_cid(str(answer.get("indexCid"))):
                    return answer["indexCid"]
                failures.append(f"{source.url}: no index CID in the answer")
            except sources.FetchError as exc:
                failures.append(str(exc))
        raise RetrievalError(f"cannot find the index of dataset {name!r}: " + "; ".join(failures))

    def node(self, cid: bytes) -> dict:
        if cid in self._index_blocks:
            return self._index_blocks[cid]
        if pbnode.codec_of(cid) != model.DAG_CBOR:
            raise RetrievalError(f"index link {cidlib.to_str(cid)} is not DAG-CBOR")
        failures = []
        for source in self._index_sources(cid):
            try:
                node = model.decode(source.block(cid))
                self._index_blocks[cid] = node
                return node
            except (sources.FetchError, ValueError) as exc:
                self._failed(source, exc)
                failures.append(str(exc))
        raise RetrievalError(f"cannot fetch index block {cidlib.to_str(cid)}: "
                             + ("; ".join(failures) or "no source has it"))

    def plan(self, index_cid: str, path: str, root_name: str) -> Plan:
        node = self.node(cidlib.from_str(index_cid))
        walked = []
        for part in [p for p in path.split("/") if p]:
            if node.get("__type") != "dir":
                raise RetrievalError(f"{'/'.join(walked) or '/'} is a file, not a folder")
            child = model.lookup(node, part, self.node)
            if child is None:
                raise RetrievalError(f"no {part!r} in /{'/'.join(walked)}")
            node = child
            walked.append(part)
        name = _safe_name(walked[-1] if walked else root_name)
        plan = Plan(index_cid, "/".join(walked), name, node.get("__type") == "dir")
        if plan.is_dir:
            plan.dirs.append(name)
            self._collect(node, name, plan)
        else:
            plan.files.append(Item(name, node))
        return plan

    def _collect(self, node: dict, prefix: str, plan: Plan) -> None:
        for name, value in model.entries(node, self.node):
            path = f"{prefix}/{_safe_name(name)}"
            child = model.resolve(value, self.node)
            if not isinstance(child, dict):
                raise RetrievalError(f"index entry {path} is malformed")
            if child.get("__type") == "dir":
                plan.dirs.append(path)
                self._collect(child, path, plan)
            elif child.get("__type") == "file":
                plan.files.append(Item(path, child))
            else:
                raise RetrievalError(f"index entry {path} has unknown type {child.get('__type')!r}")

    # --- file data ---

    def fetch_file(self, item: Item, out: BinaryIO, spool_dir: str | None, progress: Progress | None = None) -> None:
        """Write the whole file to `out` (positioned writes), every range verified."""
        size = int(item.node["__size"])
        covered = 0
        for info in sorted(item.node.get("__source") or [], key=lambda s: int(s["offset"])):
            offset, length = int(info["offset"]), int(info["length"])
            if offset != covered:
                raise RetrievalError(f"{item.path}: the index leaves bytes {covered}-{offset} uncovered")
            self._fetch_range(item.path, info, out, spool_dir, progress)
            covered += length
        if covered != size:
            raise RetrievalError(f"{item.path}: the index covers {covered} of {size} bytes")
        out.truncate(size)

    def _fetch_range(self, path: str, info: dict, out: BinaryIO, spool_dir: str | None, progress: Progress | None):
        offset, length = int(info["offset"]), int(info["length"])
        failures = []
        for source in self._range_sources(info):
            for method in self.methods:
                if source.url in self.skipped:
                    break
                reported = 0

                def sink(position: int, data: bytes) -> None:
                    nonlocal reported
                    if position + len(data) > length:
                        raise sources.FetchError(f"the DAG of {model.link_text(info['cid'])} holds more than {length} bytes")
                    os.pwrite(out.fileno(), data, offset + position)
                    if progress is not None and position + len(data) > reported:
                        progress(position + len(data) - reported)
                        reported = position + len(data)

                try:
                    got = sources.METHODS[method](source, info, sink, spool_dir)
                    if got != length:
                        raise sources.FetchError(f"the DAG of {model.link_text(info['cid'])} holds {got} bytes, expected {length}")
                    self._credit(source, method, length)
                    return
                except (sources.FetchError, ValueError, OSError) as exc:
                    if progress is not None and reported:
                        progress(-reported)
                    self._failed(source, exc)
                    failures.append(f"{source.url} ({method}): {exc}")
        if not failures:
            failures.append("no source was found for its piece" + (
                f" ({'; '.join(self.discovery.notes)})" if self.discovery and self.discovery.notes else ""))
        raise RetrievalError(f"{path}: bytes {offset}-{offset + length} could not be retrieved: " + "; ".join(failures))


def urllib_quote(text: str) -> str:
    from urllib.parse import quote
    return quote(text, safe="")


def verified_on_disk(path: Path, node: dict) -> bool:
    """Whether `path` already holds this file: right size and every range's UnixFS CID matches."""
    try:
        if not path.is_file() or path.stat().st_size != int(node["__size"]):
            return False
        with open(path, "rb") as f:
            for info in node.get("__source") or []:
                f.seek(int(info["offset"]))
                builder = unixfs.FileBuilder(lambda cid, data: None)
                remaining = int(info["length"])
                while remaining > 0:
                    chunk = f.read(min(unixfs.CHUNK_SIZE, remaining))
                    if not chunk:
                        return False
                    builder.add_chunk(chunk)
                    remaining -= len(chunk)
                if builder.close().cid != model.link(info["cid"]):
                    return False
        return True
    except (OSError, ValueError, KeyError):
        return False


@dataclass
class Result:
    fetched: int = 0
    skipped: int = 0
    bytes: int = 0


def write_tree(retriever: Retriever, plan: Plan, output: Path, progress: Progress | None = None) -> Result:
    result = Result()
    for directory in plan.dirs:
        (output / directory).mkdir(parents=True, exist_ok=True)
    for item in plan.files:
        dest = output / item.path
        dest.parent.mkdir(parents=True, exist_ok=True)
        size = int(item.node["__size"])
        remove_stale_partials(dest)
        if verified_on_disk(dest, item.node):
            result.skipped += 1
            if progress:
                progress(size)
            continue
        fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".partial", dir=dest.parent)
        try:
            with os.fdopen(fd, "wb") as out:
                retriever.fetch_file(item, out, str(dest.parent), progress)
            if "__mtime" in item.node:
                os.utime(tmp, (int(item.node["__mtime"]), int(item.node["__mtime"])))
            os.chmod(tmp, 0o644)
            os.replace(tmp, dest)
        except BaseException:
            _unlink(tmp)
            raise
        result.fetched += 1
        result.bytes += size
    return result


def write_tar(retriever: Retriever, plan: Plan, out: BinaryIO, spool_dir: str | None = None,
              progress: Progress | None = None) -> Result:
    """Stream a tar of the plan to `out`; each file is fetched and verified before it is added."""
    result = Result()
    for entry in _tar_order(plan):
        if isinstance(entry, str):  # a directory
            out.write(tarformat.header(entry, 0, 0, directory=True))
            continue
        item = entry
        with tempfile.TemporaryFile(dir=spool_dir) as staged:
            retriever.fetch_file(item, staged, spool_dir, progress)
            size = int(item.node["__size"])
            out.write(tarformat.header(item.path, size, int(item.node.get("__mtime", 0))))
            staged.seek(0)
            shutil.copyfileobj(staged, out, 1 << 20)
            out.write(tarformat.padding(size))
        result.fetched += 1
        result.bytes += size
    out.write(tarformat.END)
    out.flush()
    return result


def _tar_order(plan: Plan) -> Iterator:
    """Directories and files in path order, each directory before its contents."""
    entries: list[tuple[str, object]] = [(d, d) for d in plan.dirs] + [(i.path, i) for i in plan.files]
    for _, entry in sorted(entries, key=lambda e: e[0].split("/")):
        yield entry


def remove_stale_partials(dest: Path) -> None:
    """Delete the temporary files an earlier, killed retrieval of `dest` left behind (SIGKILL and
    power loss run no cleanup): the file is complete or fetched again now."""
    pattern = glob.escape(f".{dest.name}.") + "?" * 8 + ".partial"  # tempfile.mkstemp's names
    for stale in dest.parent.glob(pattern):
        _unlink(str(stale))


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


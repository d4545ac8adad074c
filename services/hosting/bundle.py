"""`GET /bundle/{preparation}/{path}`: a tar of a prepared folder (or file), streamed from the CARs.

Member list and Content-Length are computed from the GenerationFile documents first; then each
file's blocks are located a batch of members at a time (services/hosting/filedata.py), read from
their chunks' CARs in long spans, verified, and written out: neither the bundle nor a whole file is
ever staged, and the number of queries does not grow with the number of files. A block that fails
verification aborts the response (the client sees a short body, never silently wrong bytes).
"""
from __future__ import annotations

import asyncio
import logging
import posixpath
from dataclasses import dataclass, field
from urllib.parse import quote

from aiohttp import web

from services.hosting import catalog, filedata
from services.indexing import builder, model, tarformat
from shared import chunkdata, models
from shared.models import fileversions
from shared.api import NotFound
from shared.ipld import cid as cidlib

log = logging.getLogger(__name__)

BATCH = 1000  # members whose blocks are located together
WRITE = 1 << 20  # bytes sent to the client at a time


@dataclass
class Member:
    name: str
    size: int
    mtime: int
    directory: bool = False
    ranges: list[dict] = field(default_factory=list)


def clean_path(path: str) -> str:
    """A dataset-relative path; '' for the root. Anything that could step out is refused."""
    parts = [p for p in path.split("/") if p != ""]
    for part in parts:
        try:
            model.check_name(part)
        except ValueError:
            raise NotFound("no such path in the dataset", path) from None
    return "/".join(parts)


async def find_preparation(db, key: str) -> dict:
    prep = await db[models.SCANNING].find_one({"_id": key}) or await db[models.SCANNING].find_one({"name": key})
    if prep is None:
        raise NotFound("no such preparation", key)
    return prep


async def members(db, prep: dict, path: str) -> list[Member]:
    if path:
        # "a/b" itself, or anything under "a/b/" ("0" is the character after "/").
        selector = {"$or": [{"relativePath": path}, {"relativePath": {"$gte": path + "/", "$lt": path + "0"}}]}
        base = posixpath.dirname(path)
    else:
        selector = {}
        base = None
    query = {"preparationId": prep["_id"], **selector}
    docs = await db[models.GENERATION_FILES].find(query).sort([("relativePath", 1), ("start", 1)]).to_list(None)
    # The newest version of each path, deleted ones left out (shared/models/fileversions.py).
    docs = [doc for ranges in fileversions.newest(docs) for doc in ranges]
    if not docs:
        raise NotFound("no such path in the dataset", path or "/")
    out: list[Member] = []
    seen_dirs: set[str] = set()
    by_path: dict[str, Member] = {}
    top = root_folder(prep)
    for doc in docs:
        relative = doc["relativePath"]
        if base is None:  # the whole dataset unpacks into a folder named after it
            name = member_name(f"{top}/{relative}")
        else:
            name = member_name(relative[len(base) + 1:] if base else relative)
        depth = name.count("/") + (1 if doc.get("directory") else 0)  # an empty directory is a member too
        for i in range(1, depth + 1):
            directory = "/".join(name.split("/")[:i])
            if directory not in seen_dirs:
                seen_dirs.add(directory)
                out.append(Member(directory, 0, 0, directory=True))
        if doc.get("directory"):
            continue
        member = by_path.get(relative)
        if member is None:
            member = Member(name, int(doc["size"]), builder._seconds(doc.get("mtime")) or 0)
            by_path[relative] = member
            out.append(member)
        member.ranges.append(doc)
    for member in by_path.values():
        if sum(int(r["end"]) - int(r["start"]) for r in member.ranges) != member.size:
            raise NotFound("the dataset's chunks do not cover this file completely", member.name)
    return out


def root_folder(prep: dict) -> str:
    """The folder a whole-dataset bundle unpacks into: the preparation's name when it is one safe
    file name (names are validated on creation, older records may predate that), else its id."""
    name = prep["name"]
    return str(prep["_id"]) if models.preparation_name_problem(name) else name


def member_name(name: str) -> str:
    """A tar member name that is relative and normalized, whatever the database holds: extracting
    a bundle can only ever create files below the folder it is extracted in (no tar slip)."""
    parts = [part for part in name.split("/") if part not in ("", ".")]
    if not parts or ".." in parts or any("\0" in part for part in parts):
        raise NotFound("the dataset holds a path that cannot be bundled safely", name)
    return "/".join(parts)


def safe_filename(name: str | None, default: str) -> str:
    name = name or default
    if not name.endswith(".tar"):
        name += ".tar"
    return posixpath.basename(name.replace("\\", "/")) or default


async def serve(request: web.Request, db, car_dir: str, key: str, path: str,
                filename: str | None = None) -> web.StreamResponse:
    prep = await find_preparation(db, key)
    path = clean_path(path)
    listed = await members(db, prep, path)
    generations = {g["_id"]: g async for g in db[models.GENERATION].find({"preparationId": prep["_id"]})}
    on_host: dict[str, chunkdata.CarFileBody | chunkdata.LayoutBody] = {}
    for member in listed:
        for doc in member.ranges:
            gen = generations.get(doc["generationId"])
            if gen is None or gen.get("status") != models.Status.COMPLETED.value:
                raise NotFound("a chunk holding this path is not prepared yet", member.name)
            if gen["_id"] not in on_host:
                body = catalog.chunk_body(db, car_dir, [], {**gen, "importedCar": None})
                if body is None:
                    raise NotFound("a CAR file holding this path is not on this host", gen.get("dataCid"))
                if isinstance(body, chunkdata.LayoutBody) and body.refused() is not None:
                    raise body.refused()
                on_host[gen["_id"]] = body
    total = sum(tarformat.member_length(m.name, m.size, m.mtime, m.directory) for m in listed) + len(tarformat.END)
    filename = safe_filename(filename, posixpath.basename(path) or prep["name"])
    response = web.StreamResponse(headers={
        "Content-Type": "application/x-tar",
        "Content-Disposition": f"attachment; filename*=UTF-8''{quote(filename)}",
    })
    response.content_length = total
    await response.prepare(request)
    if request.method == "HEAD":
        await response.write_eof()
        return response
    try:
        await _stream(response, db, listed, generations, on_host)
    except (ConnectionResetError, asyncio.CancelledError):
        raise
    except Exception as exc:
        # Headers are gone: the only honest signal left is a body shorter than Content-Length.
        log.error("bundle %s/%s aborted: %s", key, path, exc)
        if request.transport is not None:
            request.transport.close()
    return response


async def _stream(response, db, listed: list[Member], generations: dict, bodies: dict) -> None:
    cars: dict[str, filedata.Car] = {}

    def car_of(doc: dict) -> filedata.Car:
        gen = generations[doc["generationId"]]
        if gen["_id"] not in cars:
            cars[gen["_id"]] = filedata.Car(db, bodies[gen["_id"]], gen["dataCid"])
        return cars[gen["_id"]]

    out = _Output(response)
    for start in range(0, len(listed), BATCH):
        batch = listed[start:start + BATCH]
        ranges = [doc for member in batch for doc in member.ranges]
        contents = iter(await filedata.resolve([(car_of(doc), cidlib.from_str(doc["cid"])) for doc in ranges]))
        parts: list = []
        for member in batch:
            parts.append(tarformat.header(member.name, member.size, member.mtime, member.directory))
            if member.directory:
                continue
            for doc in member.ranges:
                content = next(contents)
                expected = int(doc["end"]) - int(doc["start"])
                if filedata.length(content) != expected:
                    raise ValueError(f"range of {member.name} has {filedata.length(content)} bytes, expected {expected}")
                parts.extend(content)
            parts.append(tarformat.padding(member.size))
        await _send_spans(out, parts)
    await out.write(tarformat.END)
    await out.flush()
    await response.write_eof()


async def _send_spans(out: "_Output", parts: list) -> None:
    """Each span is read (in a thread) while the one before it is being sent."""
    reading = None
    try:
        for group in filedata.spans(parts):
            previous, reading = reading, asyncio.ensure_future(filedata.read_span(group))
            if previous is not None:
                await out.write(await previous)
        if reading is not None:
            previous, reading = reading, None
            await out.write(await previous)
    finally:
        if reading is not None:  # the response failed: nobody will use this span
            reading.cancel()
            reading.add_done_callback(lambda task: task.cancelled() or task.exception())


class _Output:
    """Writes to the response in pieces of about WRITE bytes, not one per tar header."""

    def __init__(self, response):
        self.response = response
        self.pending: list[bytes] = []
        self.size = 0

    async def write(self, data: bytes) -> None:
        self.pending.append(data)
        self.size += len(data)
        if self.size >= WRITE:
            await self.flush()

    async def flush(self) -> None:
        if self.pending:
            data = b"".join(self.pending) if len(self.pending) > 1 else self.pending[0]
            self.pending, self.size = [], 0
            await self.response.write(data)

"""The layout of a CAR that is never written: what is needed to assemble its bytes from the sources.

An inline preparation records, instead of writing the CAR, its bytes as a sequence of records:
literal bytes (the header, each block's frame prefix, i.e. its length varint and CID, and the
encoded dag-pb nodes) and references into a source file (file, offset, length) for raw leaves.
The records are cut into segments of about SEGMENT_BYTES of encoding, one document each: a chunk
of a million small files takes about a hundred of them, none anywhere near MongoDB's 16 MiB cap.
A segment lists the files it references in a table of its own (relative path, size and mtime at
scan), so any byte range of the CAR is assembled from the few segments that cover it.

A record is varint(length << 1 | kind), then for a literal (kind 0) its bytes, for a file
reference (kind 1) varint(index in the segment's file table) and varint(offset in the file).

The Recorder is fed the packer's own block events (the offset, CID and data of each block the CAR
writer takes, and whether the data is a read of a source file), so the layout describes exactly
the bytes the CAR writer would have written, duplicates skipped the same way.
"""
from __future__ import annotations

import bisect
import os
from dataclasses import dataclass, field
from typing import Callable, Iterator, Union

from . import varint

SEGMENT_BYTES = 1 << 20
LITERAL, FILE = 0, 1


@dataclass
class Segment:
    seq: int
    start: int  # CAR offset of its first byte
    end: int  # CAR offset past its last byte
    files: list[tuple[str, int, float | None]]  # relative path, size and mtime at scan
    records: bytes

    def encoded_size(self) -> int:
        """About what it costs stored: its records and its file table."""
        return len(self.records) + sum(len(path.encode("utf-8", "surrogateescape")) + 16
                                       for path, _, _ in self.files)


@dataclass(frozen=True)
class FileRange:
    """Bytes [offset, offset + length) of a source file, as recorded in a segment."""
    path: str  # relative to the preparation's root
    size: int
    mtime: float | None
    offset: int
    length: int


Piece = Union[memoryview, FileRange]


class Recorder:
    """Turns the packer's block events into segments. `entries` are the pack entries (anything
    with relative_path, size and mtime) that a source reference's index points into."""

    def __init__(self, entries: list, segment_bytes: int = SEGMENT_BYTES):
        self.entries = entries
        self.segment_bytes = segment_bytes
        self.segments: list[Segment] = []
        self.size = 0  # CAR bytes recorded so far
        self._records = bytearray()
        self._literal = bytearray()
        self._files: list[tuple[str, int, float | None]] = []
        self._file_index: dict[int, int] = {}
        self._start = 0

    def literal(self, data) -> None:
        self._literal += data
        self.size += len(data)

    def block(self, offset: int, cid: bytes, data, source: tuple[int, int] | None) -> None:
        """A block the CAR writer wrote, its data at `offset`; `source` (entry index, file offset)
        when the data is a read of that entry's file."""
        if source is not None and len(data):
            self.reference(offset, cid, len(data), source)
            return
        self._prefix(offset, cid, len(data))
        self.literal(data)
        if len(self._records) + len(self._literal) >= self.segment_bytes:
            self._cut()

    def reference(self, offset: int, cid: bytes, length: int, source: tuple[int, int]) -> None:
        """A block of `length` bytes (> 0) that is a read of (entry index, file offset)."""
        self._prefix(offset, cid, length)
        self._flush_literal()
        entry, file_offset = source
        local = self._file_index.get(entry)
        if local is None:
            e = self.entries[entry]
            local = self._file_index[entry] = len(self._files)
            self._files.append((e.relative_path, int(e.size), e.mtime))
        self._records += varint.encode(length << 1 | FILE) + varint.encode(local) + varint.encode(file_offset)
        self.size += length
        if len(self._records) >= self.segment_bytes:
            self._cut()

    def _prefix(self, offset: int, cid: bytes, length: int) -> None:
        prefix = varint.encode(len(cid) + length) + cid
        if offset - len(prefix) != self.size:
            raise ValueError(f"layout out of step with the CAR at offset {self.size} (block at {offset})")
        self.literal(prefix)

    def _flush_literal(self) -> None:
        if self._literal:
            self._records += varint.encode(len(self._literal) << 1 | LITERAL)
            self._records += self._literal
            self._literal = bytearray()

    def _cut(self) -> None:
        self._flush_literal()
        if self.size > self._start:
            self.segments.append(Segment(len(self.segments), self._start, self.size, self._files, self._records))
        self._records, self._files, self._file_index, self._start = bytearray(), [], {}, self.size

    def finish(self, header: bytes, car_size: int) -> list[Segment]:
        """Close the last segment and put the real header in place of the placeholder it was
        recorded with (the same length: only the root differs)."""
        self._cut()
        if car_size != self.size:
            raise ValueError(f"layout covers {self.size} bytes, the CAR has {car_size}")
        first = self.segments[0]
        tag_length, at = varint.decode(first.records, 0)
        if tag_length & 1 != LITERAL or tag_length >> 1 < len(header):
            raise ValueError("the layout does not start with the CAR header")
        first.records[at:at + len(header)] = header
        for segment in self.segments:
            segment.records = bytes(segment.records)
        return self.segments

    def stats(self) -> dict:
        return {"documents": len(self.segments), "bytes": sum(s.encoded_size() for s in self.segments)}


@dataclass
class Decoded:
    """A segment's records with their CAR offsets, for finding the ones a range needs."""
    segment: Segment
    offsets: list[int] = field(default_factory=list)
    items: list = field(default_factory=list)  # memoryview (literal) or (file index, file offset, length)


def decode(segment: Segment) -> Decoded:
    out = Decoded(segment)
    data = memoryview(segment.records)
    position, at = segment.start, 0
    while at < len(data):
        tag, at = varint.decode(data, at)
        length, kind = tag >> 1, tag & 1
        out.offsets.append(position)
        if kind == LITERAL:
            out.items.append(data[at:at + length])
            at += length
        else:
            index, at = varint.decode(data, at)
            file_offset, at = varint.decode(data, at)
            out.items.append((index, file_offset, length))
        position += length
    if position != segment.end:
        raise ValueError(f"layout segment {segment.seq} covers {position - segment.start} bytes, "
                         f"not {segment.end - segment.start}")
    return out


def pieces(decoded: Decoded, start: int, end: int) -> Iterator[Piece]:
    """The parts of CAR bytes [start, end) that lie in this segment, in order."""
    seg = decoded.segment
    start, end = max(start, seg.start), min(end, seg.end)
    if start >= end:
        return
    i = bisect.bisect_right(decoded.offsets, start) - 1
    while i < len(decoded.items) and decoded.offsets[i] < end:
        at = decoded.offsets[i]
        item = decoded.items[i]
        length = len(item) if isinstance(item, memoryview) else item[2]
        lo, hi = max(start, at) - at, min(end, at + length) - at
        if hi > lo:
            if isinstance(item, memoryview):
                yield item[lo:hi]
            else:
                path, size, mtime = seg.files[item[0]]
                yield FileRange(path, size, mtime, item[1] + lo, hi - lo)
        i += 1


def assemble(parts: list[Piece], read: Callable[[FileRange], bytes]) -> bytes:
    """The bytes of `parts`, source ranges read with `read` (which checks the file)."""
    return b"".join(p if isinstance(p, memoryview) else read(p) for p in parts)


def read_full(fd: int, offset: int, length: int) -> bytes:
    data = os.pread(fd, length, offset)
    while len(data) < length:
        more = os.pread(fd, length - len(data), offset + len(data))
        if not more:
            break
        data += more
    return data

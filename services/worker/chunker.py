"""Packing a stream of files into chunks: every chunk but the last holds between minSize and
maxSize bytes of data; a file too large for the current chunk is split across chunks.

A chunk also has to fit its piece once it is a CAR, and a CAR adds bytes to the data: per block a
length and a CID, per file a link in its directory, per directory a node. With many small files
that overhead can outgrow the margin between maxSize and the piece, so the chunker keeps an
overestimate of the CAR's size and closes a chunk early, below minSize if it must, rather than let
its piece come out twice the deal size.

The chunker only tracks sizes and the directory of the last entry, so a chunk of a million files
costs no memory here: the caller stores entries as they come and closes a chunk when told.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator

from services.worker.walk import Components, File
from shared.car_overhead import BLOCK, CAR_BASE, DIRECTORY, LINK, MIB, PER_MIB

SLIVER = 4096  # the smallest part of a file worth splitting off to top up a chunk


@dataclass(frozen=True)
class Entry:
    file: File
    start: int
    end: int


class Close:
    """Yielded where the open chunk ends and the next one begins."""


CLOSE = Close()


@dataclass(frozen=True)
class Unplaceable:
    """Yielded instead of the entries of a file whose directory nodes and links alone outgrow an
    empty chunk's piece (a deep path of long names with a small deal size): it is left out, and
    reported, rather than let a piece outgrow the deal size."""
    file: File


def car_overhead(file: File, length: int, new_directories: Components) -> int:
    name = len(file.components[-1].encode("utf-8", "surrogateescape"))
    directories = sum(DIRECTORY + len(d.encode("utf-8", "surrogateescape")) for d in new_directories)
    if file.directory:
        return DIRECTORY + name + directories
    leaves = -(-length // MIB)
    # A file of one block is that block; a larger one adds file nodes linking its leaves.
    file_nodes = 0 if leaves <= 1 else PER_MIB * leaves + BLOCK * (leaves // 1024 + 2)
    return BLOCK + LINK + name + directories + file_nodes


@dataclass
class Chunker:
    min_size: int
    max_size: int
    # Largest CAR a chunk may become (dealSize * 127/128); None when no piece limits it.
    car_limit: int | None = None
    size: int = 0  # data bytes in the open chunk
    count: int = 0  # entries in the open chunk
    car: int = CAR_BASE  # estimated CAR bytes of the open chunk
    directory: Components = field(default=())  # of the open chunk's last entry

    def __post_init__(self) -> None:
        if not 0 < self.min_size <= self.max_size:
            raise ValueError("need 0 < min_size <= max_size")

    def add(self, file: File, start: int = 0) -> Iterator[Entry | Close | Unplaceable]:
        """Place `file[start:]`: entries of the open chunk, with CLOSE wherever a chunk ends. A
        file has at most one entry per chunk; a split one closes the chunk it fills."""
        position = start
        while True:
            remaining = file.size - position
            take = min(remaining, self.max_size - self.size)
            room = self.room(file, remaining)
            if room < take:
                if self.count and room < min(take, SLIVER):  # the next chunk takes it whole or a larger part
                    yield self.close()
                    continue
                if not self.count and (room < 0 or (room == 0 and take > 0)):
                    # Even an empty chunk's piece cannot hold this entry's links, and never will.
                    yield Unplaceable(file)
                    return
                take = room
            self.place(file, take)
            position += take
            yield Entry(file, position - take, position)
            if self.size >= self.min_size or position < file.size:
                yield self.close()
            if position >= file.size:
                return

    def room(self, file: File, remaining: int) -> int:
        """Data bytes of `file` the open chunk's CAR can still take (negative: not even its links)."""
        if self.car_limit is None:
            return remaining
        free = self.car_limit - self.car - car_overhead(file, 0, self.new_directories(file))
        if free <= MIB:
            return free  # one block at most: no file nodes
        # Solve take + file_nodes(take) <= free, rounding the leaf count up.
        nodes = PER_MIB + BLOCK * (free // (1024 * MIB) + 2)
        return max(MIB, (free - nodes) * MIB // (MIB + PER_MIB))

    def new_directories(self, file: File) -> Components:
        # The walk is sorted depth first: a directory left behind never comes back, so the
        # directories not shared with the previous entry are the new ones.
        parents = file.components[:-1]
        shared = 0
        while shared < min(len(parents), len(self.directory)) and parents[shared] == self.directory[shared]:
            shared += 1
        return parents[shared:]

    def place(self, file: File, length: int) -> None:
        self.car += length + car_overhead(file, length, self.new_directories(file))
        self.directory = file.components[:-1]
        self.size += length
        self.count += 1

    def close(self) -> Close:
        self.size = self.count = 0
        self.car = CAR_BASE
        self.directory = ()
        return CLOSE

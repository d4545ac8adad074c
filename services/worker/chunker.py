"""Packing a stream of files into chunks: every chunk but the last holds between minSize and
maxSize bytes; a file too large for the current chunk is split across chunks.

The chunker only tracks the size of the open chunk, so a chunk of a million files costs no memory
here: the caller stores entries as they come and closes a chunk when told.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

from services.worker.walk import File


@dataclass(frozen=True)
class Entry:
    file: File
    start: int
    end: int


@dataclass
class Chunker:
    min_size: int
    max_size: int
    size: int = 0  # bytes in the open chunk
    count: int = 0  # entries in the open chunk

    def __post_init__(self) -> None:
        if not 0 < self.min_size <= self.max_size:
            raise ValueError("need 0 < min_size <= max_size")

    def add(self, file: File, start: int = 0) -> Iterator[tuple[Entry, bool]]:
        """Place `file[start:]` as (entry, closes_chunk) pairs: after an entry that closes its
        chunk, the next entry opens a new one."""
        if file.size == 0:
            self.count += 1
            yield Entry(file, 0, 0), False
            return
        position = start
        while position < file.size:
            take = min(file.size - position, self.max_size - self.size)
            self.size += take
            self.count += 1
            position += take
            closes = self.size >= self.min_size
            if closes:
                self.size = self.count = 0
            yield Entry(file, position - take, position), closes

"""Trace-level changed-block tracking: unique bytes of a set of write extents.

`ChunkBitmap` keeps the set of dirty chunk indices as a sorted NumPy array (sparse: a
volume of terabytes with a few dirty chunks costs a few bytes each), so it works for
any volume size and any chunk size. `unique_written_bytes` is the one-shot version.
With `chunk_bytes=1` the answer is the exact number of distinct bytes written (the
union of the extents); with a chunk size it is what an incremental backup of that
granularity would move: dirty chunks x chunk size (which can exceed the bytes written
when writes are smaller than a chunk).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from workloads.base import Extents


def _arrays(extents) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(extents, Extents):
        return np.asarray(extents.offset, np.int64), np.asarray(extents.length, np.int64)
    if isinstance(extents, tuple) and len(extents) == 2:
        return np.asarray(extents[0], np.int64), np.asarray(extents[1], np.int64)
    if isinstance(extents, Iterable):
        parts = [_arrays(e) for e in extents]
        if not parts:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    raise TypeError("extents: an Extents, an (offsets, lengths) pair or an iterable of them")


def union_bytes(offsets: np.ndarray, lengths: np.ndarray) -> int:
    """Exact number of distinct bytes covered by `[offset, offset + length)` extents."""
    keep = lengths > 0
    o, n = offsets[keep], lengths[keep]
    if o.size == 0:
        return 0
    order = np.argsort(o, kind="stable")
    start = o[order]
    end = start + n[order]
    reach = np.maximum.accumulate(end)
    # a new run starts where an extent begins past everything before it
    new = np.ones(start.size, bool)
    new[1:] = start[1:] > reach[:-1]
    run_start = start[new]
    run_end = reach[np.append(np.flatnonzero(new)[1:] - 1, start.size - 1)]
    return int((run_end - run_start).sum())


def chunk_indices(offsets: np.ndarray, lengths: np.ndarray, chunk_bytes: int) -> np.ndarray:
    """Sorted unique indices of the chunks touched by the extents (zero-length ones touch none)."""
    keep = lengths > 0
    o, n = offsets[keep], lengths[keep]
    if o.size == 0:
        return np.zeros(0, np.int64)
    first = o // chunk_bytes
    last = (o + n - 1) // chunk_bytes
    span = last - first + 1
    if int(span.max()) == 1:
        return np.unique(first)
    idx = np.repeat(first, span) + (np.arange(int(span.sum())) - np.repeat(np.cumsum(span) - span, span))
    return np.unique(idx)


class ChunkBitmap:
    """Dirty chunks of one volume (sparse); `mark` extents, read `dirty_bytes`, `clear`."""

    def __init__(self, chunk_bytes: int = 1 << 20):
        if chunk_bytes < 1:
            raise ValueError("chunk_bytes must be >= 1")
        self.chunk_bytes = int(chunk_bytes)
        self.chunks = np.zeros(0, np.int64)
        self.written_bytes = 0

    def mark(self, offsets, lengths=None) -> None:
        o, n = _arrays(offsets if lengths is None else (offsets, lengths))
        self.written_bytes += int(n[n > 0].sum())
        new = chunk_indices(o, n, self.chunk_bytes)
        if new.size:
            self.chunks = np.union1d(self.chunks, new)

    @property
    def dirty_chunks(self) -> int:
        return int(self.chunks.size)

    @property
    def dirty_bytes(self) -> int:
        return self.dirty_chunks * self.chunk_bytes

    def clear(self) -> None:
        self.chunks = np.zeros(0, np.int64)
        self.written_bytes = 0


def unique_written_bytes(extents, chunk_bytes: int = 1) -> int:
    """Unique bytes of write extents: exact with `chunk_bytes=1`, else dirty chunks x chunk size.

    `extents`: an `Extents`, an `(offsets, lengths)` pair, or an iterable of either.
    """
    o, n = _arrays(extents)
    if chunk_bytes == 1:
        return union_bytes(o, n)
    return int(chunk_indices(o, n, int(chunk_bytes)).size) * int(chunk_bytes)

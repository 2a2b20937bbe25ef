"""Changed-block tracking: the set of dirty chunks of one volume.

One rule everywhere: a write extent `[offset, offset + length)` dirties chunks
`offset // chunk_bytes` to `(offset + length - 1) // chunk_bytes`; a zero-length (or
negative-length) write dirties no chunk. The trace tools (unique bytes of a trace) and
the simulator (incremental and differential backup sizes) both count with this class,
so a trace's exact CBT and the simulated backup of it agree.

Two storages with the same behaviour: dense (a boolean array of the volume's chunks,
grown if a write lands past it: fast for the simulator's per-tick marking) and sparse
(the sorted dirty chunk indices: a terabyte volume with a few dirty chunks costs a few
bytes each, for any chunk size, down to one byte).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np


def extent_arrays(extents) -> tuple[np.ndarray, np.ndarray]:
    """(offsets, lengths) as int64 arrays from extents given in any of the usual forms.

    `extents`: an object with `offset` and `length` arrays (e.g. `workloads.base.Extents`),
    an `(offsets, lengths)` pair, or an iterable of either.
    """
    if hasattr(extents, "offset") and hasattr(extents, "length"):
        return np.asarray(extents.offset, np.int64), np.asarray(extents.length, np.int64)
    if isinstance(extents, tuple) and len(extents) == 2 and not hasattr(extents[0], "offset"):
        return np.asarray(extents[0], np.int64), np.asarray(extents[1], np.int64)
    if isinstance(extents, Iterable):
        parts = [extent_arrays(e) for e in extents]
        if not parts:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    raise TypeError("extents: an object with offset/length arrays, an (offsets, lengths) pair or an iterable of them")


def touched_chunks(offsets: np.ndarray, lengths: np.ndarray, chunk_bytes: int) -> np.ndarray:
    """Indices of the chunks the extents touch, one entry per (extent, chunk), unsorted.

    Zero-length extents touch none.
    """
    offsets = np.asarray(offsets, np.int64)
    lengths = np.asarray(lengths, np.int64)
    keep = lengths > 0
    if not keep.all():
        offsets, lengths = offsets[keep], lengths[keep]
    if offsets.size == 0:
        return np.zeros(0, np.int64)
    first = offsets // chunk_bytes
    last = (offsets + lengths - 1) // chunk_bytes
    span = last - first + 1
    if int(span.max()) == 1:
        return first
    # expand multi-chunk extents: first, first + 1, ..., last for each
    return np.repeat(first, span) + (np.arange(int(span.sum())) - np.repeat(np.cumsum(span) - span, span))


def chunk_indices(offsets: np.ndarray, lengths: np.ndarray, chunk_bytes: int) -> np.ndarray:
    """Sorted unique indices of the chunks touched by the extents (zero-length ones touch none)."""
    return np.unique(touched_chunks(offsets, lengths, chunk_bytes))


class ChunkBitmap:
    """Dirty chunks of one volume: `mark` extents, read `dirty_chunks` / `dirty_bytes`, `clear`.

    `n_chunks` given: dense storage sized to the volume; None: sparse storage.
    `written_bytes` counts the bytes of the marked extents (with repeats) since `clear`.
    """

    def __init__(self, chunk_bytes: int = 1 << 20, n_chunks: int | None = None):
        if chunk_bytes < 1:
            raise ValueError("chunk_bytes must be >= 1")
        self.chunk_bytes = int(chunk_bytes)
        self.dense = n_chunks is not None
        self._bits = np.zeros(max(1, int(n_chunks or 0)), dtype=bool) if self.dense else None
        self._sparse = np.zeros(0, np.int64)
        self.written_bytes = 0

    def mark(self, offsets, lengths=None) -> None:
        """Mark write extents dirty: `mark(offsets, lengths)` or `mark(extents)`."""
        o, n = extent_arrays(offsets if lengths is None else (offsets, lengths))
        self.written_bytes += int(n[n > 0].sum())
        self.add_chunks(touched_chunks(o, n, self.chunk_bytes))

    def add_chunks(self, idx: np.ndarray) -> None:
        """Mark chunk indices dirty (repeats and any order allowed)."""
        if idx.size == 0:
            return
        if self.dense:
            top = int(idx.max()) + 1
            if top > self._bits.size:
                self._bits = np.concatenate([self._bits, np.zeros(top - self._bits.size, bool)])
            self._bits[idx] = True
        else:
            self._sparse = np.union1d(self._sparse, idx)

    @property
    def chunks(self) -> np.ndarray:
        """Sorted indices of the dirty chunks."""
        return np.flatnonzero(self._bits) if self.dense else self._sparse

    @property
    def dirty_chunks(self) -> int:
        return int(self._bits.sum()) if self.dense else int(self._sparse.size)

    @property
    def dirty_bytes(self) -> int:
        return self.dirty_chunks * self.chunk_bytes

    def clear(self) -> None:
        if self.dense:
            self._bits[:] = False
        else:
            self._sparse = np.zeros(0, np.int64)
        self.written_bytes = 0

"""Trace-level changed-block tracking: unique bytes of a set of write extents.

`ChunkBitmap` (from `common.bitmap`, the one bitmap the simulator uses too) keeps the
dirty chunks of a volume; traces use its sparse storage, so it works for any volume
size and any chunk size. `unique_written_bytes` is the one-shot version. With
`chunk_bytes=1` the answer is the exact number of distinct bytes written (the union of
the extents); with a chunk size it is what an incremental backup of that granularity
would move: dirty chunks x chunk size (which can exceed the bytes written when writes
are smaller than a chunk). Zero-length writes dirty nothing.
"""

from __future__ import annotations

import numpy as np

from common.bitmap import ChunkBitmap, chunk_indices, extent_arrays

__all__ = ["ChunkBitmap", "chunk_indices", "union_bytes", "unique_written_bytes"]


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


def unique_written_bytes(extents, chunk_bytes: int = 1) -> int:
    """Unique bytes of write extents: exact with `chunk_bytes=1`, else dirty chunks x chunk size.

    `extents`: an `Extents`, an `(offsets, lengths)` pair, or an iterable of either.
    """
    o, n = extent_arrays(extents)
    if chunk_bytes == 1:
        return union_bytes(o, n)
    return int(chunk_indices(o, n, int(chunk_bytes)).size) * int(chunk_bytes)

"""Changed-block tracking for the whole fleet.

Two bitmaps per volume matter: chunks dirty since the last backup (incremental size)
and since the last full (differential size); the first is always a subset of the second.

- Volumes whose load source gives exact write extents (request-level traces) keep real
  bitmaps (`common.bitmap.ChunkBitmap`, dense): sizes are exact.
- Other volumes use their `WorkingSet`: a Zipf law over chunk ranks, cut into zones
  of ranks [1], [2, 3], [4, 7], ... (powers of two), inside which the probability per
  chunk varies by at most 2**s and is taken as uniform (the zone gets the Zipf mass of
  its ranks). For a uniform zone of N chunks hit by W writes, each chunk is
  touched independently with probability q = 1 - (1 - 1/N)^W, so the number of newly
  dirtied chunks among c clean ones is Binomial(c, q). We keep per zone the count A
  (dirty since backup, hence since full) and B (dirty since full only) and draw those
  binomials: the distribution of the bitmaps' popcounts is exactly that of drawing
  every write's offset, without materialising offsets. Since touches in separate
  batches are independent, pending writes are folded in lazily (on `flush`) without
  changing the distribution, which keeps the per-tick cost O(1) and fleet-vectorised.
"""

from __future__ import annotations

import numpy as np

from common.bitmap import ChunkBitmap, touched_chunks
from sim.types import BackupKind
from workloads.base import WorkingSet


def zipf_zones(n_chunks: int, s: float) -> tuple[np.ndarray, np.ndarray]:
    """Zone sizes (ranks 2**k .. 2**(k+1)-1) and their share of writes under Zipf(s)."""
    k = np.arange(int(np.floor(np.log2(n_chunks))) + 1)
    lo = 2.0**k
    hi = np.minimum(2.0 ** (k + 1) - 1, n_chunks)

    def mass(x):  # integral of x^-s, a close stand-in for the partial sums
        return x ** (1 - s) / (1 - s)

    w = mass(hi + 0.5) - mass(lo - 0.5)
    return (hi - lo + 1).astype(np.int64), w / w.sum()


class VolumeBitmaps:
    """Exact dirty-chunk bitmaps of one volume: since the last backup and since the last full."""

    def __init__(self, n_chunks: int, chunk_bytes: int):
        self.chunk_bytes = chunk_bytes
        self.since_backup = ChunkBitmap(chunk_bytes, n_chunks)
        self.since_full = ChunkBitmap(chunk_bytes, n_chunks)

    def mark(self, offsets: np.ndarray, lengths: np.ndarray) -> None:
        """Mark byte extents `[offset, offset + length)` dirty (zero-length ones: none)."""
        idx = touched_chunks(offsets, lengths, self.chunk_bytes)
        self.since_backup.add_chunks(idx)
        self.since_full.add_chunks(idx)

    def counts(self) -> tuple[int, int]:
        return self.since_backup.dirty_chunks, self.since_full.dirty_chunks


class FleetTracker:
    """Dirty-chunk state of every volume; see the module docstring for the model."""

    def __init__(self, used_bytes: np.ndarray, working_sets: list[WorkingSet], write_io_bytes: np.ndarray, chunk_bytes: int, seed: int):
        self.chunk_bytes = int(chunk_bytes)
        self.used_bytes = used_bytes.astype(np.float64)
        n = used_bytes.shape[0]
        total_chunks = np.maximum(1, np.ceil(self.used_bytes / chunk_bytes)).astype(np.int64)
        zones = [zipf_zones(int(c), ws.zipf_s) for c, ws in zip(total_chunks, working_sets)]
        z = max(len(sizes) for sizes, _ in zones)
        self.zone_n = np.zeros((n, z), np.int64)
        self.zone_w = np.zeros((n, z), np.float64)
        for v, (sizes, weights) in enumerate(zones):
            self.zone_n[v, : sizes.size] = sizes
            self.zone_w[v, : sizes.size] = weights
        with np.errstate(divide="ignore"):
            self._log_stay = np.where(self.zone_n > 0, np.log1p(-1.0 / np.maximum(self.zone_n, 1)), 0.0)
        # writes of more than one chunk dirty several chunks
        self.chunks_per_write = np.maximum(1.0, write_io_bytes / chunk_bytes)
        self.a = np.zeros((n, z), np.int64)  # dirty since backup (and since full)
        self.b = np.zeros((n, z), np.int64)  # dirty since full only
        self.pending = np.zeros(n, np.float64)  # write I/Os not yet folded in
        self.bitmaps: dict[int, VolumeBitmaps] = {}
        self.rng = np.random.default_rng([seed, 0xCB7])

    # -- writes ------------------------------------------------------------------------
    def add_writes(self, write_ios: np.ndarray) -> None:
        """Accumulate write I/O counts (one tick or many) for model-tracked volumes."""
        self.pending += write_ios

    def mark_extents(self, volume: int, offsets: np.ndarray, lengths: np.ndarray) -> None:
        bm = self.bitmaps.get(volume)
        if bm is None:
            bm = self.bitmaps[volume] = VolumeBitmaps(int(np.ceil(self.used_bytes[volume] / self.chunk_bytes)), self.chunk_bytes)
        bm.mark(offsets, lengths)

    def flush(self, volumes: np.ndarray | None = None) -> None:
        """Fold pending writes into the zone counts (of `volumes`, default all)."""
        pending = self.pending if volumes is None else self.pending[volumes]
        vols = np.flatnonzero(pending > 0)
        if volumes is not None:
            vols = np.asarray(volumes)[vols]
        if vols.size == 0:
            return
        if volumes is None and vols.size == self.pending.size:  # every volume, in order: views, not copies, of the same values
            vols = slice(None)
        w = (self.pending[vols] * self.chunks_per_write[vols])[:, None] * self.zone_w[vols]
        q = -np.expm1(w * self._log_stay[vols])
        a, b = self.a[vols], self.b[vols]
        clean = self.zone_n[vols] - a - b
        from_b = self.rng.binomial(b, q)
        from_clean = self.rng.binomial(clean, q)
        self.a[vols] = a + from_b + from_clean
        self.b[vols] = b - from_b
        self.pending[vols] = 0.0

    # -- sizes -------------------------------------------------------------------------
    def _flush_one(self, v: int) -> None:
        """`flush` for a single volume without fleet-wide array work (job starts)."""
        pending = self.pending[v]
        if pending <= 0:
            return
        q = -np.expm1((pending * self.chunks_per_write[v]) * self.zone_w[v] * self._log_stay[v])
        a, b = self.a[v], self.b[v]  # row views: updated in place
        from_b = self.rng.binomial(b, q)
        from_clean = self.rng.binomial(self.zone_n[v] - a - b, q)
        a += from_b + from_clean
        b -= from_b
        self.pending[v] = 0.0

    def dirty_bytes(self) -> tuple[np.ndarray, np.ndarray]:
        """(since last backup, since last full) in bytes, per volume."""
        self.flush()
        since_backup = self.a.sum(axis=1).astype(np.float64)
        since_full = since_backup + self.b.sum(axis=1)
        for v, bm in self.bitmaps.items():
            since_backup[v], since_full[v] = bm.counts()
        return since_backup * self.chunk_bytes, since_full * self.chunk_bytes

    def start_backup(self, volume: int, kind: BackupKind) -> float:
        """Snapshot `volume` for a backup of `kind`: returns bytes to move, resets bitmaps."""
        self._flush_one(volume)
        bm = self.bitmaps.get(volume)
        if kind == BackupKind.FULL:
            size = float(self.used_bytes[volume])
            self.a[volume] = 0
            self.b[volume] = 0
            if bm is not None:
                bm.since_backup.clear()
                bm.since_full.clear()
            return size
        if bm is not None:
            n_backup, n_full = bm.counts()
            chunks = n_backup if kind == BackupKind.INCREMENTAL else n_full
            bm.since_backup.clear()
        else:
            a = int(self.a[volume].sum())
            chunks = a if kind == BackupKind.INCREMENTAL else a + int(self.b[volume].sum())
            self.b[volume] += self.a[volume]
            self.a[volume] = 0
        return float(chunks * self.chunk_bytes)

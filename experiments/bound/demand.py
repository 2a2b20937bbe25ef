"""Bytes a schedule must move, as per-tick releases with deadlines (see the package docstring).

Timing in the simulator (`sim.model`), in ticks: a job that snapshots at the start of
tick `s` holds the writes of ticks `< s` and first moves bytes in tick `s + 1`; with the
newest completed snapshot at `s0`, the RPO (`R`, `rho = floor(R / dt)` ticks) checked at
each tick end requires the next job to complete by the end of tick `s0 + rho`. So the
writes of tick `t` are moved in ticks `[t + RELEASE_LAG, t + rho]`, and a job covers at
most `rho - 1` ticks of writes (its snapshot precedes its completion tick).

`releases` turns a volume's per-tick writes into per-tick byte releases `b` with
`sum(b over I) <= bytes of the job covering I` for every interval `I` of at most that many
ticks, from a concave changed-bytes curve (chord argument, see `releases`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from common.bitmap import touched_chunks
from common.units import MB

#: writes of tick t are first moved in tick t + RELEASE_LAG (snapshot at t + 1, moving after)
RELEASE_LAG = 2


@dataclass(frozen=True)
class MeanChangedBytes:
    """Expected bytes dirtied by `W` write I/Os under `sim.cbt`'s working-set model, capped at a full.

    Zone `z` of `n_z` chunks takes a share `w_z` of the writes, each dirtying
    `chunks_per_write` chunks: `E[dirty] = sum_z n_z (1 - (1 - 1/n_z) ** (W cpw w_z))`,
    a concave increasing function of `W` with value 0 at 0.
    """

    zone_n: np.ndarray
    zone_w: np.ndarray
    chunks_per_write: float
    chunk_bytes: float
    used_bytes: float

    def _touch(self, writes) -> tuple[np.ndarray, np.ndarray]:
        """(zone sizes, probability a zone's chunk is dirtied) after `writes` write I/Os."""
        w = np.asarray(writes, np.float64)[..., None]
        n = self.zone_n.astype(np.float64)
        with np.errstate(divide="ignore"):
            log_stay = np.where(n > 0, np.log1p(-1.0 / np.maximum(n, 1.0)), 0.0)
        hits = w * self.chunks_per_write * self.zone_w  # expected writes per zone (a 1-chunk zone has log_stay = -inf)
        with np.errstate(invalid="ignore"):
            return n, np.where(hits > 0, -np.expm1(hits * log_stay), 0.0)

    def mb(self, writes) -> np.ndarray:
        """Expected changed MB (capped at the volume's used bytes)."""
        n, q = self._touch(writes)
        return np.minimum((n * q).sum(axis=-1) * self.chunk_bytes, self.used_bytes) / MB

    def rel_sd(self, writes) -> np.ndarray:
        """Relative standard deviation of the simulator's random count (binomial per zone) around `mb`."""
        n, q = self._touch(writes)
        mean = (n * q).sum(axis=-1)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(mean > 0, np.sqrt((n * q * (1.0 - q)).sum(axis=-1)) / np.where(mean > 0, mean, 1.0), 0.0)


def trailing_max(x: np.ndarray, width: int) -> np.ndarray:
    """`out[i] = max(x[max(0, i - width + 1) : i + 1])`, by doubling spans."""
    out = x.copy()
    span = 1
    while span < width:
        step = min(span, width - span)
        shifted = np.concatenate([np.full(step, -np.inf), out[:-step]]) if step < out.size else np.full(out.size, -np.inf)
        out = np.maximum(out, shifted)
        span += step
    return out


def window_sums(x: np.ndarray, width: int) -> np.ndarray:
    """`out[a] = sum(x[a : a + width])` for every start `a` (windows cut at the end)."""
    c = np.concatenate([[0.0], np.cumsum(x, dtype=np.float64)])
    a = np.arange(x.size)
    return c[np.minimum(a + width, x.size)] - c[a]


def releases(writes: np.ndarray, window: int, changed: MeanChangedBytes) -> np.ndarray:
    """Per-tick MB releases `b_t = w_t f(M_t) / M_t` (`M_t`: most writes of a `window`-tick interval holding t).

    For an interval `I` of at most `window` ticks with `W` writes, `W <= M_t` for each
    `t` in `I`, and `f(W) / W` does not increase (f concave, f(0) = 0), so
    `sum_I b_t <= sum_I w_t f(W) / W = f(W)`: the releases never exceed a job's bytes.
    """
    w = np.asarray(writes, np.float64)
    m = trailing_max(window_sums(w, max(1, window)), max(1, window))
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(m > 0, changed.mb(m) / np.where(m > 0, m, 1.0), 0.0)
    return w * ratio


def releases_from_chunks(
    ticks: np.ndarray, chunks: np.ndarray, n_ticks: int, window: int, chunk_bytes: float, used_bytes: float
) -> np.ndarray:
    """Per-tick MB releases from exact written chunks (request-level traces): deterministic.

    `b_t` counts the chunks written in tick t and not in the `window - 1` ticks before, so
    within any interval of at most `window` ticks each chunk is counted at most once (at
    its first write there): `sum_I b_t <= |union of I's chunks|`. Scaled so that no
    interval's sum exceeds a full (`used_bytes`) either.
    """
    pairs = np.unique(np.stack([np.asarray(chunks, np.int64), np.asarray(ticks, np.int64)], axis=1), axis=0)  # by chunk, tick
    b = np.zeros(n_ticks)
    if pairs.size:
        c, t = pairs[:, 0], pairs[:, 1]
        fresh = np.ones(t.size, bool)
        same = c[1:] == c[:-1]
        fresh[1:] = ~same | (t[1:] - t[:-1] >= window)
        np.add.at(b, t[fresh], chunk_bytes / MB)
    top = window_sums(b, window).max(initial=0.0)
    if top > used_bytes / MB:
        b *= used_bytes / MB / top
    return b


def extent_chunks(tick: np.ndarray, offset: np.ndarray, length: np.ndarray, chunk_bytes: int) -> tuple[np.ndarray, np.ndarray]:
    """(tick, chunk) of every chunk the extents touch."""
    ticks, chunks = [], []
    for t in np.unique(tick):
        sel = tick == t
        idx = touched_chunks(offset[sel], length[sel], chunk_bytes)
        ticks.append(np.full(idx.size, t, np.int64))
        chunks.append(idx)
    if not ticks:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(ticks), np.concatenate(chunks)


def full_extra_mb(release: np.ndarray, window: int, used_mb: float) -> float:
    """Bytes a full moves beyond the releases of the interval it covers: at least `used - max window sum`."""
    top = window_sums(release, max(1, window)).max(initial=0.0)
    return max(0.0, used_mb - top)


def tube(release: np.ndarray, step_end: np.ndarray, rho: int) -> tuple[np.ndarray, np.ndarray]:
    """(released, due) cumulative MB at the end of each step (last tick index `step_end`).

    Released: writes of ticks `t <= end - RELEASE_LAG` may have been moved by then; due:
    those of ticks `t <= end - rho` must have been.
    """
    c = np.concatenate([[0.0], np.cumsum(release, dtype=np.float64)])

    def upto(k: np.ndarray) -> np.ndarray:  # sum of release[: k + 1]
        return c[np.clip(k + 1, 0, release.size)]

    return upto(step_end - RELEASE_LAG), upto(step_end - rho)

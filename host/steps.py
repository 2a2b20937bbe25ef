"""Measured intervals as a step function, averaged onto simulation ticks.

A sample's value holds over `[t - dt, t)` (it is a rate measured over that interval).
A tick's value is the time-weighted mean of the step function over the tick, so the
bytes and I/Os recorded are the bytes and I/Os replayed, whatever the tick length.

Between two samples that do not touch (the recorder was down across a reboot, a table
skips rows) the earlier value holds through gaps up to `max_gap_s`; a longer gap holds
too with `gap_fill="hold"`, or is zero with `gap_fill="zero"`. Before the first sample
and after the last one the first / last value holds ("hold") or is zero ("zero").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Steps:
    knots: np.ndarray  # [m + 1] segment edges, non-decreasing
    values: np.ndarray  # [m, k] value on [knots[j], knots[j+1])
    cum: np.ndarray  # [m + 1, k] integral from knots[0] to knots[j]
    head: np.ndarray  # [k] value before knots[0]
    tail: np.ndarray  # [k] value after knots[-1]
    gaps: int
    gap_s: float

    def integral(self, x: np.ndarray) -> np.ndarray:
        """Integral of the step function from knots[0] to each x: [len(x), k]."""
        k0, kn = self.knots[0], self.knots[-1]
        j = np.clip(np.searchsorted(self.knots, x, side="right") - 1, 0, max(self.values.shape[0] - 1, 0))
        inside = self.cum[j] + self.values[j] * (np.clip(x, k0, kn) - self.knots[j])[:, None]
        before = (np.minimum(x, k0) - k0)[:, None] * self.head
        after = (np.maximum(x, kn) - kn)[:, None] * self.tail
        return before + inside + after

    def mean_over(self, edges: np.ndarray) -> np.ndarray:
        """Time-weighted mean over each `[edges[i], edges[i+1])`: [len(edges) - 1, k]."""
        f = self.integral(edges)
        return (f[1:] - f[:-1]) / np.diff(edges)[:, None]


def build(t: np.ndarray, dt: np.ndarray, values: np.ndarray, max_gap_s: float, gap_fill: str) -> Steps:
    """Steps of samples at end times `t` (sorted) covering `dt` each, values [n, k] without NaN."""
    end = t.astype(np.float64)
    start = end - dt.astype(np.float64)
    start[1:] = np.maximum(start[1:], end[:-1])  # overlapping intervals (a clock step): clip
    start = np.minimum(start, end)
    gap = np.append(start[1:] - end[:-1], 0.0)
    long_gap = gap > max_gap_s
    k = values.shape[1]
    zero = gap_fill == "zero"
    # each sample's segment reaches the next sample's start, unless a long gap is zeroed
    seg_end = np.where(long_gap & zero, end, np.append(start[1:], end[-1:]))
    kn = np.concatenate([start[:1], seg_end])
    v = values.astype(np.float64)
    if zero and long_gap.any():
        at = np.flatnonzero(long_gap)
        kn = np.insert(kn, at + 2, start[at + 1])
        v = np.insert(v, at + 1, 0.0, axis=0)
    cum = np.zeros((kn.size, k))
    cum[1:] = np.cumsum(v * np.diff(kn)[:, None], axis=0)
    head = v[0] if gap_fill == "hold" else np.zeros(k)
    tail = v[-1] if gap_fill == "hold" else np.zeros(k)
    return Steps(kn, v, cum, head, tail, int(long_gap.sum()), float(gap[long_gap].sum()))

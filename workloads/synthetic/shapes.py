"""Shapes the generators build load from: business-hours plateaus, the minute grid of a
week, smooth keyed noise, box events and trapezoid envelopes (vectorised over
[ticks, volumes])."""

from __future__ import annotations

import numpy as np

from workloads.synthetic.keyed import u01

MIN_PER_WEEK = 7 * 24 * 60


def business_curve(h: np.ndarray, start_h: float, end_h: float, rise_h: float) -> np.ndarray:
    """Smooth 0..1 plateau between `start_h` and `end_h` (local hours), logistic edges."""
    up = 1.0 / (1.0 + np.exp(-(h - start_h) / rise_h))
    down = 1.0 / (1.0 + np.exp((h - end_h) / rise_h))
    return up * down


def week_grid() -> tuple[np.ndarray, np.ndarray]:
    """(local hour of day, day of week with Monday = 0) for every minute of a week."""
    m = np.arange(MIN_PER_WEEK, dtype=np.float64)
    return (m % 1440.0) / 60.0, (m // 1440.0).astype(np.int64)


def value_noise(key: int, t: np.ndarray, knot_s: float, n_vol: int) -> np.ndarray:
    """Smooth noise [len(t), n_vol], ~unit variance, through hashed knots every `knot_s` s.

    Knots are keyed by their absolute index, so the curve is the same whatever range of
    `t` is evaluated.
    """
    x = t / knot_s
    k = np.floor(x).astype(np.int64)
    f = x - k
    w = (f * f * (3.0 - 2.0 * f)).astype(np.float32)[:, None]
    k0 = int(k[0])
    ks = np.arange(k0, int(k[-1]) + 2, dtype=np.int64)
    knots = ((u01(key, ks[:, None], np.arange(n_vol)[None, :]) - 0.5) * np.sqrt(12.0)).astype(np.float32)
    rel = k - k0
    a = knots[rel]
    b = knots[rel + 1]
    return a + (b - a) * w


def box_fraction(t0: np.ndarray, dt: float, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """Fraction of each tick `[t0, t0 + dt)` covered by `[start, end)`: [len(t0), len(start)]."""
    ov = np.minimum(t0[:, None] + dt, end[None, :]) - np.maximum(t0[:, None], start[None, :])
    np.clip(ov, 0.0, None, out=ov)
    ov *= 1.0 / dt
    return ov


def add_events(out: np.ndarray, t0: np.ndarray, dt: float, start: np.ndarray, end: np.ndarray, amp: np.ndarray) -> None:
    """Add box events (one per volume column, amplitude `amp`, NaN start = none) to `out`."""
    page_lo, page_hi = t0[0], t0[-1] + dt
    cols = np.nonzero((start < page_hi) & (end > page_lo))[0]
    if cols.size == 0:
        return
    frac = box_fraction(t0, dt, start[cols], end[cols])
    out[:, cols] += (frac * amp[cols]).astype(np.float32)


def trapezoid(t: np.ndarray, start: np.ndarray, end: np.ndarray, ramp_s: float) -> np.ndarray:
    """0..1 envelope rising over `ramp_s` after `start` and falling over `ramp_s` before `end`."""
    env = np.minimum(t[:, None] - start[None, :], end[None, :] - t[:, None]) * (1.0 / ramp_s)
    return np.clip(env, 0.0, 1.0)

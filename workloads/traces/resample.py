"""Resampling interval traces onto the simulation tick, block by block.

The series never exists at the (fine) simulation tick in memory. A sample at `t_i`
covers `[t_i, t_{i+1})` (the last one covers one median interval):

- `resample="hold"` (default): the tick's value is the time-weighted mean of that step
  function over the tick. For ticks shorter than the sampling interval this is plain
  step-hold; for longer ticks it averages. It conserves the integral (bytes moved).
- `resample="linear"`: piecewise-linear interpolation through the centres of the
  sample intervals, evaluated at tick centres (smoother; does not conserve bytes).

Gaps: an interval longer than `max_gap_s` is a gap (default: a family's gap factor x
the volume's median sampling interval, see `families.py`). `gap_fill="hold"` (default)
keeps the last value through it; `gap_fill="zero"` keeps it for one median interval,
then zero until the next sample. Before a volume's first sample (when other selected
volumes start earlier) the first value is held backwards ("hold") or zero ("zero");
after its last interval likewise. Gaps, their total length and the filled head and
tail are counted per volume and reported in `describe()`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from workloads.traces.interval import STANDARD


@dataclass
class VolumeSteps:
    """The step function of one volume: value `v[j]` on `[t[j], t[j+1])`, the last one onwards."""

    t: np.ndarray
    v: np.ndarray  # float64 [m, 5]
    g: np.ndarray  # float64 [m, 5]: integral of the step function from t[0] to t[j]
    centres: np.ndarray
    stats: dict


def build_steps(t: np.ndarray, v: np.ndarray, t0: float, nominal: float, max_gap: float, gap_fill: str) -> VolumeSteps:
    d = np.diff(t)
    gaps = d > max_gap
    stats = {
        "samples": int(t.size),
        "interval_s": float(nominal),
        "gaps": int(gaps.sum()),
        "gap_s": float((d[gaps] - nominal).sum()),
        "head_fill_s": float(max(0.0, t[0] - t0)),
    }
    tt, vv = t, v
    if gap_fill == "zero":
        if gaps.any():
            at = np.flatnonzero(gaps)
            tt = np.insert(tt, at + 1, t[at] + nominal)
            vv = np.insert(vv, at + 1, 0.0, axis=0)
        tt = np.append(tt, t[-1] + nominal)
        vv = np.vstack([vv, np.zeros((1, v.shape[1]))])
    if t0 < t[0]:
        tt = np.insert(tt, 0, t0)
        vv = np.vstack([(vv[:1] if gap_fill == "hold" else np.zeros((1, v.shape[1]))), vv])
    seg = np.diff(tt)
    g = np.zeros_like(vv)
    if seg.size:
        g[1:] = np.cumsum(vv[:-1] * seg[:, None], axis=0)
    centres = np.append(tt[:-1] + seg / 2.0, tt[-1] + nominal / 2.0)
    return VolumeSteps(tt, vv, g, centres, stats)


def resample(steps: VolumeSteps, edges: np.ndarray, dt: float, mode: str) -> np.ndarray:
    """Values of one volume on the ticks `[edges[i], edges[i+1])`: float64 [n, 5]."""
    t, v, g = steps.t, steps.v, steps.g
    a, b = edges[:-1], edges[1:]
    if mode == "linear":
        c = (a + b) / 2.0
        return np.column_stack([np.interp(c, steps.centres, v[:, k]) for k in range(v.shape[1])])
    ja = np.maximum(np.searchsorted(t, a, side="right") - 1, 0)
    jb = np.maximum(np.searchsorted(t, b, side="left") - 1, 0)
    fa = g[ja] + v[ja] * (a - t[ja])[:, None]
    fb = g[jb] + v[jb] * (b - t[jb])[:, None]
    out = (fb - fa) / dt
    same = ja == jb
    out[same] = v[ja[same]]
    return out


class IntervalSeries:
    """Serves per-tick values of the selected volumes, resampled block by block."""

    def __init__(
        self,
        t_list: list[np.ndarray],
        v_list: list[np.ndarray],
        nominal: list[float],
        t0: float,
        dt_trace: float,
        tick_s: float,
        n_ticks: int,
        mode: str,
        gap_fill: str,
        max_gap: list[float],
        read_io_bytes: np.ndarray,
        write_io_bytes: np.ndarray,
    ):
        self.t0 = t0
        self.dt = dt_trace
        self.tick_s = tick_s
        self.n_ticks = n_ticks
        self.mode = mode
        self.n_volumes = len(t_list)
        self.steps = [build_steps(t, v, t0, nm, mg, gap_fill) for t, v, nm, mg in zip(t_list, v_list, nominal, max_gap, strict=True)]
        end = t0 + n_ticks * dt_trace
        for s, t, nm in zip(self.steps, t_list, nominal, strict=True):
            s.stats["tail_fill_s"] = float(max(0.0, end - (t[-1] + nm)))
        self.read_io = read_io_bytes.astype(np.float64)
        self.write_io = write_io_bytes.astype(np.float64)

    def values(self, k0: int, k1: int) -> dict[str, np.ndarray]:
        n = k1 - k0
        edges = self.t0 + np.arange(k0, k1 + 1, dtype=np.float64) * self.dt
        out = {name: np.zeros((n, self.n_volumes), np.float32) for name in STANDARD}
        for i, s in enumerate(self.steps):
            x = resample(s, edges, self.dt, self.mode)
            for k, name in enumerate(STANDARD):
                out[name][:, i] = x[:, k]
        res = {
            "read_iops": (out["read_mbps"] * (1e6 / self.read_io)).astype(np.float32),
            "write_iops": (out["write_mbps"] * (1e6 / self.write_io)).astype(np.float32),
        }
        res.update(out)
        return res


def span(t_list: list[np.ndarray], nominal: list[float], start: float | None, dt_trace: float) -> tuple[float, int]:
    """(t0, natural length in ticks) of the selected volumes."""
    t0 = min(float(t[0]) for t in t_list) if start is None else float(start)
    end = max(float(t[-1]) + nm for t, nm in zip(t_list, nominal, strict=True))
    n = max(1, math.ceil((end - t0) / dt_trace - 1e-9))
    return t0, n


def median_interval(t: np.ndarray, default: float) -> float:
    if t.size < 2:
        return default
    return float(np.median(np.diff(t)))

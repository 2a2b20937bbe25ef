"""Fitting the simulator's device models to calibration rungs, with held-out errors.

Two models of foreground latency against the device's total load:

- the device class of `sim.devices`: `lat = base / (1 - u)`,
  `u = max(iops / max_iops, mbps / max_mbps)`; `max_iops` and `max_mbps` come from the
  saturation probes (measured, not fitted), `base` is fitted in log space
  (`log base = mean(log lat + log(1 - u))`: relative errors weigh alike at every rung);
- the measured curve of `sim.curve.LatencyCurve`: the rungs' (u, latency) made monotone
  and interpolated.

Each is scored by leave-one-out: for every rung, fit on the others and predict it. The
error of a rung is `|predicted / measured - 1|` in %; MAPE is their mean.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.curve import LatencyCurve
from sim.devices import U_MAX, latency_of_utilisation, utilisation


@dataclass(frozen=True)
class Rung:
    """One rung: the total load on the device and the foreground's latency under it."""

    bg_target_mbps: float | None  # None: unlimited (saturation)
    bg_mbps: float
    bg_iops: float
    fg_iops: float
    fg_mbps: float
    fg_mean_ms: float
    fg_p99_ms: float

    @property
    def iops(self) -> float:
        return self.fg_iops + self.bg_iops

    @property
    def mbps(self) -> float:
        return self.fg_mbps + self.bg_mbps


def utilisations(rungs: list[Rung], max_iops: float, max_mbps: float) -> np.ndarray:
    return np.asarray(utilisation([r.iops for r in rungs], [r.mbps for r in rungs], max_iops, max_mbps), float)


def fit_base(u: np.ndarray, lat: np.ndarray) -> float:
    """Base latency of `lat = base / (1 - u)` by least squares on log latency."""
    return float(np.exp(np.mean(np.log(lat) + np.log(1.0 - np.clip(u, 0.0, U_MAX)))))


def _errors(pred: np.ndarray, meas: np.ndarray) -> np.ndarray:
    return 100.0 * np.abs(pred / meas - 1.0)


@dataclass
class Fit:
    max_iops: float
    max_mbps: float
    base_latency_ms: float
    curve: LatencyCurve
    u: list[float]
    mm1_loo_pct: list[float]
    curve_loo_pct: list[float]
    mm1_in_sample_pct: list[float]
    curve_in_sample_pct: list[float]

    def summary(self) -> dict:
        def stats(e: list[float]) -> dict:
            return {"mape_pct": float(np.mean(e)), "max_pct": float(np.max(e)), "per_rung_pct": [round(x, 2) for x in e]}

        return {
            "method": "leave-one-out over the rungs (fit on the others, predict the one left out)",
            "mm1": {"leave_one_out": stats(self.mm1_loo_pct), "in_sample": stats(self.mm1_in_sample_pct)},
            "curve": {"leave_one_out": stats(self.curve_loo_pct), "in_sample": stats(self.curve_in_sample_pct)},
        }


def fit(rungs: list[Rung], max_iops: float, max_mbps: float, metric: str = "fg_mean_ms") -> Fit:
    """Both models on all rungs, and their leave-one-out errors (needs >= 3 rungs)."""
    if len(rungs) < 3:
        raise ValueError(f"fit: needs at least 3 rungs, got {len(rungs)}")
    u = utilisations(rungs, max_iops, max_mbps)
    lat = np.array([getattr(r, metric) for r in rungs], float)
    if np.any(lat <= 0):
        raise ValueError("fit: a rung has no latency measured (0 ms)")
    base = fit_base(u, lat)
    curve = LatencyCurve.fit(u, lat, max_iops, max_mbps)
    mm1_loo, curve_loo = [], []
    for i in range(len(rungs)):
        keep = np.arange(len(rungs)) != i
        b = fit_base(u[keep], lat[keep])
        mm1_loo.append(float(_errors(latency_of_utilisation(u[i], b), lat[i])))
        c = LatencyCurve.fit(u[keep], lat[keep], max_iops, max_mbps)
        curve_loo.append(float(_errors(c.latency_of_utilisation(u[i]), lat[i])))
    return Fit(
        max_iops=float(max_iops),
        max_mbps=float(max_mbps),
        base_latency_ms=base,
        curve=curve,
        u=[float(x) for x in u],
        mm1_loo_pct=mm1_loo,
        curve_loo_pct=curve_loo,
        mm1_in_sample_pct=[float(x) for x in _errors(latency_of_utilisation(u, base), lat)],
        curve_in_sample_pct=[float(x) for x in _errors(curve.latency_of_utilisation(u), lat)],
    )

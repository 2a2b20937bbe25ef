"""A measured latency curve: the device model's latency-vs-utilisation taken from measurement.

`sim.devices` models latency as `base / (1 - u)`. A calibrated device (`piop
calibrate`) also gives measured points (utilisation, latency); `LatencyCurve` serves
them with the same functions as `sim.devices` (`utilisation`, `latency_of_utilisation`,
`latency_ms`, `utilisation_with_backup`, `impact_of_utilisation`, `impact`,
`rate_for_utilisation`, `rate_for_impact`), so the simulator and the policies can use
either model.

Shape: the points are made monotone (latency never falls as utilisation rises:
pool-adjacent-violators, weighted) and joined linearly. Below the first point the first
latency holds (an idle device is no faster than a lightly loaded one); past the last
point the M/M/1 shape carries on from it, `lat(u) = lat_n (1 - u_n) / (1 - u)`, so
latency still grows without bound toward saturation. Utilisation is clipped at
`U_MAX` exactly as in `sim.devices`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.devices import BACKUP_IO_MB, U_MAX
from sim.devices import rate_for_utilisation as _device_rate_for_utilisation
from sim.devices import utilisation as _device_utilisation


def monotone(y, w=None) -> np.ndarray:
    """The non-decreasing sequence closest to `y` in weighted least squares (PAVA)."""
    y = np.asarray(y, np.float64)
    w = np.ones_like(y) if w is None else np.asarray(w, np.float64)
    blocks: list[list[float]] = []  # [mean, weight, count]
    for yi, wi in zip(y, w, strict=True):
        blocks.append([float(yi), float(wi), 1])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            m2, w2, n2 = blocks.pop()
            m1, w1, n1 = blocks.pop()
            blocks.append([(m1 * w1 + m2 * w2) / (w1 + w2), w1 + w2, n1 + n2])
    return np.concatenate([np.full(int(n), m) for m, _, n in blocks]) if blocks else y


@dataclass(frozen=True)
class LatencyCurve:
    """Measured latency (ms) at utilisation points `u` (strictly increasing, in [0, U_MAX])."""

    max_iops: float
    max_mbps: float
    u: tuple[float, ...]
    latency: tuple[float, ...]

    def __post_init__(self) -> None:
        u, lat = np.asarray(self.u, float), np.asarray(self.latency, float)
        if u.size < 1 or u.size != lat.size:
            raise ValueError("curve: needs at least one point and as many latencies as utilisations")
        if np.any(np.diff(u) <= 0) or u[0] < 0 or u[-1] > U_MAX:
            raise ValueError(f"curve: utilisations must increase strictly within [0, {U_MAX}]")
        if np.any(lat <= 0) or np.any(np.diff(lat) < 0):
            raise ValueError("curve: latencies must be positive and non-decreasing")
        if not (self.max_iops > 0 and self.max_mbps > 0):
            raise ValueError("curve: max_iops and max_mbps must be positive")

    @classmethod
    def fit(cls, u, latency_ms, max_iops: float, max_mbps: float) -> LatencyCurve:
        """From raw measured points: sorted, equal utilisations merged, made monotone."""
        u = np.clip(np.asarray(u, float), 0.0, U_MAX)
        lat = np.asarray(latency_ms, float)
        order = np.argsort(u, kind="stable")
        u, lat = u[order], lat[order]
        keys, inv, counts = np.unique(np.round(u, 9), return_inverse=True, return_counts=True)
        mean = np.bincount(inv, weights=lat) / counts
        return cls(float(max_iops), float(max_mbps), tuple(map(float, keys)), tuple(map(float, monotone(mean, counts))))

    # -- the functions of sim.devices -------------------------------------------------
    def utilisation(self, iops, mbps):
        return _device_utilisation(iops, mbps, self.max_iops, self.max_mbps)

    def latency_of_utilisation(self, u):
        u = np.clip(np.asarray(u, float), 0.0, U_MAX)
        pu, pl = np.asarray(self.u), np.asarray(self.latency)
        inside = np.interp(u, pu, pl)
        tail = pl[-1] * (1.0 - pu[-1]) / (1.0 - u)
        return np.where(u > pu[-1], tail, inside)

    def latency_ms(self, iops, mbps):
        return self.latency_of_utilisation(self.utilisation(iops, mbps))

    def utilisation_with_backup(self, prod_iops, prod_mbps, backup_mbps, io_mb: float = BACKUP_IO_MB):
        u_p = self.utilisation(prod_iops, prod_mbps)
        u_b = self.utilisation(np.asarray(prod_iops) + np.asarray(backup_mbps) / io_mb, np.asarray(prod_mbps) + backup_mbps)
        return u_p, u_b

    def impact_of_utilisation(self, u_p, u_b):
        return self.latency_of_utilisation(u_b) / self.latency_of_utilisation(u_p) - 1.0

    def impact(self, prod_iops, prod_mbps, backup_mbps, io_mb: float = BACKUP_IO_MB):
        """Relative latency increase caused by a backup reading at `backup_mbps`."""
        return self.impact_of_utilisation(*self.utilisation_with_backup(prod_iops, prod_mbps, backup_mbps, io_mb))

    def rate_for_utilisation(self, prod_iops, prod_mbps, u_target, io_mb: float = BACKUP_IO_MB):
        return _device_rate_for_utilisation(prod_iops, prod_mbps, self.max_iops, self.max_mbps, u_target, io_mb)

    def utilisation_for_latency(self, latency_ms):
        """The largest utilisation whose latency is at most `latency_ms` (capped at U_MAX)."""
        target = np.asarray(latency_ms, float)
        pu, pl = np.asarray(self.u), np.asarray(self.latency)
        j = np.searchsorted(pl, target, side="right") - 1  # last point with lat <= target
        jj = np.clip(j, 0, pu.size - 2) if pu.size > 1 else np.zeros_like(j)
        if pu.size > 1:
            span = pl[jj + 1] - pl[jj]
            frac = np.where(span > 0, (target - pl[jj]) / np.where(span > 0, span, 1.0), 1.0)
            between = pu[jj] + np.clip(frac, 0.0, 1.0) * (pu[jj + 1] - pu[jj])
        else:
            between = np.full(target.shape, pu[0])
        tail = 1.0 - pl[-1] * (1.0 - pu[-1]) / np.maximum(target, pl[-1])
        u = np.where(j >= pu.size - 1, tail, np.where(j < 0, 0.0, between))
        return np.clip(u, 0.0, U_MAX)

    def rate_for_impact(self, prod_iops, prod_mbps, max_impact, io_mb: float = BACKUP_IO_MB):
        """Largest backup rate (MB/s, >= 0) whose impact stays at or below `max_impact`."""
        lat_p = self.latency_ms(prod_iops, prod_mbps)
        u_target = self.utilisation_for_latency(lat_p * (1.0 + np.asarray(max_impact)))
        return self.rate_for_utilisation(prod_iops, prod_mbps, u_target, io_mb)

    # -- YAML -----------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {"u": [round(x, 6) for x in self.u], "latency_ms": [round(x, 6) for x in self.latency]}

    @classmethod
    def from_dict(cls, d: dict, max_iops: float, max_mbps: float) -> LatencyCurve:
        return cls(float(max_iops), float(max_mbps), tuple(map(float, d["u"])), tuple(map(float, d["latency_ms"])))

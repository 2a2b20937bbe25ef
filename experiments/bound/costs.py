"""The impact a backup causes in one load tick, as a convex cost of the bytes it moves.

For one volume and tick, with production IOPS `p_i` and MB/s `p_m` on a device of
`max_iops`, `max_mbps`, a backup reading at `r` MB/s raises utilisation to
`u(r) = max(a_i + b_i r, a_m + b_m r)` (`a_i = p_i / max_iops`, `b_i = 1 / (io_mb max_iops)`,
`a_m = p_m / max_mbps`, `b_m = 1 / max_mbps`), and the metric adds `io (1 - u_p) / (1 - u(r))
- io` where `io = p_i dt` is the tick's production I/O (its weight in the IO-weighted mean).
Below the headroom cap (utilisation `backup_max_util` < `U_MAX`) neither clip of
`sim.devices.utilisation` is active, so the cost is a convex increasing function of `r`
(`1 / (1 - x)` is convex increasing, `u` is a maximum of two affine maps).

`TickCosts.lagrangian(lam)` solves `min_{0 <= r <= cap} cost(r) - lam r dt` in closed form:
the value is the intercept of a supporting line of the cheapest way to move `Y` MB in a
set of ticks (Lagrangian duality), which is what makes the step tangents exact minorants.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.devices import BACKUP_IO_MB, U_MAX, rate_for_utilisation, utilisation


@dataclass(frozen=True)
class TickCosts:
    """Per-tick cost data of one volume (1-D arrays over ticks), in MB/s and MB."""

    dt: float
    io: np.ndarray  # production I/O of the tick (weight of the IO-weighted mean)
    u_p: np.ndarray  # production utilisation (as the metric computes it)
    alpha: np.ndarray  # [2, n]: intercepts of the two utilisation pieces (IOPS, MB/s)
    beta: np.ndarray  # [2]: their slopes per MB/s
    cap: np.ndarray  # largest backup rate of the tick, MB/s

    @classmethod
    def from_load(cls, dt, iops, mbps, max_iops, max_mbps, backup_max_util, rate_cap=np.inf, io_mb=BACKUP_IO_MB) -> TickCosts:
        """Cost data from production load series (1-D) of one volume on its device."""
        iops = np.asarray(iops, np.float64)
        mbps = np.asarray(mbps, np.float64)
        u_p = utilisation(iops, mbps, max_iops, max_mbps)
        cap = np.minimum(rate_for_utilisation(iops, mbps, max_iops, max_mbps, backup_max_util, io_mb), rate_cap)
        if backup_max_util >= U_MAX:
            raise ValueError(f"backup_max_util {backup_max_util} must stay below the clip {U_MAX}")
        return cls(
            dt=float(dt),
            io=iops * dt,
            u_p=u_p,
            alpha=np.stack([iops / max_iops, mbps / max_mbps]),
            beta=np.array([1.0 / (io_mb * max_iops), 1.0 / max_mbps]),
            cap=np.maximum(cap, 0.0),
        )

    @property
    def n(self) -> int:
        return int(self.io.shape[0])

    def take(self, idx) -> TickCosts:
        """The same data for a subset (or reordering) of ticks."""
        return TickCosts(self.dt, self.io[idx], self.u_p[idx], self.alpha[:, idx], self.beta, self.cap[idx])

    def util(self, r: np.ndarray) -> np.ndarray:
        """Utilisation with the backup, clipped as the simulator clips it (so zero rate costs zero)."""
        return np.clip(np.maximum(self.alpha[0] + self.beta[0] * r, self.alpha[1] + self.beta[1] * r), 0.0, U_MAX)

    def cost(self, r: np.ndarray) -> np.ndarray:
        """Added IO-weighted impact of backup rates `r` (MB/s, within `[0, cap]`)."""
        r = np.asarray(r, np.float64)
        return self.io * ((1.0 - self.u_p) / (1.0 - self.util(r)) - 1.0)

    def best_rate(self, lam) -> np.ndarray:
        """argmin over `[0, cap]` of `cost(r) - lam r dt` per tick (`lam` > 0, per MB)."""
        lam = np.asarray(lam, np.float64)
        k = self.io * (1.0 - self.u_p) / (lam * self.dt)  # stationarity: (1 - u)^2 = k beta
        first = np.where(self.alpha[0] >= self.alpha[1], 0, 1)  # piece active at r = 0
        other = 1 - first
        cols = np.arange(self.n)
        a1, a2 = self.alpha[first, cols], self.alpha[other, cols]
        b1, b2 = self.beta[first], self.beta[other]
        with np.errstate(divide="ignore", invalid="ignore"):
            r1 = (1.0 - a1 - np.sqrt(k * b1)) / b1
            r2 = (1.0 - a2 - np.sqrt(k * b2)) / b2
            cross = np.where(b2 > b1, (a1 - a2) / (b2 - b1), np.inf)  # the other piece takes over here
        r = np.where(r1 <= cross, r1, np.maximum(r2, cross))
        return np.clip(r, 0.0, self.cap)

    def lagrangian(self, lam) -> tuple[np.ndarray, np.ndarray]:
        """(value, MB moved) per tick of `min_r cost(r) - lam r dt` at the minimiser."""
        r = self.best_rate(lam)
        y = r * self.dt
        return self.cost(r) - lam * y, y

    def slope(self, r: np.ndarray, side: str = "right") -> np.ndarray:
        """Marginal cost per MB at rate `r` (MB/s): right or left derivative of `cost(r)` over `dt`."""
        r = np.asarray(r, np.float64)
        u = self.util(r)
        d = 1e-9 * np.maximum(1.0, np.abs(r))
        step = d if side == "right" else -d
        hi_piece = np.argmax(np.stack([self.alpha[0] + self.beta[0] * (r + step), self.alpha[1] + self.beta[1] * (r + step)]), axis=0)
        beta = self.beta[hi_piece]
        return self.io * (1.0 - self.u_p) * beta / np.maximum(1.0 - u, 1e-12) ** 2 / self.dt

    def slope_range(self) -> tuple[float, float]:
        """(smallest positive marginal cost at zero rate, largest at full headroom) over the ticks."""
        live = (self.cap > 0) & (self.io > 0)
        if not live.any():
            return 0.0, 0.0
        lo = self.slope(np.zeros(self.n))[live].min()
        hi = self.slope(self.cap, "left")[live].max()
        return float(lo), float(hi)

"""The coverage a run's served forecasts achieved: the share of actual load at or below the upper band.

A band is only as good as its coverage on each volume: a fleet-wide 90 % can hide bursty
volumes covered 75 % of the time, which is where a predictive policy's backups collide
with load. `CoverageTracker` keeps the forecast served at every `every_h` hours of the
clock and, as the load it forecast is observed, counts per volume how many actual values
(IOPS and MB/s, every horizon step) were at or below its upper band.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from forecasters.calibration import first_step
from forecasters.metrics import coverage_spread
from forecasters.series import steps
from sim.types import Forecast, LoadHistory


class CoverageTracker:
    def __init__(self, every_h: float = 1.0):
        self.every_h = float(every_h)
        self._pending: deque[tuple[int, np.ndarray, float, list[int]]] = deque()  # origin, upper [H, V, 2], quantile, [steps counted]
        self._covered: np.ndarray | None = None  # [V]
        self._total: np.ndarray | None = None
        self._nominal = 0.0  # sum of quantile x values counted
        self._last: int | None = None

    def record(self, history: LoadHistory, fc: Forecast) -> None:
        """Keep `fc` (issued at the end of `history`) when its origin is on the clock's `every_h` grid."""
        if history.n_steps == 0:
            return
        origin = first_step(history) + history.n_steps
        if origin % steps(self.every_h * 3600.0, history.step_s) or origin == self._last:
            return
        self._last = origin
        self._pending.append((origin, np.transpose(np.asarray(fc.upper, np.float32), (1, 0, 2)).copy(), float(fc.quantile), [0]))

    def score(self, history: LoadHistory) -> None:
        """Count the steps of kept forecasts that `history` has observed since the last call."""
        a0, n = first_step(history), history.n_steps
        for origin, upper, quantile, done in self._pending:
            start = origin - a0 + done[0]  # row of the first step not yet counted
            stop = min(origin - a0 + upper.shape[0], n)
            if stop <= start:
                continue
            y = np.stack([history.iops[start:stop], history.mbps[start:stop]], axis=-1)
            hit = y <= upper[done[0] : done[0] + stop - start] + 1e-12  # [k, V, 2], the backtest's rule
            if self._covered is None or self._covered.shape[0] != hit.shape[1]:
                self._covered, self._total = np.zeros(hit.shape[1]), np.zeros(hit.shape[1])
            self._covered += hit.sum(axis=(0, 2))
            self._total += hit.shape[0] * 2
            self._nominal += quantile * hit.shape[0] * 2 * hit.shape[1]
            done[0] += stop - start
        while self._pending and self._pending[0][3][0] >= self._pending[0][1].shape[0]:
            self._pending.popleft()

    def per_volume(self) -> np.ndarray:
        """Coverage of each volume so far (NaN where nothing was scored)."""
        if self._covered is None:
            return np.zeros(0)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self._total > 0, self._covered / np.maximum(self._total, 1), np.nan)

    def summary(self) -> dict:
        """Pooled coverage, its spread over volumes, the share of volumes within 5 points of nominal."""
        total = float(self._total.sum()) if self._total is not None else 0.0
        nominal = self._nominal / total if total else float("nan")
        pooled = float(self._covered.sum() / total) if total else float("nan")
        per = self.per_volume()
        return {
            "coverage": pooled,
            **coverage_spread(per, nominal),
            "coverage_values": int(total),
            "coverage_per_volume": [round(float(c), 4) for c in per],
        }

"""Flat baselines: last value, trailing mean / median, EWMA.

Each repeats one level over the whole horizon; the upper quantile comes from the rule's
own empirical errors on the history (`PointForecaster`).
"""

from __future__ import annotations

import numpy as np

from common.checks import require
from forecasters.base import FORECASTERS
from forecasters.point import PointForecaster
from forecasters.series import steps


def _flat(level: np.ndarray, horizon: int) -> np.ndarray:
    """`[V, 2]` -> `[V, H, 2]`."""
    return np.repeat(level[:, None, :], horizon, axis=1)


@FORECASTERS.register("naive")
class Naive(PointForecaster):
    """Last observed value."""

    name = "naive"

    def _point(self, y: np.ndarray, step_s: float, horizon: int) -> np.ndarray:
        return _flat(y[-1], horizon)


@FORECASTERS.register("trailing_mean")
class TrailingMean(PointForecaster):
    """Mean of the last `window_s` seconds (default 1 h)."""

    name = "trailing_mean"

    def __init__(self, *, window_s: float = 3600.0, **kw):
        super().__init__(**kw)
        self.window_s = float(window_s)

    def _point(self, y: np.ndarray, step_s: float, horizon: int) -> np.ndarray:
        return _flat(y[-steps(self.window_s, step_s) :].mean(axis=0), horizon)

    def lookback_steps(self, step_s: float) -> int:
        return max(super().lookback_steps(step_s), steps(self.window_s, step_s))


@FORECASTERS.register("trailing_median")
class TrailingMedian(PointForecaster):
    """Median of the last `window_s` seconds (default 1 h): robust to single spikes."""

    name = "trailing_median"

    def __init__(self, *, window_s: float = 3600.0, **kw):
        super().__init__(**kw)
        self.window_s = float(window_s)

    def _point(self, y: np.ndarray, step_s: float, horizon: int) -> np.ndarray:
        return _flat(np.median(y[-steps(self.window_s, step_s) :], axis=0), horizon)

    def lookback_steps(self, step_s: float) -> int:
        return max(super().lookback_steps(step_s), steps(self.window_s, step_s))


@FORECASTERS.register("ewma")
class Ewma(PointForecaster):
    """Exponentially weighted moving average with half-life `halflife_s` (default 1 h)."""

    name = "ewma"

    def __init__(self, *, halflife_s: float = 3600.0, **kw):
        super().__init__(**kw)
        require(not halflife_s <= 0, "halflife_s", "must be > 0", halflife_s, where=self.name)
        self.halflife_s = float(halflife_s)

    def _point(self, y: np.ndarray, step_s: float, horizon: int) -> np.ndarray:
        hl = self.halflife_s / step_s
        n = min(y.shape[0], max(1, int(np.ceil(hl * 20))))  # weights below 1e-6 dropped
        w = 0.5 ** (np.arange(n)[::-1] / hl)
        level = np.tensordot(w, y[-n:], axes=(0, 0)) / w.sum()
        return _flat(level, horizon)

    def lookback_steps(self, step_s: float) -> int:
        return max(super().lookback_steps(step_s), int(np.ceil(self.halflife_s / step_s * 20)))

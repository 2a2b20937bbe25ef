"""Seasonal baselines: seasonal naive (daily / weekly), seasonal median, and the blend
of trailing mean and seasonal naive that DESIGN.md names as the bar to beat."""

from __future__ import annotations

import numpy as np

from common.checks import require
from common.units import DAY_S
from forecasters.base import FORECASTERS
from forecasters.point import PointForecaster
from forecasters.series import season_steps, seasonal_indices, steps


def seasonal_naive_point(y: np.ndarray, season: int, horizon: int) -> np.ndarray:
    """`[V, H, 2]`: the value one (or more) seasons before each target step.

    Falls back to the last value when the history is shorter than one season.
    """
    if y.shape[0] < season:
        return np.repeat(y[-1][:, None, :], horizon, axis=1)
    return np.transpose(y[seasonal_indices(y.shape[0], horizon, season)], (1, 0, 2))


@FORECASTERS.register("seasonal_naive")
class SeasonalNaive(PointForecaster):
    """Same time one season ago; `season` = "daily" (default), "weekly" or seconds.

    With less than one season of history it uses the daily season, then the last value.
    """

    name = "seasonal_naive"

    def __init__(self, *, season: str | float = "daily", **kw):
        super().__init__(**kw)
        season_steps(season, 300.0)  # validate early
        self.season = season
        self.name = "seasonal_naive" if season == "daily" else f"seasonal_naive_{season}"

    def _point(self, y: np.ndarray, step_s: float, horizon: int) -> np.ndarray:
        s = season_steps(self.season, step_s)
        if y.shape[0] < s:
            s = season_steps("daily", step_s)
        return seasonal_naive_point(y, s, horizon)

    def min_history_steps(self, step_s: float) -> int:
        return season_steps(self.season, step_s)


@FORECASTERS.register("seasonal_median")
class SeasonalMedian(PointForecaster):
    """Median over the last `days` days of the value at the same time of day."""

    name = "seasonal_median"

    def __init__(self, *, days: int = 7, **kw):
        super().__init__(**kw)
        require(not days < 1, "days", "must be >= 1", days, where=self.name)
        self.days = int(days)

    def _point(self, y: np.ndarray, step_s: float, horizon: int) -> np.ndarray:
        s = steps(DAY_S, step_s)
        n_days = min(self.days, y.shape[0] // s)
        if n_days < 1:
            return np.repeat(y[-1][:, None, :], horizon, axis=1)
        idx = seasonal_indices(y.shape[0], horizon, s)
        stack = np.stack([y[idx - d * s] for d in range(n_days)])  # [days, H, V, 2]
        return np.transpose(np.median(stack, axis=0), (1, 0, 2))

    def min_history_steps(self, step_s: float) -> int:
        return self.days * steps(DAY_S, step_s)


@FORECASTERS.register("blend")
class Blend(PointForecaster):
    """`weight` x trailing mean of `window_s` + (1 - `weight`) x seasonal naive (`season`)."""

    name = "blend"

    def __init__(self, *, weight: float = 0.5, window_s: float = 3600.0, season: str | float = "daily", **kw):
        super().__init__(**kw)
        require(0.0 <= weight <= 1.0, "weight", "must be in [0, 1]", weight, where=self.name)
        self.weight, self.window_s, self.season = float(weight), float(window_s), season

    def _point(self, y: np.ndarray, step_s: float, horizon: int) -> np.ndarray:
        tm = y[-steps(self.window_s, step_s) :].mean(axis=0)[:, None, :]
        sn = seasonal_naive_point(y, season_steps(self.season, step_s), horizon)
        return self.weight * tm + (1.0 - self.weight) * sn

    def min_history_steps(self, step_s: float) -> int:
        return season_steps(self.season, step_s)

    def lookback_steps(self, step_s: float) -> int:
        return max(super().lookback_steps(step_s), steps(self.window_s, step_s))

"""Statistical models from statsforecast (AutoETS, AutoARIMA, MSTL) on hourly aggregates.

Why hourly: AutoETS accepts seasons up to 24 points, and MSTL / AutoARIMA on 5-minute
data take tens of seconds per series (DESIGN.md). The history is cut into hour blocks
*ending at the forecast origin* (so forecast hour k covers steps 12k+1 .. 12k+12), each
block's mean is log-scaled (`log1p(x / scale)`, scale = the series' mean over the fitted
window) and the model is fitted per volume and target on the last `fit_days` days.

Fitting happens in `fit` (retraining); `predict` only re-runs the fitted model's filter
(statsforecast's `forward`: no re-estimation) from the start of the fitted window up to
the origin, so the fitted initial states and seasonal phase stay valid; that costs a few
milliseconds per series. The upper quantile is the model's own one-sided interval
(level = 2q - 1, e.g. 80 % two-sided for q = 0.9), back-transformed. A series whose fit
fails (e.g. constant) falls back to the hourly seasonal naive.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from forecasters.base import FORECASTERS, make_forecast
from forecasters.series import steps, targets
from sim.types import Forecast, LoadHistory


def hourly_blocks(y: np.ndarray, per_hour: int, n_hours: int) -> np.ndarray:
    """Means of the last `n_hours` complete hour blocks ending at the last row: `[n, ...]`."""
    n = min(n_hours, y.shape[0] // per_hour)
    if n == 0:
        return y[:0]
    tail = y[y.shape[0] - n * per_hour :]
    return tail.reshape(n, per_hour, *y.shape[1:]).mean(axis=1)


class _StatsForecaster:
    name = "stats"
    season_hours = 24

    def __init__(self, *, fit_days: float = 28.0, max_extra_days: float = 14.0, quantile: float = 0.9, log: bool = True, rule=None):
        self.fit_days = float(fit_days)
        self.max_extra_days = float(max_extra_days)
        self.quantile = float(quantile)
        self.log = bool(log)
        self.rule = rule
        self._models: list[list[object | None]] | None = None  # [V][target]
        self._scale: np.ndarray | None = None  # [V, 2]
        self._fit_start_t: float | None = None  # start of the first fitted hour block
        self._fit_end_t: float | None = None

    def _forward(self, model, z: np.ndarray, h: int, level: list[int], offset_h: int) -> dict:
        """Run the fitted `model` over the recent window `z` (no re-estimation) and forecast `h` hours."""
        return model.forward(z, h=h, level=level)

    def _new_model(self):
        raise NotImplementedError

    # -- transforms
    def _fwd(self, x: np.ndarray, scale: float) -> np.ndarray:
        return np.log1p(np.maximum(x, 0.0) / scale) if self.log else x

    def _inv(self, z: np.ndarray, scale: float) -> np.ndarray:
        return np.expm1(np.clip(z, -50, 50)) * scale if self.log else z

    def fit(self, history: LoadHistory) -> None:
        per_hour = steps(3600.0, history.step_s)
        n_hours = int(self.fit_days * 24)
        yh = hourly_blocks(targets(history), per_hour, n_hours)  # [n, V, 2]
        v = yh.shape[1]
        self._scale = np.maximum(yh.mean(axis=0), 1e-9) if yh.shape[0] else np.ones((v, 2))
        self._models = [[None, None] for _ in range(v)]
        self._fit_start_t = history.end_t - yh.shape[0] * 3600.0
        self._fit_end_t = history.end_t
        if yh.shape[0] < 2 * self.season_hours + 2:
            return
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for i in range(v):
                for j in range(2):
                    z = self._fwd(yh[:, i, j], self._scale[i, j])
                    if np.ptp(z) <= 1e-12:
                        continue
                    m = self._new_model()
                    try:
                        m.fit(z)
                    except Exception:  # noqa: BLE001 - any failure: this series uses the fallback
                        continue
                    self._models[i][j] = m

    def predict(self, history: LoadHistory, horizon_steps: int) -> Forecast:
        per_hour = steps(3600.0, history.step_s)
        hh = math.ceil(horizon_steps / per_hour)
        v = history.iops.shape[1]
        if self._models is None or len(self._models) != v:
            self.fit(history)
        n_hours = int(self.fit_days * 24)
        # the filter re-runs from the start of the fitted window (within an hour: blocks end
        # at the origin), so the fitted initial states and seasonal phase still apply; after
        # `max_extra_days` without a refit the window slides, kept in phase to within an hour
        since = (history.end_t - self._fit_start_t) / 3600.0 if self._fit_start_t is not None else 0.0
        n_win = int(np.floor(since + 1e-9))
        if n_win > n_hours + 24 * self.max_extra_days or n_win < 1:
            n_win = n_hours - ((n_hours - (n_win % 24)) % 24)
        y = targets(history.tail((n_win + 1) * per_hour))
        yh = hourly_blocks(y, per_hour, n_win)
        # hours between the end of the fitted window and the forecast origin
        offset_h = int(round((history.end_t - self._fit_end_t) / 3600.0)) if self._fit_end_t is not None else 0
        mean_h = np.zeros((v, hh, 2))
        up_h = np.zeros((v, hh, 2))
        level = [int(round((2 * self.quantile - 1) * 100))]
        sn = _hourly_seasonal_naive(yh, hh, self.season_hours)  # [V, hh, 2]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for i in range(v):
                for j in range(2):
                    m = self._models[i][j]
                    s = self._scale[i, j]
                    if m is not None and yh.shape[0] > 2 * self.season_hours:
                        try:
                            r = self._forward(m, self._fwd(yh[:, i, j], s), hh, level, offset_h)
                            mean_h[i, :, j] = self._inv(r["mean"], s)
                            up_h[i, :, j] = self._inv(r[f"hi-{level[0]}"], s)
                            if np.all(np.isfinite(mean_h[i, :, j])) and np.all(np.isfinite(up_h[i, :, j])):
                                continue
                        except Exception:  # noqa: BLE001
                            pass
                    mean_h[i, :, j] = sn[i, :, j]
                    up_h[i, :, j] = sn[i, :, j]
        mean = np.repeat(mean_h, per_hour, axis=1)[:, :horizon_steps]
        upper = np.repeat(up_h, per_hour, axis=1)[:, :horizon_steps]
        return make_forecast(history, mean, upper, quantile=self.quantile, model=self.name, rule=self.rule)


def _hourly_seasonal_naive(yh: np.ndarray, hh: int, season: int) -> np.ndarray:
    if yh.shape[0] == 0:
        return np.zeros((yh.shape[1] if yh.ndim > 1 else 0, hh, 2))
    if yh.shape[0] < season:
        return np.repeat(yh[-1][:, None, :], hh, axis=1)
    h = np.arange(1, hh + 1)
    idx = yh.shape[0] + h - 1 - season * np.ceil(h / season).astype(np.int64)
    return np.transpose(yh[idx], (1, 0, 2))


@FORECASTERS.register("ets")
class ETS(_StatsForecaster):
    """statsforecast AutoETS, daily season (24 hourly points)."""

    name = "ets"

    def _new_model(self):
        from statsforecast.models import AutoETS

        return AutoETS(season_length=self.season_hours)


@FORECASTERS.register("arima")
class ARIMA(_StatsForecaster):
    """statsforecast AutoARIMA, daily season, `approximation=True` (about 1 s per series)."""

    name = "arima"

    def _new_model(self):
        from statsforecast.models import AutoARIMA

        return AutoARIMA(season_length=self.season_hours, approximation=True)


@FORECASTERS.register("mstl")
class MSTLForecaster(_StatsForecaster):
    """statsforecast MSTL with daily and weekly seasons (24, 168 hours), AutoETS trend.

    statsforecast's own `forward` re-runs the decomposition (about 0.1 s per series); here
    `predict` keeps the seasonal profiles estimated at fit time (phase-shifted by the hours
    since), removes them from the recent window and only runs the fitted trend model's
    filter over what is left, then adds the profiles back for the forecast hours.
    """

    name = "mstl"
    seasons = (24, 168)

    def _new_model(self):
        from statsforecast.models import MSTL, AutoETS

        return MSTL(season_length=list(self.seasons), trend_forecaster=AutoETS(model="ZZN"))

    def _seasonal(self, model, offsets: np.ndarray) -> np.ndarray:
        """Sum of the fitted seasonal components at hour offsets from the last fitted hour (0)."""
        out = np.zeros(len(offsets))
        for s in self.seasons:
            prof = model.model_[f"seasonal{s}"].to_numpy()[-s:]
            out += prof[(s - 1 + offsets) % s]
        return out

    def _forward(self, model, z: np.ndarray, h: int, level: list[int], offset_h: int) -> dict:
        past = np.arange(offset_h - len(z) + 1, offset_h + 1)
        fut = np.arange(offset_h + 1, offset_h + h + 1)
        r = model.trend_forecaster.forward(z - self._seasonal(model, past), h=h, level=level)
        seas = self._seasonal(model, fut)
        return {k: v + seas for k, v in r.items()}

"""The forecaster protocol and its registry.

A forecaster is fitted on a `LoadHistory` (possibly again: retraining) and predicts
from the end of a (possibly newer) history without refitting, which is why `predict`
takes the history too: conditioning on the latest observations must be cheap, fitting
may not be. It never sees data past `history.end_t`.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from common.registry import Registry
from sim.types import Forecast, LoadHistory


@runtime_checkable
class Forecaster(Protocol):
    name: str

    def fit(self, history: LoadHistory) -> None:
        """Train on `history` (may be called again as data arrives: warm start allowed)."""
        ...

    def predict(self, history: LoadHistory, horizon_steps: int) -> Forecast:
        """Forecast `horizon_steps` steps after `history.end_t` for every volume."""
        ...


FORECASTERS: Registry[Forecaster] = Registry("forecaster", group="piop.forecasters")


# ----------------------------------------------------------------------------- shared helpers
# (additions: the protocol and registry above are unchanged)

DAY_S = 86_400.0
WEEK_S = 7 * DAY_S
TARGETS: tuple[str, str] = ("iops", "mbps")


def steps(seconds: float, step_s: float) -> int:
    """Whole history steps in `seconds` (at least 1)."""
    return max(1, int(round(seconds / step_s)))


def season_steps(season: str | float | int, step_s: float) -> int:
    """Season length in steps: "daily", "weekly" or a number of seconds."""
    if isinstance(season, str):
        key = season.lower()
        if key not in ("daily", "weekly"):
            raise ValueError(f"season must be 'daily', 'weekly' or seconds, not {season!r}")
        return steps(DAY_S if key == "daily" else WEEK_S, step_s)
    return steps(float(season), step_s)


def targets(history: LoadHistory) -> np.ndarray:
    """The two forecast targets as one `[n_steps, n_volumes, 2]` float64 array (iops, mbps)."""
    return np.stack([np.asarray(history.iops, np.float64), np.asarray(history.mbps, np.float64)], axis=-1)


def seasonal_indices(n_steps: int, horizon: int, season: int) -> np.ndarray:
    """Row of the history that seasonal naive repeats for each of steps 1..horizon after the end.

    Target step h (1-based) sits at row `n_steps + h - 1`; its seasonal-naive value is the
    row `season * ceil(h / season)` earlier (the last observed same phase). Rows may be
    negative when the history is shorter than the season; callers check.
    """
    h = np.arange(1, horizon + 1)
    return n_steps + h - 1 - season * np.ceil(h / season).astype(np.int64)


def horizon_bucket(horizon: int) -> np.ndarray:
    """Geometric horizon buckets (1, 2-3, 4-7, 8-15, ...) for steps 1..horizon."""
    return np.floor(np.log2(np.arange(1, horizon + 1))).astype(np.int64)


def make_forecast(history: LoadHistory, mean: np.ndarray, upper: np.ndarray, *, quantile: float, model: str, rule=None, labels=None) -> Forecast:
    """Package `[V, H, 2]` point and upper forecasts (clipped at 0) with burst/sustained labels."""
    from forecasters.classify import label_forecast  # late: classify imports this module

    mean = np.maximum(np.asarray(mean, np.float64), 0.0)
    upper = np.maximum(np.asarray(upper, np.float64), mean)
    if labels is None:
        labels = label_forecast(history, mean, rule)
    return Forecast(origin_t=history.end_t, step_s=history.step_s, mean=mean, upper=upper, labels=labels, quantile=quantile, model=model)


class PointForecaster:
    """Base of the simple models: a vectorised point rule plus an empirical upper quantile.

    Subclasses implement `_point(y, step_s, horizon) -> [V, H, 2]` from `y = targets(history)`
    (`[T, V, 2]`). The upper quantile is the point forecast plus the `quantile`-th empirical
    quantile of the rule's own errors, measured on the fitted history by rolling the rule
    over `calib_origins` origins in its last `calib_days` days (pooled per volume, target
    and geometric horizon bucket). `fit` measures those errors; `predict` only applies the
    rule to the newest history (and calibrates on it first if `fit` was never called or
    the fleet changed size).
    """

    name = "point"

    def __init__(self, *, quantile: float = 0.9, calib_origins: int = 32, calib_days: float = 7.0, calib_horizon_s: float = DAY_S, rule=None):
        if not 0.0 < quantile < 1.0:
            raise ValueError(f"quantile must be in (0, 1), not {quantile}")
        self.quantile = quantile
        self.calib_origins = int(calib_origins)
        self.calib_days = float(calib_days)
        self.calib_horizon_s = float(calib_horizon_s)
        self.rule = rule
        self._resid_q: np.ndarray | None = None  # [n_buckets, V, 2]

    # -- to implement
    def _point(self, y: np.ndarray, step_s: float, horizon: int) -> np.ndarray:
        raise NotImplementedError

    def min_history_steps(self, step_s: float) -> int:
        """Steps of history the rule needs before its forecast is meaningful."""
        return 1

    def lookback_steps(self, step_s: float) -> int:
        """Steps of history `_point` reads (predict hands it only that tail)."""
        return max(self.min_history_steps(step_s), steps(DAY_S, step_s))

    # -- protocol
    def fit(self, history: LoadHistory) -> None:
        self._resid_q = self._calibrate(targets(history), history.step_s)

    def predict(self, history: LoadHistory, horizon_steps: int) -> Forecast:
        v = len(history.kinds) if history.n_steps == 0 else history.iops.shape[1]
        if history.n_steps == 0:
            z = np.zeros((v, horizon_steps, 2))
            return make_forecast(history, z, z, quantile=self.quantile, model=self.name)
        y = targets(history.tail(self.lookback_steps(history.step_s)))
        mean = self._point(y, history.step_s, horizon_steps)
        q = self._resid_q
        if q is None or q.shape[1] != v:  # never fitted (or the fleet changed): calibrate once, now
            q = self._resid_q = self._calibrate(targets(history), history.step_s)
        b = np.minimum(horizon_bucket(horizon_steps), q.shape[0] - 1)
        upper = mean + np.transpose(q[b], (1, 0, 2))
        return make_forecast(history, mean, upper, quantile=self.quantile, model=self.name, rule=self.rule)

    # -- calibration
    def _calibrate(self, y: np.ndarray, step_s: float) -> np.ndarray:
        t, v = y.shape[0], y.shape[1]
        hc = steps(self.calib_horizon_s, step_s)
        nb = int(horizon_bucket(hc)[-1]) + 1
        lo = max(self.min_history_steps(step_s), t - hc - steps(self.calib_days * DAY_S, step_s))
        hi = t - hc
        if hi <= lo:  # too short to measure: no spread (upper = point)
            return np.zeros((nb, v, 2))
        origins = np.unique(np.linspace(lo, hi, min(self.calib_origins, hi - lo + 1)).round().astype(np.int64))
        buckets = horizon_bucket(hc)
        # at most 16 steps per bucket keep memory small for large fleets
        keep = np.concatenate([np.flatnonzero(buckets == b)[:: max(1, int(np.sum(buckets == b)) // 16)] for b in range(nb)])
        res = np.empty((len(origins), len(keep), v, 2), np.float32)
        for i, o in enumerate(origins):
            pt = self._point(y[:o], step_s, hc)  # [V, hc, 2]
            res[i] = (y[o + keep] - np.transpose(pt[:, keep], (1, 0, 2))).astype(np.float32)
        out = np.zeros((nb, v, 2))
        kb = buckets[keep]
        for b in range(nb):
            r = res[:, kb == b].reshape(-1, v, 2)
            out[b] = np.quantile(r, self.quantile, axis=0)
        return out


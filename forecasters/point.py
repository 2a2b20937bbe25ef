"""`PointForecaster`: the base of the simple models (a point rule plus an empirical upper quantile)."""

from __future__ import annotations

import numpy as np

from common.checks import require
from common.units import DAY_S
from forecasters.base import make_forecast
from forecasters.series import horizon_bucket, steps, targets
from sim.types import Forecast, LoadHistory


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

    def __init__(
        self, *, quantile: float = 0.9, calib_origins: int = 32, calib_days: float = 7.0, calib_horizon_s: float = DAY_S, rule=None
    ):
        require(0.0 < quantile < 1.0, "quantile", "must be in (0, 1)", quantile, where=self.name)
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

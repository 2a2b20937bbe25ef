"""The forecast service the simulator calls once per history step.

`ForecastService.update(history)`:

1. **Scores** its own past forecasts whose evaluation window (the mean load over the first
   `eval_s` after their origin, default 1 h) is now fully observed, for the model and for
   the fallback (seasonal naive), and keeps the last `error_window` scores. The rolling
   error ratio is sum(model abs error) / sum(fallback abs error), each volume's error
   divided by its mean load so large volumes do not drown small ones.
2. **Retrains** when due under its `RetrainPolicy`: the first time enough history exists,
   every `every_hours` simulated hours, and/or when the rolling ratio drifts above
   `drift_bound` (at most once per `cooldown_hours`). Retraining is `forecaster.fit` on the
   history it was handed, so never on the future; models warm-start themselves (the LSTM
   continues from its weights); `warm_start=False` calls `forecaster.reset()` first.
3. **Predicts** with the model, and **falls back** (as Microsoft's Seagull does) when the
   model's rolling ratio is above `fallback_bound`: first to the last known-good model
   (a snapshot taken at a retrain while the model was scoring well), then to the fallback
   forecaster once that one scores badly too. A retrain returns to the model.

With a `prior` history (the load observed before the simulation started, the experiment's
`history_h`) every forecaster sees that history followed by the simulation's, on the
simulation's clock (the prior steps have negative times): the first fit can then happen
at the first update, and seasonal models have their lags from the start.

**Calibration.** With `coverage` set (e.g. `retrain: {coverage: 0.9}` in a config) the model
and the fallback are wrapped in `Calibrated` (`forecasters.calibration`): every served upper
band is the per-volume split-conformal quantile of that source's own recent errors at the
nominal level `coverage`, and its labels come from the calibrated band. The `calib_*` keys
tune the calibration (window, origin spacing, level adaptation, label level); without `coverage` the models'
own bands are served, unchanged.

**Coverage.** Whatever is served, the forecast at every `calib_every_h` (default 1 h) of the
clock is kept and scored once observed (`forecasters.coverage`): `summary()` reports the
share of actual load at or below the upper band, pooled and per volume, and the share of
volumes within 5 points of the nominal quantile.

Every fit, fallback switch and timing is appended to `events`; `summary()` gives totals for
a run's results. When no retrain is due an update costs one model prediction, one
seasonal-naive prediction and O(volumes) bookkeeping; an update whose origin has not moved a
history step since the last one returns the last forecast. A scheduled or drift retrain of a
fitted model warm-starts (the LSTM fine-tunes for a few epochs on its last days from its
current weights, a fraction of a first fit's cost); each fit event records whether it was warm.
"""

from __future__ import annotations

import copy
import time
from collections import deque
from dataclasses import dataclass, fields, replace

import numpy as np

from common.checks import reject_unknown
from forecasters.base import FORECASTERS, Forecaster
from forecasters.calibration import CONFIG_KEYS, calibrate, pop_calibration
from forecasters.coverage import CoverageTracker
from forecasters.series import steps
from sim.types import Forecast, LoadHistory


@dataclass
class RetrainPolicy:
    every_hours: float | None = 24.0  # retrain every N simulated hours (None: never on a clock)
    drift_bound: float | None = None  # retrain when rolling error ratio vs fallback exceeds this
    cooldown_hours: float = 6.0  # minimum time between drift-triggered retrains
    min_history_hours: float = 24.0  # no fit before this much history
    warm_start: bool = True
    fallback_bound: float = 1.0  # serve the known-good model / fallback above this ratio
    error_window: int = 48  # scored forecasts in the rolling error
    min_scored: int = 12  # scores needed before drift / fallback decisions
    eval_s: float = 3600.0  # window whose mean load is scored
    # calibration (`forecasters.calibration`): off while `coverage` is None; None elsewhere: `Calibrated`'s default
    coverage: float | None = None  # nominal share of actual load at or below the upper band
    calib_window_h: float | None = None  # calibration origins kept (hours of them), default 168
    calib_every_h: float | None = None  # spacing of calibration (and coverage) origins, default 1
    calib_per_bucket: int | None = None  # horizon steps kept per geometric bucket, default 8
    calib_min_samples: int | None = None  # residuals needed before a band is calibrated, default 20
    calib_label_level: float | None = None  # quantile whose path the burst labels read, default 0.5
    calib_adapt: float | None = None  # step of each volume's level towards its missed share, default 0.05

    @classmethod
    def from_config(cls, cfg: dict | None) -> RetrainPolicy:
        cfg = dict(cfg or {})
        reject_unknown(cfg, [f.name for f in fields(cls)], where="retrain policy")
        return cls(**cfg)

    def calibration(self) -> dict | None:
        """`Calibrated` parameters, or None when no `coverage` is set."""
        return pop_calibration({k: getattr(self, k) for k in CONFIG_KEYS if getattr(self, k) is not None})


class _Scores:
    """Rolling abs errors of one forecast source and the fallback on the same origins."""

    def __init__(self, window: int):
        self.model: deque[float] = deque(maxlen=window)
        self.base: deque[float] = deque(maxlen=window)

    def add(self, model_err: float, base_err: float) -> None:
        self.model.append(model_err)
        self.base.append(base_err)

    def __len__(self) -> int:
        return len(self.model)

    def ratio(self) -> float:
        b = sum(self.base)
        return sum(self.model) / b if b > 0 else (1.0 if sum(self.model) == 0 else float("inf"))

    def clear(self) -> None:
        self.model.clear()
        self.base.clear()


class _Joined:
    """`prior` followed by a growing history, as one `LoadHistory` on the latter's clock.

    The rows are copied once into a buffer that doubles when full, so joining costs only
    the new rows at each update.
    """

    def __init__(self, prior: LoadHistory):
        self.prior = prior
        self.n_prior = prior.n_steps
        self._cols: dict[str, np.ndarray] = {}
        self._n = 0  # rows of the growing history copied so far

    def __call__(self, history: LoadHistory) -> LoadHistory:
        p = self.prior
        if history.step_s != p.step_s or history.iops.shape[1] != p.iops.shape[1]:
            raise ValueError(
                f"prior history ({p.iops.shape[1]} volumes, {p.step_s:g} s steps) does not match the run's "
                f"({history.iops.shape[1]} volumes, {history.step_s:g} s)"
            )
        total = self.n_prior + history.n_steps
        if not self._cols or total > next(iter(self._cols.values())).shape[0]:
            cap = max(total, 2 * (self.n_prior + self._n), 16)
            cols = {}
            for f in _HISTORY_COLUMNS:
                cols[f] = np.zeros((cap, p.iops.shape[1]), np.float32)
                cols[f][: self.n_prior] = getattr(p, f)
                if self._cols:
                    cols[f][self.n_prior : self.n_prior + self._n] = self._cols[f][self.n_prior : self.n_prior + self._n]
            self._cols = cols
        for f in _HISTORY_COLUMNS:  # new rows only
            self._cols[f][self.n_prior + self._n : total] = getattr(history, f)[self._n :]
        self._n = history.n_steps
        times = (np.arange(total, dtype=np.float64) - self.n_prior) * history.step_s + (float(history.times[0]) if history.n_steps else 0.0)
        return LoadHistory(
            history.step_s, history.start_epoch, times, kinds=history.kinds, **{f: self._cols[f][:total] for f in _HISTORY_COLUMNS}
        )


_HISTORY_COLUMNS = ("iops", "mbps", "cpu_pct", "mem_pct", "net_mbps")


def same_state(a: object, b: object) -> bool:
    """Whether two forecasters are of one class with equal settings and fitted state (plain values
    and arrays only: anything else, a random generator or a network, is never taken as equal)."""
    if type(a) is not type(b) or not hasattr(a, "__dict__") or vars(a).keys() != vars(b).keys():
        return False
    for k, x in vars(a).items():
        y = vars(b)[k]
        if isinstance(x, np.ndarray) or isinstance(y, np.ndarray):
            if not (isinstance(x, np.ndarray) and isinstance(y, np.ndarray) and x.dtype == y.dtype and np.array_equal(x, y)):
                return False
        elif not (isinstance(x, (str, int, float, bool, type(None))) or _frozen(x)) or x != y:
            return False
    return True


def _frozen(x: object) -> bool:
    """A frozen dataclass of plain values (a burst rule)."""
    params = getattr(type(x), "__dataclass_params__", None)
    return params is not None and params.frozen


class ForecastService:
    def __init__(
        self,
        forecaster: Forecaster | str,
        horizon_steps: int,
        retrain: RetrainPolicy | dict | None = None,
        fallback: Forecaster | str = "seasonal_naive",
        params: dict | None = None,
        prior: LoadHistory | None = None,
    ):
        self.forecaster = FORECASTERS.create(forecaster, **(params or {})) if isinstance(forecaster, str) else forecaster
        self.fallback = FORECASTERS.create(fallback) if isinstance(fallback, str) else fallback
        self.horizon_steps = int(horizon_steps)
        self.policy = retrain if isinstance(retrain, RetrainPolicy) else RetrainPolicy.from_config(retrain)
        calib = self.policy.calibration()
        if calib is not None:
            self.forecaster, self.fallback = (calibrate(f, calib, "retrain") for f in (self.forecaster, self.fallback))
        self.coverage = CoverageTracker(self.policy.calib_every_h or 1.0)
        self.events: list[dict] = []
        self.fit_times: list[float] = []
        self.predict_times: list[float] = []
        self.mode = "model"  # "model" | "good" | "fallback"
        self._join = _Joined(prior) if prior is not None and prior.n_steps else None
        self._fitted = False
        self._fallback_fitted = False
        self._last_fit_t: float | None = None
        self._last_drift_fit_t: float | None = None
        self._good: Forecaster | None = None
        self._scores = {"model": _Scores(self.policy.error_window), "good": _Scores(self.policy.error_window)}
        self._pending: deque[tuple[int, np.ndarray, np.ndarray | None, np.ndarray]] = deque()
        self._served: tuple[tuple[int, float], Forecast] | None = None  # (origin, forecast) of the last update
        self.cached = 0  # updates answered with the last forecast (same origin)

    @property
    def name(self) -> str:
        return getattr(self.forecaster, "name", type(self.forecaster).__name__)

    # ------------------------------------------------------------------ public
    def rolling_ratio(self, source: str = "model") -> float:
        return self._scores[source].ratio()

    def update(self, history: LoadHistory) -> Forecast:
        if self._join is not None:
            history = self._join(history)
        t = history.end_t
        if self._served is not None and self._served[0] == (history.n_steps, t):
            self.cached += 1  # the origin has not moved a history step: nothing new to score, fit or predict
            return self._served[1]
        self._score(history)
        self.coverage.score(history)
        reason = self._retrain_reason(history)
        if reason:
            self._refit(history, reason)
        if not self._fallback_fitted and history.n_steps:
            self.fallback.fit(history)
            self._fallback_fitted = True
        model_fc = self._timed_predict(self.forecaster, history) if self._fitted else None
        base_fc = self._fallback_predict(history, model_fc)
        self._choose_mode(t, model_fc is not None)
        served = model_fc
        good_fc = None
        if self.mode == "good" and self._good is not None:
            good_fc = self._good.predict(history, self.horizon_steps)
            served = good_fc
        elif self.mode == "fallback" or served is None:
            served = base_fc
        if served is base_fc:
            served.model = f"fallback:{getattr(self.fallback, 'name', 'fallback')}"
        self._remember(history, model_fc, good_fc, base_fc)
        self.coverage.record(history, served)
        self._served = ((history.n_steps, t), served)
        return served

    def summary(self) -> dict:
        fits = [e for e in self.events if e["event"] == "fit"]
        return {
            "forecaster": self.name,
            "fits": len(fits),
            "fit_s_total": float(sum(self.fit_times)),
            "predict_s_total": float(sum(self.predict_times)),
            "predict_ms_mean": float(1e3 * np.mean(self.predict_times)) if self.predict_times else 0.0,
            "fallback_switches": sum(1 for e in self.events if e["event"] == "mode"),
            "rolling_ratio": self.rolling_ratio(),
            "mode": self.mode,
            "coverage_target": self.policy.coverage,
            **self.coverage.summary(),
        }

    # ------------------------------------------------------------------ internals
    def _fallback_predict(self, history: LoadHistory, model_fc: Forecast | None) -> Forecast:
        """The fallback's forecast: a copy of the model's where the fallback is the same model in the
        same state (seasonal naive served with a seasonal-naive fallback), which would predict the same."""
        if model_fc is not None and same_state(self.forecaster, self.fallback):
            return replace(model_fc)
        return self.fallback.predict(history, self.horizon_steps)

    def _timed_predict(self, f: Forecaster, history: LoadHistory) -> Forecast:
        t0 = time.perf_counter()
        fc = f.predict(history, self.horizon_steps)
        self.predict_times.append(time.perf_counter() - t0)
        return fc

    def _retrain_reason(self, history: LoadHistory) -> str | None:
        p, t = self.policy, history.end_t
        if history.n_steps * history.step_s < p.min_history_hours * 3600.0 - 1e-9:
            return None
        if not self._fitted:
            return "initial"
        if p.every_hours is not None and t - self._last_fit_t >= p.every_hours * 3600.0 - 1e-9:
            return "schedule"
        sc = self._scores["model"]
        if p.drift_bound is not None and len(sc) >= p.min_scored and sc.ratio() > p.drift_bound:
            last = self._last_drift_fit_t if self._last_drift_fit_t is not None else -np.inf
            if t - max(last, self._last_fit_t) >= p.cooldown_hours * 3600.0 - 1e-9:
                return "drift"
        return None

    def _refit(self, history: LoadHistory, reason: str) -> None:
        sc = self._scores["model"]
        ratio = sc.ratio() if len(sc) else float("nan")
        if self._fitted and len(sc) >= self.policy.min_scored and ratio <= self.policy.fallback_bound:
            self._good = copy.deepcopy(self.forecaster)  # last known-good model
        warm = self._fitted and self.policy.warm_start
        if not self.policy.warm_start and hasattr(self.forecaster, "reset"):
            self.forecaster.reset()
        t0 = time.perf_counter()
        self.forecaster.fit(history)
        dt = time.perf_counter() - t0
        self.fallback.fit(history)
        self._fallback_fitted = True
        self.fit_times.append(dt)
        self.events.append(
            {
                "event": "fit",
                "t": history.end_t,
                "reason": reason,
                "warm": warm,
                "fit_s": dt,
                "n_steps": history.n_steps,
                "ratio_before": ratio,
            }
        )
        self._fitted = True
        self._last_fit_t = history.end_t
        if reason == "drift":
            self._last_drift_fit_t = history.end_t
        sc.clear()
        if self.mode != "model":
            self._set_mode("model", history.end_t, "retrained")

    def _choose_mode(self, t: float, have_model: bool) -> None:
        p = self.policy
        if not have_model:
            return
        m = self._scores["model"]
        model_ok = len(m) < p.min_scored or m.ratio() <= p.fallback_bound
        if model_ok:
            target = "model"
        else:
            g = self._scores["good"]
            good_ok = self._good is not None and (len(g) < p.min_scored or g.ratio() <= p.fallback_bound)
            target = "good" if good_ok else "fallback"
        if target != self.mode:
            self._set_mode(target, t, f"model ratio {m.ratio():.3f}")

    def _set_mode(self, mode: str, t: float, why: str) -> None:
        self.events.append({"event": "mode", "t": t, "from": self.mode, "to": mode, "why": why})
        if mode == "good":
            self._scores["good"].clear()
        self.mode = mode

    @staticmethod
    def _window_mean(fc: Forecast | None, n: int) -> np.ndarray | None:
        return None if fc is None else fc.mean[:, :n].mean(axis=1)  # [V, 2]

    def _remember(self, history: LoadHistory, model_fc, good_fc, base_fc) -> None:
        n = min(steps(self.policy.eval_s, history.step_s), self.horizon_steps)
        self._pending.append(
            (history.n_steps, self._window_mean(model_fc, n), self._window_mean(good_fc, n), self._window_mean(base_fc, n))
        )

    def _score(self, history: LoadHistory) -> None:
        n = min(steps(self.policy.eval_s, history.step_s), self.horizon_steps)
        day = steps(86_400.0, history.step_s)
        while self._pending and self._pending[0][0] + n <= history.n_steps:
            origin, m, g, b = self._pending.popleft()
            lo = max(0, origin - day)
            y = np.stack([history.iops[lo : origin + n], history.mbps[lo : origin + n]], -1).astype(np.float64)
            actual = y[origin - lo :].mean(axis=0)  # [V, 2]
            norm = np.maximum(y[: origin - lo].mean(axis=0) if origin > lo else actual, 1e-9)
            base_err = float(np.sum(np.abs(b - actual) / norm))
            if m is not None:
                self._scores["model"].add(float(np.sum(np.abs(m - actual) / norm)), base_err)
            if g is not None:
                self._scores["good"].add(float(np.sum(np.abs(g - actual) / norm)), base_err)

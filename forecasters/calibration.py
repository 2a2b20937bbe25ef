"""Per-volume calibrated upper quantiles over any forecaster (split-conformal, rolling window).

A model's own upper quantile is right on average at best: a global model (the LSTM), a
Gaussian interval (ETS, ARIMA) or a fixed margin is too narrow on bursty volumes and too
wide on steady ones. `Calibrated` wraps any forecaster and replaces its upper band by one
measured on the volume's own recent errors, so each volume gets the band its errors call for.

The rule (split-conformal over a rolling window, per volume, target and horizon bucket):

- **Calibration origins.** Every `every_h` hours of the clock (origins on a fixed grid,
  so a backtest and a simulation calibrate on the same origins) the wrapped model's mean
  forecast is kept at up to `per_bucket` steps of each geometric horizon bucket (steps 1,
  2-3, 4-7, 8-15, ...). Origins the wrapper did not see live (the history a run starts
  with, or the gap between two backtest origins) are forecast afterwards on the history
  up to that origin only. The last `window_h / every_h` origins are kept.
- **Residuals, no leakage.** Calibration origins are processed in time order; at each, the
  residuals `actual - mean` of kept steps whose targets are observed by then are recorded.
  A forecast from origin `t` uses the state as of the last calibration origin at or before
  `t`: only targets up to it. The quantiles depend on the data only, never on when or how
  often the wrapper was called; the adapted levels (below) also on the first origin it
  processed (same data, same first call: same numbers).
- **Upper band.** `upper = mean + q`, with `q` the conformal quantile of the residuals in the
  window for that volume, target and bucket: the `ceil((n + 1) * level)`-th smallest of
  the `n` residuals (the largest when that rank passes `n`). Where fewer than `min_samples`
  residuals exist, the model's own upper is kept. The band is never below the mean (`make_forecast`).
- **Level, adapted per volume** (adaptive conformal inference, Gibbs & Candes 2021). Each
  volume's `level` starts at `coverage`. At every calibration origin the band then in force
  is kept with the forecast; when its steps are observed, the level moves by
  `adapt x (miss rate - (1 - coverage))` (misses: actual above that band, over the steps
  scored since the last origin, each kept step weighted by the horizon steps it stands
  for, so the rate is that of the whole horizon), clipped to [0.5, 0.999]. A volume whose errors grew
  since the window began is covered less than nominal until its level rises; `adapt = 0`
  is plain split-conformal. The default 0.05 (a level moves by at most 5 points an hour)
  held per-volume coverage within 5 points of nominal for 95 % or more of the Bitbrains VMs
  where plain split-conformal held 68 % over the week after a calm one.
- **Labels.** Burst / sustained labels (`forecasters.classify`) are those of the calibrated
  `label_level` quantile forecast `mean + q`, `q` the `label_level` quantile of all the
  volume's residuals in the window (every horizon step pooled, so the offset adds no shape
  of its own): a step counts as high when the calibrated probability that its load passes
  the high-load threshold is at least `1 - label_level` (0.5: the calibrated median).

A learned model's calibration origins before its last fit are forecast by the refitted
model (in-sample for it); a simulation sees each origin live after its first hour.
"""

from __future__ import annotations

import math

import numpy as np

from common.checks import is_number, positive, require
from forecasters.base import FORECASTERS, Forecaster, make_forecast
from forecasters.classify import label_forecast
from forecasters.series import horizon_bucket, steps
from sim.types import Forecast, LoadHistory

#: config keys of a calibration (a service's `retrain:` section, a backtest spec) -> `Calibrated` parameters
CONFIG_KEYS = {
    "coverage": "coverage",
    "calib_adapt": "adapt",
    "calib_window_h": "window_h",
    "calib_every_h": "every_h",
    "calib_per_bucket": "per_bucket",
    "calib_min_samples": "min_samples",
    "calib_label_level": "label_level",
}


def pop_calibration(cfg: dict) -> dict | None:
    """Take the calibration keys out of `cfg`: `Calibrated` parameters, or None without `coverage`."""
    given = {CONFIG_KEYS[k]: cfg.pop(k) for k in list(cfg) if k in CONFIG_KEYS}
    if "coverage" not in given or given["coverage"] is None:
        extra = sorted(k for k, v in CONFIG_KEYS.items() if v in given and v != "coverage")
        require(not extra, ", ".join(extra), "calibration settings need `coverage` (the nominal level)")
        return None
    return given


def calibrate(model, settings: dict, where: str) -> Calibrated:
    """`model` wrapped in `Calibrated` with `settings` from `pop_calibration`; a bad value's
    error names its config key (`calib_window_h`, not `window_h`)."""
    try:
        return Calibrated(model, **settings)
    except ValueError as err:
        msg = str(err).removeprefix("calibrated: ")
        param = msg.split(":", 1)[0]
        key = next((k for k, p in CONFIG_KEYS.items() if p == param), param)
        raise ValueError(f"{where + ': ' if where else ''}{key}{msg[len(param) :]}") from None


def sample_steps(horizon: int, per_bucket: int) -> np.ndarray:
    """1-based horizon steps kept for calibration: at most `per_bucket` per bucket, evenly spread."""
    buckets = horizon_bucket(horizon)
    out = []
    for b in range(int(buckets[-1]) + 1):
        idx = np.flatnonzero(buckets == b) + 1
        out.append(np.unique(np.linspace(idx[0], idx[-1], min(per_bucket, idx.size)).round().astype(np.int64)))
    return np.concatenate(out)


def upto(history: LoadHistory, n: int) -> LoadHistory:
    """The first `n` steps of `history` as views (nothing after them is reachable)."""
    return LoadHistory(
        history.step_s,
        history.start_epoch,
        history.times[:n],
        history.iops[:n],
        history.mbps[:n],
        history.cpu_pct[:n],
        history.mem_pct[:n],
        history.net_mbps[:n],
        history.kinds,
    )


def first_step(history: LoadHistory) -> int:
    """Clock step number of the history's first row (a grid that every history of one clock shares)."""
    return int(round(float(history.times[0]) / history.step_s)) if history.n_steps else 0


def conformal_rank(n: int, level: float | np.ndarray) -> np.ndarray:
    """0-based rank of the conformal `level` quantile among `n` values: `ceil((n + 1) * level) - 1`,
    at most `n - 1` (the largest value when the rank passes `n`)."""
    return np.clip(np.ceil((n + 1) * np.asarray(level, np.float64)).astype(np.int64) - 1, 0, max(n - 1, 0))


class ResidualWindow:
    """Residuals of the mean forecasts at the last `slots` calibration origins.

    Arrays are `[slot, kept step, volume, target]`; a residual is NaN until its target is observed.
    """

    def __init__(self, n_volumes: int, horizon: int, slots: int, per_bucket: int):
        self.horizon = horizon
        self.keep = sample_steps(horizon, per_bucket)
        self.bucket = horizon_bucket(horizon)[self.keep - 1]
        self.n_buckets = int(self.bucket[-1]) + 1
        size, kept = np.bincount(horizon_bucket(horizon)), np.bincount(self.bucket)
        self.weight = (size / kept)[self.bucket]  # horizon steps each kept step stands for
        self.origin = np.full(slots, np.iinfo(np.int64).min, np.int64)  # clock step of each origin
        self.mean = np.zeros((slots, self.keep.size, n_volumes, 2), np.float32)
        self.resid = np.full_like(self.mean, np.nan)
        self.band = np.full_like(self.mean, np.nan)  # upper offsets in force at each origin (NaN: none)
        self.open = np.zeros(slots, bool)  # some kept step not yet observed
        self._kept: set[int] = set()  # the origins held
        self._next = 0

    @property
    def n_volumes(self) -> int:
        return int(self.mean.shape[2])

    def has(self, origin: int) -> bool:
        return origin in self._kept

    def add(self, origin: int, mean: np.ndarray) -> None:
        """Keep the mean forecast `[V, H, 2]` issued at clock step `origin` (replacing the oldest)."""
        s = self._next
        self._kept.discard(int(self.origin[s]))
        self._kept.add(origin)
        self.origin[s] = origin
        self.mean[s] = np.transpose(mean[:, self.keep - 1], (1, 0, 2))
        self.resid[s] = np.nan
        self.band[s] = np.nan
        self.open[s] = True
        self._next = (s + 1) % self.origin.size

    def newest(self) -> int:
        return (self._next - 1) % self.origin.size

    def score(self, history: LoadHistory, n: int) -> np.ndarray:
        """Record the residuals of kept steps whose targets are among the first `n` rows of
        `history`; returns the misses of the bands in force among them and the steps judged,
        `[2, V, 2]`, each kept step weighted by the horizon steps it stands for."""
        out = np.zeros((2, self.n_volumes, 2))
        slots = np.flatnonzero(self.open)
        if not slots.size:
            return out
        a0 = first_step(history)
        rows = self.origin[slots, None] + self.keep[None, :] - 1 - a0  # target row of each kept step
        new = (rows >= 0) & (rows < n) & np.isnan(self.resid[slots, :, 0, 0])
        si, ki = np.nonzero(new)
        if si.size:
            r = rows[si, ki]
            y = np.stack([history.iops[r], history.mbps[r]], axis=-1).astype(np.float32)
            r_new = y - self.mean[slots[si], ki]
            self.resid[slots[si], ki] = r_new
            band = self.band[slots[si], ki]
            judged = ~np.isnan(band)
            wk = self.weight[ki][:, None, None]
            out[0] = np.sum(wk * ((r_new > band) & judged), axis=0)
            out[1] = np.sum(wk * judged, axis=0)
        self.open[slots] = rows[:, -1] >= n  # the last kept step still ahead
        return out

    def quantiles(self, level: float | np.ndarray, min_samples: int) -> np.ndarray:
        """Conformal quantiles `[bucket, V, 2]` of the residuals (NaN below `min_samples`)."""
        out = np.full((self.n_buckets, self.n_volumes, 2), np.nan)
        for b in range(self.n_buckets):
            out[b] = self._quantile(self.resid[:, self.bucket == b], level, min_samples)
        return out

    def pooled_quantile(self, level: float, min_samples: int) -> np.ndarray:
        """Conformal quantile `[V, 2]` of all the residuals, every horizon step pooled."""
        return self._quantile(self.resid, level, min_samples)

    def _quantile(self, resid: np.ndarray, level: float | np.ndarray, min_samples: int) -> np.ndarray:
        """`[V, 2]` conformal quantiles of `resid` `[..., V, 2]` at one level or one per volume."""
        flat = resid.reshape(-1, self.n_volumes, 2)
        r = flat[~np.isnan(flat[:, 0, 0])]  # a step's residuals are recorded for every volume at once
        if r.shape[0] < min_samples:
            return np.full((self.n_volumes, 2), np.nan)
        rank = np.broadcast_to(conformal_rank(r.shape[0], level), (self.n_volumes,))
        lo, hi = int(rank.min()), int(rank.max())
        r = np.partition(np.ascontiguousarray(np.moveaxis(r, 0, -1)), sorted({lo, hi}), axis=-1)  # [V, 2, n]: selection, not a full sort
        mid = np.sort(r[..., lo : hi + 1], axis=-1)  # the ranks between, in order
        return np.take_along_axis(mid, (rank - lo)[:, None, None], axis=-1)[..., 0].astype(np.float64)


@FORECASTERS.register("calibrated")
class Calibrated:
    """Any forecaster with its upper band calibrated per volume on its own recent errors (see module doc)."""

    def __init__(
        self,
        model: Forecaster | str = "seasonal_naive",
        *,
        coverage: float = 0.9,
        window_h: float = 168.0,
        every_h: float = 1.0,
        per_bucket: int = 8,
        min_samples: int = 20,
        label_level: float = 0.5,
        adapt: float = 0.05,
        model_params: dict | None = None,
        rule=None,
    ):
        where = "calibrated"
        require(0.0 < coverage < 1.0, "coverage", "must be in (0, 1)", coverage, where=where)
        require(0.0 < label_level < 1.0, "label_level", "must be in (0, 1)", label_level, where=where)
        every_h = positive("every_h", every_h, where=where)
        require(positive("window_h", window_h, where=where) >= every_h, "window_h", "must be at least every_h", window_h, where=where)
        require(is_number(adapt) and 0.0 <= adapt <= 1.0, "adapt", "must be in [0, 1]", adapt, where=where)
        for key, value in (("per_bucket", per_bucket), ("min_samples", min_samples)):
            require(is_number(value) and value >= 1, key, "must be >= 1", value, where=where)
        if isinstance(model, str):
            model = FORECASTERS.create(model, **(model_params or {}))
        require(
            not getattr(model, "needs_future", False), "model", "must not read the true future", getattr(model, "name", model), where=where
        )
        if rule is not None and getattr(model, "rule", None) is None and hasattr(model, "rule"):
            model.rule = rule
        self.model = model
        self.coverage, self.label_level = float(coverage), float(label_level)
        self.window_h, self.every_h = float(window_h), float(every_h)
        self.per_bucket, self.min_samples, self.adapt = int(per_bucket), int(min_samples), float(adapt)
        self.rule = rule if rule is not None else getattr(model, "rule", None)
        self.name = f"{getattr(model, 'name', type(model).__name__)}+cal"
        self._window: ResidualWindow | None = None
        self._q: np.ndarray | None = None  # [bucket, V, 2] upper offsets
        self._q_label: np.ndarray | None = None  # [V, 2] label offsets
        self._now: int | None = None  # clock step of the latest history seen
        self._level: np.ndarray | None = None  # [V] adapted level of each volume

    # -- protocol
    def fit(self, history: LoadHistory) -> None:
        """Fit the wrapped model; the residual window stays (the errors a refit must answer to)."""
        self.model.fit(history)

    def reset(self) -> None:
        if hasattr(self.model, "reset"):
            self.model.reset()

    def predict(self, history: LoadHistory, horizon_steps: int) -> Forecast:
        fc = self.model.predict(history, horizon_steps)
        if history.n_steps == 0:
            return fc
        self._observe(history, fc)
        mean = np.asarray(fc.mean, np.float64)
        upper, label_path = np.array(fc.upper, np.float64), mean
        if self._q is not None:
            q_up = np.transpose(self._q[np.minimum(horizon_bucket(horizon_steps), self._q.shape[0] - 1)], (1, 0, 2))  # [V, H, 2]
            upper = np.where(np.isnan(q_up), upper, mean + np.nan_to_num(q_up))
            if self._q_label is None:  # once per new calibration origin, when a forecast needs it
                self._q_label = self._window.pooled_quantile(self.label_level, self.min_samples)
            label_path = np.maximum(mean + np.nan_to_num(self._q_label)[:, None, :], 0.0)
        labels = label_forecast(history, label_path, self.rule)
        return make_forecast(history, mean, upper, quantile=self.coverage, model=self.name, labels=labels)

    # -- calibration
    def every_steps(self, step_s: float) -> int:
        return steps(self.every_h * 3600.0, step_s)

    def _observe(self, history: LoadHistory, fc: Forecast) -> None:
        """Process the calibration origins up to now that the window lacks, in time order."""
        v, h, step_s = fc.mean.shape[0], fc.horizon, history.step_s
        every = self.every_steps(step_s)
        slots = max(1, math.ceil(self.window_h * 3600.0 / (every * step_s)))
        w = self._window
        a0, now = first_step(history), first_step(history) + history.n_steps
        rewound = self._now is not None and now < self._now  # residuals of targets after `now` must go
        self._now = now
        if w is None or w.n_volumes != v or w.horizon < h or rewound:
            w = self._window = ResidualWindow(v, h, slots, self.per_bucket)
            self._q, self._level = None, np.full(v, self.coverage)
        last = now // every * every  # the latest calibration origin
        lo = max(a0 + 1, last - (slots - 1) * every)  # `slots` calibration origins up to it
        for origin in range(-(-lo // every) * every, last + 1, every):
            if w.has(origin):
                continue
            live = origin == now and fc.horizon == w.horizon
            mean = fc.mean if live else self.model.predict(upto(history, origin - a0), w.horizon).mean
            w.add(origin, np.asarray(mean))
            self._advance(history, origin - a0)
        if self._q is None:
            self._refresh()

    def _advance(self, history: LoadHistory, n: int) -> None:
        """At a new calibration origin (`n` rows observed): score, adapt the levels, refresh the band."""
        w = self._window
        miss, judged = w.score(history, n)
        if self.adapt > 0:
            seen = judged.sum(axis=1) > 0
            rate = miss.sum(axis=1) / np.maximum(judged.sum(axis=1), 1)
            self._level = np.where(seen, np.clip(self._level + self.adapt * (rate - (1.0 - self.coverage)), 0.5, 0.999), self._level)
        self._refresh()
        w.band[w.newest()] = self._q[w.bucket]  # the band served from this origin, judged later

    def _refresh(self) -> None:
        w = self._window
        self._q = w.quantiles(self._level, self.min_samples)
        self._q_label = None

"""The oracle: forecasts the true future (the bound no forecaster can beat).

Built from one of
- a `LoadSource` (read past the forecast origin and aggregated exactly as the simulator's
  `HistoryRecorder` does, so its error against the recorded history is exactly 0),
- a `LoadHistory` covering the whole run (sliced after the origin), or
- a callable `future(horizon_steps)` or `future(origin_t, horizon_steps)` returning a
  `[V, H, 2]` array (iops, mbps) or a `Forecast` (e.g. `DecisionContext.future`).
Its upper quantile equals its point forecast; labels come from the same classifier.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

import numpy as np

from forecasters.base import FORECASTERS, make_forecast, targets
from sim.history import HistoryRecorder
from sim.types import Forecast, LoadHistory
from workloads.base import LoadSource


@FORECASTERS.register("oracle")
class Oracle:
    name = "oracle"

    def __init__(self, future: Callable | LoadSource | LoadHistory | None = None, *, quantile: float = 0.9, rule=None):
        if future is None:
            raise ValueError("oracle needs the true future: a LoadSource, a full LoadHistory or a callable")
        self.future = future
        self.quantile = quantile
        self.rule = rule

    def fit(self, history: LoadHistory) -> None:  # nothing to learn
        return None

    def truth(self, history: LoadHistory, horizon_steps: int) -> np.ndarray:
        """The true `[V, H, 2]` load for the `horizon_steps` steps after `history.end_t`."""
        f = self.future
        if isinstance(f, LoadHistory):
            i = int(round((history.end_t - (f.times[0] if f.n_steps else 0.0)) / f.step_s))
            y = targets(f)[i : i + horizon_steps]
            if y.shape[0] < horizon_steps:  # past the end: hold the last value
                pad = np.repeat(y[-1:] if y.shape[0] else np.zeros((1, y.shape[1], 2)), horizon_steps - y.shape[0], axis=0)
                y = np.concatenate([y, pad])
            return np.transpose(y, (1, 0, 2))
        if isinstance(f, LoadSource) and hasattr(f, "block"):
            step_ticks = round(history.step_s / f.tick_s)
            start = int(round(history.end_t / f.tick_s))
            rec = HistoryRecorder(len(f.volumes), f.tick_s, step_ticks, horizon_steps, [v.kind for v in f.volumes], 0.0)
            n = horizon_steps * step_ticks
            rec.add_ticks(f.block(start, n), 0, n)
            return np.transpose(targets(rec.history()), (1, 0, 2))
        if callable(f):
            n_args = len([p for p in inspect.signature(f).parameters.values() if p.default is inspect.Parameter.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)])
            out = f(history.end_t, horizon_steps) if n_args >= 2 else f(horizon_steps)
            if isinstance(out, Forecast):
                out = out.mean
            return np.asarray(out, np.float64)[:, :horizon_steps]
        raise TypeError(f"oracle: cannot read the future from {type(f).__name__}")

    def predict(self, history: LoadHistory, horizon_steps: int) -> Forecast:
        y = self.truth(history, horizon_steps)
        return make_forecast(history, y, y, quantile=self.quantile, model=self.name, rule=self.rule)

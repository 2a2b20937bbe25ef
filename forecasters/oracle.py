"""The oracle: forecasts the true future (the bound no forecaster can beat).

The environment that runs it hands it the future (`needs_future = True` on the class
says so), as one of
- a `LoadHistory` covering the whole run (sliced after the forecast origin), or
- a callable `future(horizon_steps)` or `future(origin_t, horizon_steps)` returning a
  `[V, H, 2]` array (iops, mbps) or a `Forecast`.
Reading a load source past the origin and aggregating it exactly as the simulator's
recorder does (so the oracle's error against the recorded history is exactly 0) is
the environment's part: it passes that reading as the callable, so the oracle needs
nothing of the simulator beyond its published types.
Its upper quantile equals its point forecast; labels come from the same classifier.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

import numpy as np

from common.checks import fail
from forecasters.base import FORECASTERS, make_forecast
from forecasters.series import targets
from sim.types import Forecast, LoadHistory

_FUTURE = "a LoadHistory or a callable future(origin_t, horizon_steps)"


@FORECASTERS.register("oracle")
class Oracle:
    name = "oracle"
    #: the environment must hand this forecaster the true future (`future=`)
    needs_future = True

    def __init__(self, future: Callable | LoadHistory | None = None, *, quantile: float = 0.9, rule=None):
        if future is None:
            fail("future", f"the true future is needed: {_FUTURE}", where="oracle")
        if not isinstance(future, LoadHistory) and not callable(future):
            fail(
                "future",
                f"{_FUTURE} (the environment reads a load source into one)",
                type(future).__name__,
                where="oracle",
                error=TypeError,
            )
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
        n_args = len(
            [
                p
                for p in inspect.signature(f).parameters.values()
                if p.default is inspect.Parameter.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
            ]
        )
        out = f(history.end_t, horizon_steps) if n_args >= 2 else f(horizon_steps)
        if isinstance(out, Forecast):
            out = out.mean
        return np.asarray(out, np.float64)[:, :horizon_steps]

    def predict(self, history: LoadHistory, horizon_steps: int) -> Forecast:
        y = self.truth(history, horizon_steps)
        return make_forecast(history, y, y, quantile=self.quantile, model=self.name, rule=self.rule)

"""The forecaster protocol, its registry, and how a forecast is packaged.

A forecaster is fitted on a `LoadHistory` (possibly again: retraining) and predicts
from the end of a (possibly newer) history without refitting, which is why `predict`
takes the history too: conditioning on the latest observations must be cheap, fitting
may not be. It never sees data past `history.end_t`. A forecaster class that must be
handed the true future (the oracle) says so with `needs_future = True`.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from common.registry import Registry
from forecasters.classify import BurstRule, label_forecast
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


def make_forecast(
    history: LoadHistory,
    mean: np.ndarray,
    upper: np.ndarray,
    *,
    quantile: float,
    model: str,
    rule: BurstRule | None = None,
    labels: np.ndarray | None = None,
) -> Forecast:
    """Package `[V, H, 2]` point and upper forecasts (clipped at 0) with burst/sustained labels."""
    mean = np.maximum(np.asarray(mean, np.float64), 0.0)
    upper = np.maximum(np.asarray(upper, np.float64), mean)
    if labels is None:
        labels = label_forecast(history, mean, rule)
    return Forecast(origin_t=history.end_t, step_s=history.step_s, mean=mean, upper=upper, labels=labels, quantile=quantile, model=model)

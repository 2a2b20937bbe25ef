"""The forecaster protocol and its registry.

A forecaster is fitted on a `LoadHistory` (possibly again: retraining) and predicts
from the end of a (possibly newer) history without refitting, which is why `predict`
takes the history too: conditioning on the latest observations must be cheap, fitting
may not be. It never sees data past `history.end_t`.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from sim.registry import Registry
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


FORECASTERS: Registry[Forecaster] = Registry("forecaster")

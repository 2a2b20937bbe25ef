"""Forecasters: the protocol, the registry and every model (importing registers them).

`FORECASTERS.create(name, **params)` builds one by name, as experiment configs do.
"""

from forecasters import classify, lstm, naive, oracle, seasonal, stats  # noqa: F401  (registration)
from forecasters.base import FORECASTERS, Forecaster, PointForecaster
from forecasters.classify import BurstRule, label_forecast, label_series, precision_recall
from forecasters.service import ForecastService, RetrainPolicy

__all__ = [
    "FORECASTERS",
    "BurstRule",
    "ForecastService",
    "Forecaster",
    "PointForecaster",
    "RetrainPolicy",
    "label_forecast",
    "label_series",
    "precision_recall",
]

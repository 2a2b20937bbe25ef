"""Forecasters: the protocol, the registry and every model.

`FORECASTERS.create(name, **params)` builds one by name, as experiment configs do.
Importing the package registers the light models and records the heavy ones (the LSTM
needs torch, the statistical models statsforecast) as lazy entries: their module is
imported when the name is first used, so listing the names loads neither library.
"""

from forecasters.base import FORECASTERS, Forecaster

FORECASTERS.register_lazy("lstm", "forecasters.lstm:LSTMForecaster")
FORECASTERS.register_lazy("ets", "forecasters.stats:ETS")
FORECASTERS.register_lazy("arima", "forecasters.stats:ARIMA")
FORECASTERS.register_lazy("mstl", "forecasters.stats:MSTLForecaster")

from forecasters import calibration, naive, oracle, seasonal  # noqa: E402, F401  (registration)
from forecasters.calibration import Calibrated  # noqa: E402
from forecasters.classify import BurstRule, label_forecast, label_series, precision_recall  # noqa: E402
from forecasters.point import PointForecaster  # noqa: E402
from forecasters.service import ForecastService, RetrainPolicy  # noqa: E402

__all__ = [
    "FORECASTERS",
    "BurstRule",
    "Calibrated",
    "ForecastService",
    "Forecaster",
    "PointForecaster",
    "RetrainPolicy",
    "label_forecast",
    "label_series",
    "precision_recall",
]

"""`oracle`: the predictive policy fed the true future — the bound no forecaster can beat.

The logic is exactly `predictive`'s (same parameters, same defaults); only its input
differs: the experiment runner pairs policy "oracle" with the `oracle` forecaster, whose
forecasts are the load that will actually happen (its upper quantile equals its mean).
Run without a forecaster it behaves like `predictive` on observed load, and says so.
"""

from __future__ import annotations

from schedulers.base import SCHEDULERS
from schedulers.predictive import PredictiveScheduler

#: the forecaster the runner pairs with this policy when the config names none
FORECASTER = "oracle"


@SCHEDULERS.register("oracle")
class OracleScheduler(PredictiveScheduler):
    name = "oracle"
    forecaster = FORECASTER

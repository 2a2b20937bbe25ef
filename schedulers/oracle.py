"""`oracle`: the predictive policy fed the true future — the bound no forecaster can beat.

The logic is exactly `predictive`'s (same parameters, same defaults); only its input
differs: the environment pairs policy "oracle" with the `oracle` forecaster
(`default_forecaster`), whose forecasts are the load that will actually happen (its upper
quantile equals its mean). Run without a forecaster it behaves like `predictive` on
observed load, and says so.
"""

from __future__ import annotations

from schedulers.base import SCHEDULERS
from schedulers.predictive import PredictiveScheduler


@SCHEDULERS.register("oracle")
class OracleScheduler(PredictiveScheduler):
    name = "oracle"
    uses_forecasts = True
    default_forecaster = "oracle"

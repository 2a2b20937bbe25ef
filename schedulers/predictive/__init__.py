"""`predictive`: the PIOP scheduler — when, how hard, what and where, from load forecasts.

- **how hard**: in forecast step h a backup may read at `rate_for_impact(upper[h],
  impact_target x threshold)` MB/s — the upper (e.g. p90) forecast, not the mean, so the
  predicted impact stays under the acceptable-impact threshold when load comes in high;
  also capped by the tier's ingest share and the run's device headroom (`backup_max_util`).
- **when** (`windows`): for every candidate start the job of the estimated size runs step
  by step at those rates; its cost is the production I/O it slows times the impact it
  adds. With `lookahead` (default) the plan is the cheapest *sequence* of backups over the
  horizon, and a volume starts now only when that sequence begins now; so backups get
  more frequent before and in quiet periods and are deferred through predicted sustained
  load. Without it a greedy rule takes the latest window near the cheapest cost per GB.
- **safety**: when no candidate is feasible the RPO wins: start now at the least harmful
  constant rate that still completes in time; when that rate is above what the threshold
  allows the start is recorded as forced (`Start(..., forced=True)`). An empty backup
  (nothing changed) is never forced: it renews the restore point at the latest moment.
- **running jobs** (`control`): re-throttled at every forecast step, paused through
  predicted bursts when the slack allows, resumed after; with `nowcast`, re-throttled at
  the tick observed load passes the forecast.
- **what** (`kinds`): incremental by default; differential or full when the RTO estimate
  or the differential's size asks for it, or a full every `full_every_h` hours.
- **where** (`placement`): tiers scored by cost, priority, contention, RTO pressure and
  urgency; never a queue that would hold the job past its slack.
- **RPO first** (`fleet`): every round places every volume's next restore point on the
  tiers' slots and ingest earliest-deadline-first (`schedulers.feasibility`): the most
  urgent volumes take the free slots; fulls due by the calendar and other work the RPO
  does not need start only where the schedule keeps every deadline; when no schedule can,
  the reasons and `summary()["saturation"]` say who misses, by how much and what capacity
  would suffice.

Without a forecast (early in a run, or no forecaster configured) it plans on a flat
forecast of the recently observed load (an EWMA) and says so in its reasons (`reasons`).
Every action's reason names the forecast facts it used. Parameters: `params`.
"""

from schedulers.predictive.params import PredictiveParams
from schedulers.predictive.scheduler import PredictiveScheduler

__all__ = ["PredictiveParams", "PredictiveScheduler"]

"""A `LoadHistory` as forecasting arrays: step counts, seasons, targets, horizon buckets.

Every model and the burst classifier count in history steps and read the two targets
(IOPS, MB/s) the same way; this module is that one way.
"""

from __future__ import annotations

import numpy as np

from common.checks import fail
from common.units import DAY_S, WEEK_S
from sim.types import LoadHistory

TARGETS: tuple[str, str] = ("iops", "mbps")


def steps(seconds: float, step_s: float) -> int:
    """Whole history steps in `seconds` (at least 1)."""
    return max(1, int(round(seconds / step_s)))


def season_steps(season: str | float | int, step_s: float) -> int:
    """Season length in steps: "daily", "weekly" or a number of seconds."""
    if isinstance(season, str):
        key = season.lower()
        if key not in ("daily", "weekly"):
            fail("season", "'daily', 'weekly' or seconds", season)
        return steps(DAY_S if key == "daily" else WEEK_S, step_s)
    return steps(float(season), step_s)


def targets(history: LoadHistory) -> np.ndarray:
    """The two forecast targets as one `[n_steps, n_volumes, 2]` float64 array (iops, mbps)."""
    return np.stack([np.asarray(history.iops, np.float64), np.asarray(history.mbps, np.float64)], axis=-1)


def seasonal_indices(n_steps: int, horizon: int, season: int) -> np.ndarray:
    """Row of the history that seasonal naive repeats for each of steps 1..horizon after the end.

    Target step h (1-based) sits at row `n_steps + h - 1`; its seasonal-naive value is the
    row `season * ceil(h / season)` earlier (the last observed same phase). Rows may be
    negative when the history is shorter than the season; callers check.
    """
    h = np.arange(1, horizon + 1)
    return n_steps + h - 1 - season * np.ceil(h / season).astype(np.int64)


def horizon_bucket(horizon: int) -> np.ndarray:
    """Geometric horizon buckets (1, 2-3, 4-7, 8-15, ...) for steps 1..horizon."""
    return np.floor(np.log2(np.arange(1, horizon + 1))).astype(np.int64)

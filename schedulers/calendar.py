"""Cron-like calendar arithmetic shared by the scheduled policies."""

from __future__ import annotations

import numpy as np

from common.units import MONDAY0_S

#: Monday 1970-01-05 00:00 UTC: weekly periods are aligned to Monday midnight
WEEK_ANCHOR = MONDAY0_S


def next_occurrence(t_cal: float, period_s: np.ndarray, at_s: np.ndarray) -> np.ndarray:
    """First calendar time >= `t_cal` that is `at_s` past a period boundary (per volume)."""
    phase = (t_cal - WEEK_ANCHOR - at_s) % period_s
    return np.where(phase == 0, t_cal, t_cal + period_s - phase)

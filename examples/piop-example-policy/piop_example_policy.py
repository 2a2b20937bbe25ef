"""`every_n_hours`: an example third-party backup policy for piop.

An incremental every `every_h` hours per volume (counted from its newest restore
point) on the preferred tier, and a full instead when the volume has none or its last
full is older than `full_every_h`. It ignores load; it is here to show what a policy
needs: subclass `BaseScheduler`, implement `decide`, optionally `reset` and `summary`,
and name the class under the `piop.schedulers` entry-point group (see pyproject.toml).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from schedulers.base import BaseScheduler, tier_index
from sim.types import Action, BackupKind, DecisionContext, JobState, Start

HOUR_S = 3600.0


class EveryNHours(BaseScheduler):
    name = "every_n_hours"
    uses_forecasts = False  # decides from restore-point ages only: no forecaster needed

    def __init__(
        self,
        *,
        every_h: float = 4.0,
        full_every_h: float = 168.0,
        tier: str | None = None,
        full_tier: str | None = None,
        rate_mbps: float | None = None,
    ):
        # parameters come from the config's `params:`; a wrong one is a TypeError piop reports in one line
        if not (every_h > 0 and full_every_h > 0) or (rate_mbps is not None and not rate_mbps > 0):
            raise TypeError("every_n_hours: every_h, full_every_h and rate_mbps must be > 0")
        self.every_s = every_h * HOUR_S
        self.full_every_s = full_every_h * HOUR_S
        self.tier, self.full_tier, self.rate_mbps = tier, full_tier, rate_mbps
        self.reset()

    def reset(self) -> None:
        """Forget the counters: piop calls this before every run."""
        self.started = {"full": 0, "incremental": 0}

    def decide(self, ctx: DecisionContext) -> list[Action]:
        idle = ctx.job_state == int(JobState.NONE)
        full_age = ctx.t - ctx.last_full_t  # inf when the volume has no full
        needs_full = full_age >= self.full_every_s
        due = idle & (needs_full | (ctx.rp_age_s >= self.every_s))
        if not due.any():
            return []
        tier = tier_index(ctx, self.tier)
        full_tier = tier_index(ctx, self.full_tier) if self.full_tier else tier
        actions: list[Action] = []
        for v in np.flatnonzero(due).tolist():
            if needs_full[v]:
                why = "no full yet" if not np.isfinite(full_age[v]) else f"last full {full_age[v] / HOUR_S:.0f} h old"
                actions.append(Start(v, BackupKind.FULL, full_tier, self.rate_mbps, reason=f"every_n_hours: full, {why}"))
                self.started["full"] += 1
            else:
                why = f"restore point {ctx.rp_age_s[v] / HOUR_S:.1f} h old"
                actions.append(Start(v, BackupKind.INCREMENTAL, tier, self.rate_mbps, reason=f"every_n_hours: incremental, {why}"))
                self.started["incremental"] += 1
        return actions

    def summary(self) -> dict[str, Any]:
        """Lands in the run's summary.json under `policy_summary`."""
        return {"started_full": self.started["full"], "started_incremental": self.started["incremental"]}

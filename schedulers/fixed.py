"""`fixed`: cron-like backups with no load awareness (the usual production default).

A full every `full_every_h` hours at `full_at_h` past the period boundary (weeks start
Monday 00:00 UTC; the default is Sunday 01:00), and an incremental every
`incremental_every_h` hours (default: half of each volume's RPO) at `incremental_at_h`.
A backup that is due while the volume's previous job still runs is skipped.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from common.units import HOUR_S
from schedulers.base import SCHEDULERS, BaseScheduler, tier_index
from schedulers.calendar import next_occurrence
from sim.types import Action, BackupKind, DecisionContext, JobState, Start

_NONE = int(JobState.NONE)
_EMPTY = np.zeros(0, np.int64)


@dataclass
class FixedParams:
    full_every_h: float = 168.0
    full_at_h: float = 145.0
    incremental_every_h: float | None = None
    incremental_at_h: float = 0.0
    stagger_s: float = 0.0  # spread volume i's times by i * stagger_s
    tier: str | None = None  # None: the preferred tier (lowest priority number)
    full_tier: str | None = None
    rate_mbps: float | None = None


class Schedule:
    """When each volume's next full and incremental are due (calendar seconds)."""

    def __init__(self, p: FixedParams):
        self.p = p
        self.next_full: np.ndarray | None = None
        self.next_incr: np.ndarray | None = None
        self.skipped = 0  # backups due while the volume's previous job still ran

    def _init(self, ctx: DecisionContext) -> None:
        n = ctx.volumes.n
        t_cal = ctx.start_epoch + ctx.t
        stagger = np.arange(n) * self.p.stagger_s
        self.full_period = np.full(n, self.p.full_every_h * HOUR_S)
        incr = ctx.volumes.rpo_s / 2 if self.p.incremental_every_h is None else np.full(n, self.p.incremental_every_h * HOUR_S)
        self.incr_period = np.maximum(incr, ctx.tick_s)
        self.next_full = next_occurrence(t_cal, self.full_period, self.p.full_at_h * HOUR_S + stagger)
        self.next_incr = next_occurrence(t_cal, self.incr_period, self.p.incremental_at_h * HOUR_S + stagger)
        self.earliest = min(self.next_full.min(), self.next_incr.min())

    def due(self, ctx: DecisionContext) -> tuple[np.ndarray, np.ndarray]:
        """Volumes whose full / incremental came due by now; advances their next times."""
        if self.next_full is None:
            self._init(ctx)
        t_cal = ctx.start_epoch + ctx.t
        if t_cal < self.earliest:  # nothing due: the common case, kept cheap
            return _EMPTY, _EMPTY
        full = np.flatnonzero(self.next_full <= t_cal)
        incr = np.flatnonzero(self.next_incr <= t_cal)
        if full.size:
            self.next_full[full] += self.full_period[full] * np.ceil((t_cal - self.next_full[full] + 1e-9) / self.full_period[full])
        if incr.size:
            self.next_incr[incr] += self.incr_period[incr] * np.ceil((t_cal - self.next_incr[incr] + 1e-9) / self.incr_period[incr])
            incr = np.setdiff1d(incr, full, assume_unique=True)
        self.earliest = min(self.next_full.min(), self.next_incr.min())
        return full, incr


@SCHEDULERS.register("fixed")
class FixedScheduler(BaseScheduler):
    name = "fixed"
    uses_forecasts = False

    def __init__(self, **params):
        self.params = FixedParams(**params)
        self.reset()

    def reset(self) -> None:
        self.schedule = Schedule(self.params)
        self.started = 0

    def summary(self) -> dict[str, int]:
        return {"starts": self.started, "skipped_busy": self.schedule.skipped}

    def decide(self, ctx: DecisionContext) -> list[Action]:
        full, incr = self.schedule.due(ctx)
        if not (full.size or incr.size):
            return []
        p = self.params
        tier = tier_index(ctx, p.tier)
        full_tier = tier_index(ctx, p.full_tier) if p.full_tier else tier
        actions: list[Action] = []
        for kind, vols, t in ((BackupKind.FULL, full, full_tier), (BackupKind.INCREMENTAL, incr, tier)):
            for v in vols.tolist():
                if ctx.job_state[v] != _NONE:
                    self.schedule.skipped += 1
                    continue
                actions.append(Start(v, kind, t, p.rate_mbps, reason=f"scheduled {kind.name.lower()}"))
        self.started += len(actions)
        return actions

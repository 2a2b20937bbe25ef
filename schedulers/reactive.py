"""`reactive`: scheduled like `fixed`, but reacts to *observed* load, as enterprise
backup I/O control does.

- A due backup is deferred while the volume's observed production latency is above
  `defer_latency_ratio` x its idle latency, for at most `max_defer_h` (then it starts).
- A running job whose observed impact exceeds `throttle_impact` (default: the run's
  impact threshold) has its rate cut by `backoff` (down to `min_rate_mbps`); still
  above `pause_impact` (default 3 x the threshold) at the minimum rate it is paused,
  and resumed (at its last rate) once production latency falls below
  `resume_latency_ratio` x idle, after at least `min_pause_s`. Below half the
  threshold a throttled job speeds up by `ramp` (AIMD-like).
It only ever sees the past: the interference has already happened when it reacts.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from common.units import HOUR_S
from schedulers.base import SCHEDULERS, BaseScheduler, tier_index
from schedulers.fixed import FixedParams, Schedule
from sim.types import Action, BackupKind, DecisionContext, JobState, Pause, Resume, Start, Throttle, utilisation

#: what `summary()` counts
COUNTERS = ("starts", "starts_deferral_limit", "throttle_downs", "ramp_ups", "pauses", "resumes")


@dataclass
class ReactiveParams(FixedParams):
    defer_latency_ratio: float = 2.0
    max_defer_h: float = 2.0
    throttle_impact: float | None = None
    pause_impact: float | None = None
    resume_latency_ratio: float = 1.5
    min_pause_s: float = 60.0
    backoff: float = 0.5
    ramp: float = 1.25
    min_rate_mbps: float = 5.0


@SCHEDULERS.register("reactive")
class ReactiveScheduler(BaseScheduler):
    name = "reactive"
    uses_forecasts = False

    def __init__(self, **params):
        self.params = ReactiveParams(**params)
        self.reset()

    def reset(self) -> None:
        self.schedule = Schedule(FixedParams(**{f.name: getattr(self.params, f.name) for f in fields(FixedParams)}))
        self.pending_kind: np.ndarray | None = None  # -1 or the BackupKind waiting to start
        self.pending_since: np.ndarray | None = None
        self.paused_at: np.ndarray | None = None
        self.counts = dict.fromkeys(COUNTERS, 0)

    def summary(self) -> dict[str, int]:
        return dict(self.counts)

    def decide(self, ctx: DecisionContext) -> list[Action]:
        n = ctx.volumes.n
        if self.pending_kind is None:
            self.pending_kind = np.full(n, -1, np.int8)
            self.pending_since = np.zeros(n)
            self.paused_at = np.zeros(n)
        full, incr = self.schedule.due(ctx)
        for kind, vols in ((BackupKind.FULL, full), (BackupKind.INCREMENTAL, incr)):
            if vols.size:
                keep = self.pending_kind[vols] != BackupKind.FULL  # a pending full is not downgraded
                vols = vols[keep]
                fresh = self.pending_kind[vols] < 0
                self.pending_since[vols[fresh]] = ctx.t
                self.pending_kind[vols] = kind
        actions: list[Action] = []
        latency_ratio = None
        waiting = np.flatnonzero((self.pending_kind >= 0) & (ctx.job_state == JobState.NONE))
        if waiting.size:
            latency_ratio = self._latency_ratio(ctx)
            actions += self._start(ctx, waiting, latency_ratio)
        actions += self._control(ctx, latency_ratio)
        return actions

    def _start(self, ctx: DecisionContext, waiting: np.ndarray, latency_ratio: np.ndarray) -> list[Action]:
        """Start the waiting backups whose volume's load is acceptable, or that waited long enough."""
        p = self.params
        tier = tier_index(ctx, p.tier)
        full_tier = tier_index(ctx, p.full_tier) if p.full_tier else tier
        out: list[Action] = []
        for v in waiting.tolist():
            overdue = ctx.t - self.pending_since[v] >= p.max_defer_h * HOUR_S
            if latency_ratio[v] > p.defer_latency_ratio and not overdue:
                continue
            kind = BackupKind(int(self.pending_kind[v]))
            forced = overdue and latency_ratio[v] > p.defer_latency_ratio
            why = "scheduled, deferral limit reached" if forced else "scheduled, load acceptable"
            out.append(Start(v, kind, full_tier if kind == BackupKind.FULL else tier, p.rate_mbps, reason=why))
            self.pending_kind[v] = -1
            self.counts["starts"] += 1
            self.counts["starts_deferral_limit"] += int(forced)
        return out

    def _latency_ratio(self, ctx: DecisionContext) -> np.ndarray:
        u = utilisation(ctx.prod_iops, ctx.prod_mbps, ctx.volumes.max_iops, ctx.volumes.max_mbps)
        return 1.0 / (1.0 - u)

    def _control(self, ctx: DecisionContext, latency_ratio) -> list[Action]:
        p = self.params
        thr = ctx.impact_threshold if p.throttle_impact is None else p.throttle_impact
        pause_at = 3.0 * ctx.impact_threshold if p.pause_impact is None else p.pause_impact
        out: list[Action] = []
        running = np.flatnonzero(ctx.job_state == JobState.RUNNING)
        for v in running.tolist():
            imp = ctx.impact[v]
            rate = ctx.job_rate_mbps[v]
            if imp > pause_at and rate <= p.min_rate_mbps * 1.01:
                out.append(Pause(v, reason=f"observed impact {imp:.2f} > {pause_at:.2f} at the minimum rate"))
                self.paused_at[v] = ctx.t
                self.counts["pauses"] += 1
            elif imp > thr:
                new = max(p.min_rate_mbps, rate * p.backoff)
                out.append(Throttle(v, new, reason=f"observed impact {imp:.2f} > {thr:.2f}: {rate:.0f} -> {new:.0f} MB/s"))
                self.counts["throttle_downs"] += 1
            elif imp < thr / 2 and np.isfinite(ctx.job_throttle_mbps[v]) and rate >= 0.9 * ctx.job_throttle_mbps[v]:
                out.append(Throttle(v, ctx.job_throttle_mbps[v] * p.ramp, reason="observed impact low, ramping up"))
                self.counts["ramp_ups"] += 1
        paused = np.flatnonzero(ctx.job_state == JobState.PAUSED)
        if paused.size:
            if latency_ratio is None:
                latency_ratio = self._latency_ratio(ctx)
            for v in paused.tolist():
                if ctx.t - self.paused_at[v] >= p.min_pause_s and latency_ratio[v] < p.resume_latency_ratio:
                    out.append(Resume(v, reason=f"production latency {latency_ratio[v]:.2f}x idle"))
                    self.counts["resumes"] += 1
        return out

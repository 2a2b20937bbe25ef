"""Where to back up: each tier scored for one job.

Each tier is scored (lower is better) by storage cost, configured priority, slot
contention, RTO pressure (the predicted RTO estimate with the job's bytes on that tier
against the RTO) and, weighted by urgency (deadline slack), how much its ingest share
would slow the job: the fast tier when the deadline is close or the RTO tight, the cheap
tier otherwise. When tier contention means a backup must start early is the fleet's
earliest-deadline-first view (`fleet`).
"""

from __future__ import annotations

import numpy as np

from common.units import MB
from schedulers.base import tier_index
from schedulers.predictive import reasons
from schedulers.predictive.params import PredictiveParams
from schedulers.predictive.windows import Plan
from sim.types import BackupKind, DecisionContext, JobState

_NONE, _RUNNING, _PAUSED = int(JobState.NONE), int(JobState.RUNNING), int(JobState.PAUSED)
_FULL = int(BackupKind.FULL)


def _norm(x) -> np.ndarray:
    x = np.asarray(x, float)
    span = x.max() - x.min()
    return (x - x.min()) / span if span > 0 else np.zeros_like(x)


class TierLoad:
    """Jobs holding or waiting for each tier's slots, as this decision's starts add to them, and
    how long a new job would wait in each tier's queue (first come, first served)."""

    def __init__(self, ctx: DecisionContext, min_rate_mbps: float, full_slots_frac: float = 1.0):
        tiers = ctx.tiers
        self.busy = np.array([tv.busy + tv.queued for tv in tiers], float)
        self.slots = np.array([tv.slots for tv in tiers], float)
        self.occ = self.busy / self.slots
        self.free = self.slots - self.busy
        active = (ctx.job_state == _RUNNING) | (ctx.job_state == _PAUSED)
        thr = ctx.job_throttle_mbps
        rate = np.maximum(np.where(np.isfinite(thr), thr, ctx.job_rate_mbps), min_rate_mbps)
        ends = ctx.job_remaining_bytes / (rate * MB)
        #: per tier: seconds until each held slot frees, soonest first
        self.ahead = [np.sort(ends[active & (ctx.job_tier == tv.index)]) for tv in tiers]
        held = ctx.job_state != _NONE
        self.fulls = np.array([np.sum(held & (ctx.job_tier == tv.index) & (ctx.job_kind == _FULL)) for tv in tiers], float)
        self.full_cap = np.maximum(1.0, np.floor(full_slots_frac * self.slots))

    def wait_s(self) -> np.ndarray:
        """Seconds a job started now would wait for a slot of each tier (0: one is free)."""
        out = np.zeros(self.slots.size)
        for k in np.flatnonzero(self.free <= 0):
            ahead = int(-self.free[k])  # jobs queued before it
            a = self.ahead[k]
            out[k] = a[ahead] if ahead < a.size else (a[-1] if a.size else 0.0) + 3600.0 * (ahead - a.size + 1)
        return out

    def full_room(self) -> int:
        """How many more fulls the tiers take before each holds `full_slots_frac` of its slots in fulls."""
        return int(np.maximum(self.full_cap - self.fulls, 0.0).sum())

    def take(self, k: int, full: bool = False) -> None:
        self.busy[k] += 1
        self.occ[k] = self.busy[k] / self.slots[k]
        self.free[k] -= 1
        self.fulls[k] += float(full)


class TierTable:
    """The backup tiers' static facts, scored for one policy's weights."""

    def __init__(self, ctx: DecisionContext, p: PredictiveParams):
        tiers = ctx.tiers
        self.p = p
        self.names = [t.name for t in tiers]
        self.restore = np.array([t.restore_mbps for t in tiers], float)
        self.ingest = np.array([t.ingest_mbps for t in tiers], float)
        self.slow_in = 1.0 - _norm(self.ingest)
        #: cost and priority part of every tier's score
        self.base = p.w_cost * _norm([t.cost_per_gb_month for t in tiers]) + p.w_priority * _norm([t.priority for t in tiers])
        self.fixed = tier_index(ctx, p.tier) if p.tier else None
        #: restore rate of the tier most backups go to (RTO estimates before the tier is chosen)
        self.bulk_restore = float(self.restore[self.fixed if self.fixed is not None else int(np.argmin(self.base))])

    def start_share(self, load: TierLoad) -> float:
        """Ingest MB/s a job would get on the tier it most likely goes to (it shares with at most `slots` jobs)."""
        p = self.p
        k = self.fixed if self.fixed is not None else int(np.argmin(self.base + p.w_contention * load.busy / load.slots))
        return self.ingest[k] / (min(load.busy[k], load.slots[k] - 1) + 1.0)

    def pick(
        self,
        ctx: DecisionContext,
        plan: Plan,
        j: int,
        v: int,
        size: float,
        rto_after: float,
        load: TierLoad,
        kind: int,
        calendar_full: bool,
    ) -> tuple[int, str]:
        """The tier for planned job `j` (volume `v`, `size` bytes, `kind`) and why; takes a slot of it in `load`.

        A tier whose queue would hold the job past its slack is not a choice while another is
        (a job queued behind long ones keeps waiting while its restore point ages), and a full
        due only by the calendar goes where fulls hold under `full_slots_frac` of the slots."""
        p = self.p
        rpo = float(ctx.volumes.rpo_s[v])
        left = float(plan.deadline[j]) - ctx.t
        slack = left - p.margin(np.array(rpo)).item() - plan.dur_now[j] * p.duration_safety if np.isfinite(plan.dur_now[j]) else -np.inf
        urgency = float(np.clip(1.0 - slack / (p.urgent_slack_frac * rpo), 0.0, 1.0)) if np.isfinite(slack) else 1.0
        rto_s = float(ctx.volumes.rto_s[v])
        # predicted RTO estimate with this job's bytes on each tier
        base = rto_after - size / (self.bulk_restore * MB)
        rto_k = base + size / (self.restore * MB)
        pressure = np.clip((rto_k / rto_s - p.rto_tight_frac) / max(1e-9, 1.0 - p.rto_tight_frac), 0.0, 1.0)
        job_rate = max(plan.rate_now[j], plan.need_rate[j] if plan.forced[j] or plan.late[j] else 0.0, p.min_rate_mbps)
        share = self.ingest / (np.minimum(load.busy, load.slots - 1) + 1.0)
        short = np.clip(1.0 - share / job_rate, 0.0, 1.0)  # how much the tier's ingest share would slow this job
        wait = load.wait_s()
        ok = wait <= max(slack, 0.0) if np.isfinite(slack) else wait <= 0.0
        if not ok.any():
            ok = wait <= wait.min()
        if calendar_full and (load.fulls < load.full_cap).any():
            ok = (ok if (ok & (load.fulls < load.full_cap)).any() else np.ones_like(ok)) & (load.fulls < load.full_cap)
        k, why = self.choose(load, urgency, pressure, short, ok)
        load.take(k, kind == _FULL)
        return k, why

    def choose(
        self, load: TierLoad, urgency: float, rto_pressure: np.ndarray, short: np.ndarray, ok: np.ndarray | None = None
    ) -> tuple[int, str]:
        """Lowest score among the tiers `ok` wins: cost, priority, contention, and (urgent) ingest shortfall, RTO pressure."""
        if self.fixed is not None:
            return self.fixed, reasons.configured_tier(self.names[self.fixed])
        p = self.p
        occ, free = load.occ, load.free
        score = (
            self.base
            + p.w_contention * occ
            + p.full_slot_penalty * (free <= 0)
            + p.w_urgency * urgency * np.maximum(short, self.slow_in * (free <= 0))
            + p.w_rto * rto_pressure
        )
        if ok is not None:
            score = np.where(ok, score, np.inf)
        k = int(np.argmin(score))
        return k, reasons.chosen_tier(self.names[k], urgency, rto_pressure, k, free[k])

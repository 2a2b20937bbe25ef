"""Where to back up, and when tier contention means a backup must start early.

Each tier is scored (lower is better) by storage cost, configured priority, slot
contention, RTO pressure (the predicted RTO estimate with the job's bytes on that tier
against the RTO) and, weighted by urgency (deadline slack), how much its ingest share
would slow the job: the fast tier when the deadline is close or the RTO tight, the cheap
tier otherwise.
"""

from __future__ import annotations

import numpy as np

from common.units import MB
from schedulers.base import tier_index
from schedulers.predictive import reasons
from schedulers.predictive.params import PredictiveParams
from schedulers.predictive.windows import Plan
from sim.types import DecisionContext, JobState, TierView

_NONE, _QUEUED, _RUNNING, _PAUSED = (int(s) for s in (JobState.NONE, JobState.QUEUED, JobState.RUNNING, JobState.PAUSED))


def _norm(x) -> np.ndarray:
    x = np.asarray(x, float)
    span = x.max() - x.min()
    return (x - x.min()) / span if span > 0 else np.zeros_like(x)


class TierLoad:
    """Jobs holding or waiting for each tier's slots, as this decision's starts add to them."""

    def __init__(self, tiers: list[TierView]):
        self.busy = np.array([tv.busy + tv.queued for tv in tiers], float)
        self.slots = np.array([tv.slots for tv in tiers], float)
        self.occ = self.busy / self.slots
        self.free = self.slots - self.busy

    def take(self, k: int) -> None:
        self.busy[k] += 1
        self.occ[k] = self.busy[k] / self.slots[k]
        self.free[k] -= 1


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

    def pick(self, ctx: DecisionContext, plan: Plan, j: int, v: int, size: float, rto_after: float, load: TierLoad) -> tuple[int, str]:
        """The tier for planned job `j` (volume `v`, `size` bytes) and why; takes a slot of it in `load`."""
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
        k, why = self.choose(load, urgency, pressure, short)
        load.take(k)
        return k, why

    def choose(self, load: TierLoad, urgency: float, rto_pressure: np.ndarray, short: np.ndarray) -> tuple[int, str]:
        """Lowest score wins: cost, priority, contention, and (urgent) ingest shortfall, RTO pressure."""
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
        k = int(np.argmin(score))
        return k, reasons.chosen_tier(self.names[k], urgency, rto_pressure, k, free[k])


class Contention:
    """Predicted tier contention: which volumes must start now so every idle volume's
    backup still gets a tier slot before its latest feasible start.

    An earliest-deadline-first test over the whole fleet (fluid approximation): sorted by
    latest start L, a backup gets a slot once the backlog of queued and running jobs and
    the slot time of the backups before it have drained through all tiers' slots; that
    must happen by its L. Every volume up to the last one that would be late starts now
    (they queue in this order).
    """

    def __init__(self, n: int, slots_total: float):
        self.latest = np.full(n, np.inf)  # latest feasible start of each idle volume's next backup
        self.slot_s = np.zeros(n)  # and the slot time it needs
        self.slots_total = slots_total
        self.typical_slot_s = 0.0  # EWMA of the slot time of the jobs started

    def note_plan(self, vols: np.ndarray, plan: Plan) -> None:
        self.latest[vols] = plan.latest_t
        self.slot_s[vols] = plan.slot_s

    def note_started(self, slot_s: np.ndarray) -> None:
        self.typical_slot_s += min(1.0, slot_s.size / 20.0) * (float(np.mean(slot_s)) - self.typical_slot_s)

    def crowded(self, ctx: DecisionContext, vols: np.ndarray, min_rate_mbps: float) -> tuple[np.ndarray, str]:
        """(which of `vols` must start now, why)."""
        idle = np.flatnonzero(ctx.job_state == _NONE)
        out = np.zeros(vols.size, bool)
        if idle.size == 0:
            return out, ""
        t = ctx.t
        run = np.flatnonzero((ctx.job_state == _RUNNING) | (ctx.job_state == _PAUSED))
        thr = ctx.job_throttle_mbps[run]
        rate = np.maximum(np.where(np.isfinite(thr), np.maximum(thr, ctx.job_rate_mbps[run]), ctx.job_rate_mbps[run]), min_rate_mbps)
        backlog = float(np.minimum(ctx.job_remaining_bytes[run] / (rate * MB), 86_400.0).sum())
        backlog += int(np.sum(ctx.job_state == _QUEUED)) * self.typical_slot_s
        order = idle[np.argsort(self.latest[idle], kind="stable")]
        need = np.cumsum(self.slot_s[order]) - self.slot_s[order] + backlog  # work ahead of each
        avail = self.slots_total * np.maximum(self.latest[order] - t, 0.0)
        over = np.flatnonzero(need > avail)
        if over.size == 0:
            return out, ""
        k = int(over[-1])  # every volume up to the last prefix that does not fit
        crowded = np.zeros(ctx.volumes.n, bool)
        crowded[order[: k + 1]] = True
        why = reasons.contention(k + 1, self.latest[order[k]] - t, need[k], avail[k], self.slots_total)
        return crowded[vols], why

"""Can the tiers keep every volume within its RPO from here? Who misses, and when.

`schedulers.feasibility.edf` (the test the predictive policy and `piop run` use) on the
host's present: each volume's next backup is due at its restore point's age reaching
the RPO, moving what has changed since (the changed-file scan) and holding a slot for
that at the rate its source allows; later backups move what changes per RPO at the
rate observed since the last snapshot; a running job keeps its slot for its remaining
bytes. The volumes whose backups finish late in that earliest-deadline-first fluid
schedule are named with the time their RPO will be passed, and what capacity would do.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from common.units import MB
from schedulers.feasibility import MIN_SLOT_S, Jobs, Pool, edf, periodic_jobs
from sim.types import DecisionContext, JobState

_RUNNING, _PAUSED = int(JobState.RUNNING), int(JobState.PAUSED)


@dataclass
class Miss:
    volume: str
    at_epoch: float  # when its restore point will pass the RPO
    late_s: float  # by how much the fluid schedule misses


@dataclass
class Feasibility:
    feasible: bool
    misses: list[Miss]
    capacity: str
    horizon_s: float
    now: float = 0.0  # Unix seconds of the check

    def as_dict(self) -> dict:
        return {
            "feasible": self.feasible,
            "horizon_s": self.horizon_s,
            "misses": [{"volume": m.volume, "at": m.at_epoch, "late_s": round(m.late_s, 1)} for m in self.misses],
            "capacity": self.capacity,
        }

    def warning(self) -> str:
        """One line; empty when every RPO can be met."""
        if self.feasible:
            return ""
        who = ", ".join(
            f"{m.volume} {'at' if m.at_epoch > self.now else 'already, since'} "
            f"{time.strftime('%H:%M:%S', time.localtime(m.at_epoch))} (late by {m.late_s:.0f} s)"
            for m in self.misses
        )
        return f"warning: the backup tiers cannot meet every RPO: {len(self.misses)} volume(s) will miss: {who}; {self.capacity}"


def check(ctx: DecisionContext, dirty: np.ndarray, now_epoch: float) -> Feasibility:
    """The EDF verdict on `ctx` (its clock, restore points, jobs, tiers) with `dirty` bytes per volume."""
    vt = ctx.volumes
    pool = Pool.of(ctx.tiers)
    rpo = vt.rpo_s.astype(float)
    rate = np.minimum(vt.max_mbps * ctx.backup_max_util, pool.slot_mbps)
    age = ctx.t - ctx.last_snapshot_t
    has = np.isfinite(age) & (age > 0)
    growth = np.where(has, dirty / np.where(has, age, 1.0), 0.0)  # bytes changed per second
    due = np.where(np.isfinite(ctx.last_snapshot_t), ctx.last_snapshot_t + rpo - ctx.t, 0.0)
    holding = (ctx.job_state == _RUNNING) | (ctx.job_state == _PAUSED)  # jobs that hold a slot
    size = np.where(np.isfinite(ctx.last_snapshot_t), dirty, vt.used_bytes)
    now_jobs = Jobs(
        owner=np.arange(vt.n),
        deadline_s=due,
        bytes=np.where(holding, ctx.job_remaining_bytes, size),
        slot_s=np.where(holding, 0.0, np.maximum(size / (rate * MB), MIN_SLOT_S)),
    )
    horizon = 2.0 * float(rpo.max())
    later = periodic_jobs(growth * rpo, rpo, rate, horizon, first_deadline_s=np.maximum(due, 0.0) + rpo)
    busy = ctx.job_remaining_bytes[holding] / (rate[holding] * MB)
    v = edf(Jobs.concat([now_jobs, later]), pool, busy)
    first: dict[int, tuple[float, float]] = {}
    for j in np.flatnonzero(v.late_s > 1e-6).tolist():
        o = int(v.jobs.owner[j])
        d = float(v.jobs.deadline_s[j])
        if o not in first or d < first[o][0]:
            first[o] = (d, float(v.late_s[j]))
    misses = [Miss(vt.ids[o], now_epoch + d, late) for o, (d, late) in sorted(first.items(), key=lambda kv: kv[1][0])]
    return Feasibility(not misses, misses, v.capacity_text(), horizon, now_epoch)

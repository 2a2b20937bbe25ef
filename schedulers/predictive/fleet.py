"""RPO first: the fleet-level view of the backup infrastructure over the planning horizon.

At every planning round every volume's next restore point is placed on the tiers
earliest-deadline-first (`schedulers.feasibility.edf`: a fluid test over the pooled
slots and ingest). Each volume's next backup (the kind its RPO and RTO need: no full
that is only due by the calendar) must complete by its deadline (the RPO less the
margin), and its following backups within the horizon by theirs; running jobs hold
their slots until their remaining bytes have moved. From that schedule:

- **urgent**: every idle volume up to the last one EDF would finish late (at the rates
  the plan would use) starts now, in deadline order, as tier slots free up. A tier's
  queue is first come first served, so the policy keeps queues short and dispatches
  the most urgent itself (`allowance`).
- **admission**: work the RPO does not need now (a full due by `full_every_h`, an
  early or quiet-period backup) starts only when every job due keeps its deadline with
  it running (`FleetState.admits`); while the fleet is tight, fulls of volumes whose RTO
  holds are deferred and an RTO-driven full is split (a differential first).
- **saturation**: when even the fastest rates the sources allow miss a deadline, no
  schedule meets every RPO: who misses, by how much and what capacity would suffice
  (slots and ingest per tier) go into the start reasons and the policy's summary.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from common.units import DAY_S, HOUR_S, MB
from schedulers.feasibility import MIN_SLOT_S, Jobs, Pool, Verdict, edf, periodic_jobs, scaled_tiers
from schedulers.predictive import reasons
from schedulers.predictive.forecast import Frame
from schedulers.predictive.params import PredictiveParams
from sim.types import DecisionContext, JobState, rate_for_impact, rate_for_utilisation

_NONE, _QUEUED, _RUNNING, _PAUSED = (int(s) for s in (JobState.NONE, JobState.QUEUED, JobState.RUNNING, JobState.PAUSED))
#: lateness under this is rounding, not a miss (a decision period is 10 s)
_TOL_S = 60.0


@dataclass
class Demand:
    """Each volume's next backup and the bytes it changes per RPO period (arrays over all volumes)."""

    next_bytes: np.ndarray  # the next backup, grown to its deadline
    period_bytes: np.ndarray  # one RPO period of changes (the backups after it)


@dataclass
class FleetState:
    """One round's EDF view of the fleet."""

    t: float
    deadline: np.ndarray  # [n] absolute: the newest restore point's RPO less the margin
    urgent: np.ndarray  # [n] bool: idle volumes that must start now (deadline order)
    planned: Verdict  # at the rates the plan would use, due the margin before the RPO
    fastest: Verdict  # at the fastest rates the sources allow, due at the RPO
    tight: bool  # the planned schedule misses a deadline: no capacity for optional work
    saturated: bool  # even the fastest misses for want of tier capacity: no schedule meets every RPO
    urgent_why: str
    note: str  # who no schedule keeps within the RPO, and why, for reasons ('' when every RPO can be met)
    source_limited: np.ndarray = field(repr=False, default=None)  # type: ignore[assignment]  # volumes too slow alone

    def admits(self, slot_s: float, nbytes: float, rate_mbps: float) -> bool:
        """Whether optional work started now leaves every job due within its deadline; if so, it is accounted."""
        if self.tight or not np.isfinite(slot_s):
            return False
        if not self.planned.admits(slot_s, nbytes, rate_mbps):
            return False
        self.planned.take(slot_s, nbytes, rate_mbps)
        return True


class SaturationLog:
    """What the summary reports about saturation, over the run."""

    def __init__(self, ids: list[str], pool: Pool):
        self.ids = ids
        self.pool = pool
        self.reset()

    def reset(self) -> None:
        self.rounds = 0
        self.tight_rounds = 0
        self.first_t: float | None = None
        self.last_t: float | None = None
        self.worst: dict[int, float] = {}  # volume -> worst predicted lateness (s)
        self.source: set[int] = set()  # volumes whose next backup misses even alone, at their source's fastest rate
        self.onset = (0.0, 0.0)  # (slots, MB/s) that would have sufficed when saturation began
        self.peak = (0.0, 0.0)  # the most any round asked for (a backlog to clear included)
        #: starts the RPO needed now; rounds an urgent volume waited for a slot; early fulls or differentials
        #: the schedule had no room for; starts taken instead of a calendar full (deferred) or of an RTO-driven
        #: full or differential (a smaller kind while the RTO holds)
        self.counts = dict.fromkeys(
            ("urgent_starts", "held_for_slots", "optional_refused", "fulls_deferred", "fulls_overdue", "kinds_split"), 0
        )

    def note(self, st: FleetState) -> None:
        self.tight_rounds += int(st.tight)
        v = st.fastest
        for k, s in v.misses(_TOL_S).items():
            self.worst[k] = max(self.worst.get(k, 0.0), s)
        self.source.update(int(x) for x in st.source_limited)
        if not st.saturated:
            return
        if self.first_t is None:
            self.first_t = st.t
            self.onset = (v.need_slots, v.need_mbps)
        self.rounds += 1
        self.last_t = st.t
        self.peak = (max(self.peak[0], v.need_slots), max(self.peak[1], v.need_mbps))

    def _tiers(self, need: tuple[float, float]) -> dict[str, Any]:
        return {"slots": round(need[0], 2), "ingest_mbps": round(need[1], 1), "tiers": scaled_tiers(self.pool, *need)}

    def summary(self, top: int = 20) -> dict[str, Any]:
        """Counters; when saturated, who misses (worst predicted lateness, hours; `source_limited`:
        those whose own source is too slow, which no tier capacity helps) and what would suffice:
        `needs` when saturation began (every tier scaled alike), `needs_peak` the most any round
        asked for (with the backlog the shortage had built up by then)."""
        worst = sorted(self.worst.items(), key=lambda kv: -kv[1])
        out: dict[str, Any] = {
            "saturated": self.rounds > 0,
            "saturated_rounds": self.rounds,
            "tight_rounds": self.tight_rounds,
            "first_h": None if self.first_t is None else round(self.first_t / HOUR_S, 3),
            "last_h": None if self.last_t is None else round(self.last_t / HOUR_S, 3),
            "volumes_missing": len(worst),
            "misses_h": {self.ids[v]: round(s / HOUR_S, 3) for v, s in worst[:top]},
            "source_limited": sorted(self.ids[v] for v in self.source)[:top],
            **self.counts,
        }
        if self.rounds:
            out["needs"] = self._tiers(self.onset)
            out["needs_peak"] = self._tiers(self.peak)
        return out


class FleetEDF:
    """The fleet-level EDF view the predictive policy plans its starts with."""

    def __init__(self, ctx: DecisionContext, p: PredictiveParams):
        self.p = p
        tiers = ctx.tiers if p.tier is None else [t for t in ctx.tiers if t.name == p.tier]
        self.tiers = [t.index for t in tiers]
        self.pool = Pool.of(tiers)
        n = ctx.volumes.n
        self.started_t = np.full(n, -np.inf)  # when each volume's newest job was started
        self.log = SaturationLog(list(ctx.volumes.ids), self.pool)

    def allowance(self, ctx: DecisionContext) -> int:
        """How many starts the tiers take now: free slots, and `queue_per_tier` queued on each."""
        q = self.p.queue_per_tier
        return int(sum(max(0, ctx.tiers[k].slots + q - ctx.tiers[k].busy - ctx.tiers[k].queued) for k in self.tiers))

    def _rates(self, fr: Frame, nbytes: np.ndarray, left_s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(the rate each volume's next job would run at as planned, the fastest it can, the fastest its
        source allows), MB/s: a job on a busy pool gets at most a slot's share of the ingest."""
        p, ctx, fc = self.p, fr.ctx, fr.fc
        allv = np.arange(ctx.volumes.n)
        up = np.nan_to_num(fr.upper_now(allv))
        mu = np.nan_to_num(np.asarray(fc.mean)[:, fr.i0])
        r_thr = rate_for_impact(up[:, 0], up[:, 1], fr.max_iops, fr.max_mbps, fr.threshold)
        r_max = np.maximum(rate_for_utilisation(mu[:, 0], mu[:, 1], fr.max_iops, fr.max_mbps, ctx.backup_max_util), p.min_rate_mbps)
        need = nbytes * p.duration_safety / MB / np.maximum(left_s, 60.0)
        cap = self.pool.slot_mbps
        planned = np.minimum(np.minimum(np.maximum(np.maximum(r_thr, need), p.min_rate_mbps), r_max), cap)
        return planned, np.minimum(r_max, cap), r_max

    def assess(self, fr: Frame, demand: Demand) -> FleetState:
        """The EDF view of the fleet now (both verdicts), and which idle volumes must start."""
        p, ctx, t = self.p, fr.ctx, fr.ctx.t
        rpo = ctx.volumes.rpo_s
        margin = p.margin(rpo)
        deadline = ctx.last_snapshot_t + rpo - margin
        d = np.where(np.isfinite(deadline), deadline - t, 0.0)  # overdue: < 0; no restore point yet: due now
        horizon = max(float(fr.fc.origin_t + fr.h * fr.fc.step_s - t), float(fr.fc.step_s))
        state = ctx.job_state
        active = np.flatnonzero((state == _RUNNING) | (state == _PAUSED))
        waiting = np.flatnonzero(state != _RUNNING)
        waiting = waiting[(state[waiting] != _PAUSED) & (d[waiting] <= horizon)]
        rate_plan, rate_fast, rate_src = self._rates(fr, demand.next_bytes, d)
        # running jobs: their slots are busy until their remaining bytes have moved
        thr = ctx.job_throttle_mbps[active]
        now_rate = np.where(
            np.isfinite(thr), np.maximum(thr, ctx.job_rate_mbps[active]), np.maximum(ctx.job_rate_mbps[active], rate_plan[active])
        )
        remaining = ctx.job_remaining_bytes[active]
        busy_s = np.minimum(remaining / (np.maximum(now_rate, p.min_rate_mbps) * MB), DAY_S)
        held = Jobs(active, d[active], remaining, np.zeros(active.size))
        # the backups after each volume's next (or running) one, one per RPO period
        period = np.maximum(rpo - margin, HOUR_S / 6)
        started = np.where(np.isfinite(self.started_t), self.started_t, t)  # (a job this policy did not start: now)
        is_active = np.zeros(rpo.size, bool)
        is_active[active] = True
        first_next = np.where(is_active, started + rpo - margin - t, d + period)
        rest = [periodic_jobs(demand.period_bytes, period, r, horizon, np.maximum(first_next, 0.0)) for r in (rate_plan, rate_fast)]
        verdicts = []
        for k, rate in enumerate((rate_plan, rate_fast)):
            slot = np.maximum(demand.next_bytes[waiting] / (rate[waiting] * MB), MIN_SLOT_S)
            nxt = Jobs(waiting, d[waiting], demand.next_bytes[waiting], slot)
            later = rest[k]
            jobs = Jobs.concat([held, nxt, later])
            if k == 1:  # whether any schedule meets the RPO itself (the margin is the plan's own)
                jobs.deadline_s = jobs.deadline_s + margin[jobs.owner]
            verdicts.append(edf(jobs, self.pool, busy_s))
        planned, fastest = verdicts
        over_p = _over(planned)
        urgent = np.zeros(rpo.size, bool)
        why = ""
        if over_p.any():
            k = int(np.flatnonzero(over_p)[-1])
            first = planned.order[: k + 1]
            nxt_jobs = first[(first >= active.size) & (first < active.size + waiting.size)]
            urgent[planned.jobs.owner[nxt_jobs]] = True
            urgent &= state == _NONE
            if planned.slot_room[k] < 0:  # the slots ran short by then (else the ingest)
                need = float(np.cumsum(planned.jobs.slot_s[planned.order])[k])
                why = reasons.edf_urgent(
                    int(k + 1), float(planned.due_s[k]), need / HOUR_S, (need + float(planned.slot_room[k])) / HOUR_S, "slot-hours"
                )
            else:
                need = float(np.cumsum(planned.jobs.bytes[planned.order])[k])
                why = reasons.edf_urgent(
                    int(k + 1), float(planned.due_s[k]), need / 1e12, (need + float(planned.byte_room[k])) / 1e12, "TB of ingest"
                )
        saturated = bool(_over(fastest).any())  # the tiers' doing
        misses = self._misses(fastest)  # ... or a source too slow, or a deadline already passed
        note = reasons.saturated(misses, fastest.capacity_text(), saturated) if misses else ""
        alone = waiting[(d[waiting] > 0) & (demand.next_bytes[waiting] / (rate_src[waiting] * MB) > d[waiting] + margin[waiting] + _TOL_S)]
        st = FleetState(t, deadline, urgent, planned, fastest, bool(over_p.any()), saturated, why, note, alone)
        self.log.note(st)
        return st

    def _misses(self, v: Verdict) -> list[tuple[str, float]]:
        ids = self.log.ids
        return [(ids[k], s) for k, s in sorted(v.misses(_TOL_S).items(), key=lambda kv: -kv[1])]


def _over(v: Verdict) -> np.ndarray:
    """EDF order: jobs the capacity makes late (a job hopeless on its own is not the tiers' doing)."""
    fin = v.finish_s[v.order]
    return fin > v.due_s + _TOL_S

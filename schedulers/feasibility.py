"""Can the backup tiers meet every RPO? An earliest-deadline-first (EDF) fluid test.

The backup infrastructure is a pool of job slots and ingest bandwidth: each tier's slots
and MB/s, pooled (a job may go to any tier). A backup job moves `bytes` and holds a slot
for `slot_s` seconds; it must complete by its deadline (then the volume's restore point
stays within its RPO). Serving jobs earliest-deadline-first is optimal for one resource;
both are tested here: by each deadline d, the slot-seconds and the bytes of every job due
by d must fit in what the tiers offer by d (slots still held by running jobs count as
busy until those end). A job's fluid completion is the later of the two (and never
sooner than its own slot time); its lateness is how far that passes its deadline, and
the capacity that would suffice is the smallest slot count and ingest for which no
prefix overflows.

`edf` is the core: the predictive policy runs it over its volumes' next backups at every
planning round (`schedulers.predictive.placement`). `periodic_jobs` expands per-volume
demand (bytes per RPO period) into the jobs due over a horizon, and `check_fleet` is the
whole policy-independent check of a fleet (what an experiment can print before or after
a run); `check_jobs` derives that demand from a finished run's jobs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from common.units import HOUR_S, MB
from schedulers.slot_sums import slot_avail
from sim.types import DEVICE_CLASSES

#: a job's slot time is never less than this (a start, a snapshot and a completion take time)
MIN_SLOT_S = 10.0


class TierLike(Protocol):
    """What the test reads of a tier (a config's, a simulator's or a context's tier)."""

    name: str
    slots: int
    ingest_mbps: float


@dataclass(frozen=True)
class Pool:
    """The backup tiers as one pool of slots and ingest, and each tier's share of it."""

    names: tuple[str, ...]
    slots: np.ndarray  # per tier
    ingest_mbps: np.ndarray  # per tier

    @classmethod
    def of(cls, tiers: Sequence[TierLike]) -> Pool:
        return cls(tuple(t.name for t in tiers), np.array([t.slots for t in tiers], float), np.array([t.ingest_mbps for t in tiers], float))

    @property
    def total_slots(self) -> float:
        return float(self.slots.sum())

    @property
    def total_mbps(self) -> float:
        return float(self.ingest_mbps.sum())

    @property
    def slot_mbps(self) -> float:
        """Ingest a busy pool gives each slot (pooled mean)."""
        return self.total_mbps / self.total_slots


@dataclass
class Jobs:
    """Backup jobs to place (arrays over jobs). Deadlines are seconds from now."""

    owner: np.ndarray  # volume index of each job
    deadline_s: np.ndarray
    bytes: np.ndarray
    slot_s: np.ndarray  # slot time (0 for the remaining bytes of a job that already holds a slot)

    @classmethod
    def concat(cls, parts: Sequence[Jobs]) -> Jobs:
        return cls(*(np.concatenate([getattr(p, f) for p in parts]) for f in ("owner", "deadline_s", "bytes", "slot_s")))


@dataclass
class Verdict:
    """The EDF fluid schedule of a set of jobs on a pool (arrays in the jobs' own order)."""

    jobs: Jobs
    pool: Pool
    order: np.ndarray  # EDF order (indices into the jobs)
    finish_s: np.ndarray  # fluid completion, seconds from now
    late_s: np.ndarray  # max(0, finish - deadline)
    slot_room: np.ndarray  # spare slot-seconds by each job's (effective) deadline, EDF order
    byte_room: np.ndarray  # spare bytes of ingest by it, EDF order
    due_s: np.ndarray  # effective deadlines, EDF order
    need_slots: float  # pooled slots for which no prefix overflows (with today's ingest)
    need_mbps: float  # pooled ingest for which no prefix overflows

    @property
    def feasible(self) -> bool:
        return not bool((self.late_s > 0).any())

    def misses(self, tol_s: float = 0.0) -> dict[int, float]:
        """{volume: worst lateness (s)} of the volumes with a job later than `tol_s`."""
        out: dict[int, float] = {}
        for j in np.flatnonzero(self.late_s > tol_s).tolist():
            v = int(self.jobs.owner[j])
            out[v] = max(out.get(v, 0.0), float(self.late_s[j]))
        return out

    def admits(self, slot_s: float, nbytes: float, rate_mbps: float) -> bool:
        """Whether a job started now (holding a slot `slot_s`, moving `nbytes` at `rate_mbps`)
        leaves every job due still within its deadline (and none later than it already is)."""
        if self.due_s.size == 0:
            return True
        use_slot = np.minimum(slot_s, self.due_s)
        use_bytes = np.minimum(nbytes, rate_mbps * MB * self.due_s)
        return bool(np.all(self.slot_room >= use_slot) and np.all(self.byte_room >= use_bytes))

    def take(self, slot_s: float, nbytes: float, rate_mbps: float) -> None:
        """Account for a job started now (see `admits`)."""
        self.slot_room = self.slot_room - np.minimum(slot_s, self.due_s)
        self.byte_room = self.byte_room - np.minimum(nbytes, rate_mbps * MB * self.due_s)

    def tiers_needed(self) -> dict[str, dict[str, float]]:
        """Per tier: the slots and ingest that would suffice, and what it has (see `scaled_tiers`)."""
        return scaled_tiers(self.pool, self.need_slots, self.need_mbps)

    def capacity_text(self) -> str:
        """What capacity would suffice, in words."""
        per = ", ".join(f"{k} {v['slots']:g} slots / {v['ingest_mbps']:.0f} MB/s" for k, v in self.tiers_needed().items())
        p = self.pool
        return (
            f"needs {math.ceil(self.need_slots - 1e-9)} slots / {self.need_mbps:.0f} MB/s ingest "
            f"(has {p.total_slots:g} / {p.total_mbps:.0f}): {per}"
        )


def scaled_tiers(pool: Pool, need_slots: float, need_mbps: float) -> dict[str, dict[str, float]]:
    """Each tier scaled alike to `need_slots` slots and `need_mbps` ingest in all: slots rounded
    up, and ingest scaled at least as much as slots, so a busy slot keeps its share of ingest
    (the slot times the test assumed)."""
    fs = max(1.0, need_slots / pool.total_slots)
    fb = max(fs, need_mbps / pool.total_mbps)
    return {
        name: {
            "slots": float(math.ceil(s * fs - 1e-9)),
            "ingest_mbps": math.ceil(b * fb * 10.0 - 1e-9) / 10.0,
            "has_slots": float(s),
            "has_ingest_mbps": float(b),
        }
        for name, s, b in zip(pool.names, pool.slots, pool.ingest_mbps)
    }


def _slot_time_inverse(free_s: np.ndarray, work: np.ndarray) -> np.ndarray:
    """When slots freeing at `free_s` (sorted) have given `work` slot-seconds: the inverse of
    avail(tau) = sum(max(0, tau - free_s))."""
    k = free_s.size
    avail = np.cumsum(np.arange(k) * np.diff(free_s, prepend=free_s[0]))  # avail at each breakpoint
    tau = np.interp(work, avail, free_s)
    over = work > avail[-1]
    return np.where(over, free_s[-1] + (work - avail[-1]) / k, tau)


def _slot_avail(free_s: np.ndarray, tau: np.ndarray) -> np.ndarray:
    """Slot-seconds the pool gives from now to each `tau` (`free_s` sorted; see `schedulers.slot_sums`)."""
    return slot_avail(free_s, tau)


def edf(jobs: Jobs, pool: Pool, busy_s: np.ndarray | None = None) -> Verdict:
    """The EDF fluid schedule of `jobs` on `pool`; `busy_s`: seconds until each slot held by a
    running job frees (at most the pool's slot count; the others are free now).

    A job cannot finish sooner than its own slot time after the first slot frees, nor its
    bytes sooner than the pool's ingest allows: its *effective* deadline is at least that,
    so a job already hopeless on its own (overdue, or too slow) is late but does not make
    every other job's room negative.
    """
    k = max(1, int(round(pool.total_slots)))
    busy = np.sort(np.asarray(busy_s if busy_s is not None else [], float))[:k]
    free = np.sort(np.concatenate([np.zeros(k - busy.size), busy]))
    b_rate = pool.total_mbps * MB
    due = np.maximum(jobs.deadline_s, np.maximum(free[0] + jobs.slot_s, jobs.bytes / b_rate))
    order = np.lexsort((jobs.slot_s, due))
    d = due[order]
    cum_slot = np.cumsum(jobs.slot_s[order])
    cum_bytes = np.cumsum(jobs.bytes[order])
    fin_sorted = np.maximum.reduce([_slot_time_inverse(free, cum_slot), cum_bytes / b_rate, free[0] + jobs.slot_s[order]])
    finish = np.empty_like(fin_sorted)
    finish[order] = fin_sorted
    avail = _slot_avail(free, d)
    slot_room = avail - cum_slot
    byte_room = b_rate * d - cum_bytes
    with np.errstate(divide="ignore", invalid="ignore"):
        extra = np.where(d > 0, -slot_room / d, 0.0)
        need_mbps = float(np.max(np.where(d > 0, cum_bytes / d, 0.0), initial=0.0)) / MB
    need_slots = pool.total_slots + max(0.0, float(np.max(extra, initial=0.0)))
    late = np.maximum(finish - jobs.deadline_s, 0.0)
    return Verdict(jobs, pool, order, finish, late, slot_room, byte_room, d, need_slots, need_mbps)


def periodic_jobs(
    bytes_per_period: np.ndarray, period_s: np.ndarray, rate_mbps: np.ndarray, horizon_s: float, first_deadline_s: np.ndarray | None = None
) -> Jobs:
    """Every volume's backups due within `horizon_s`: one of `bytes_per_period` per `period_s`
    (the first due at `first_deadline_s`, default one period from now), each holding a slot
    for its bytes at `rate_mbps`."""
    size = np.asarray(bytes_per_period, float)
    per = np.asarray(period_s, float)
    first = per if first_deadline_s is None else np.asarray(first_deadline_s, float)
    counts = np.maximum(0, np.floor((horizon_s - first) / per).astype(np.int64) + 1)
    owner = np.repeat(np.arange(size.size), counts)
    k = np.arange(owner.size) - np.repeat(np.cumsum(counts) - counts, counts)
    slot = np.maximum(size / (np.maximum(np.asarray(rate_mbps, float), 1e-9) * MB), MIN_SLOT_S)
    return Jobs(owner, first[owner] + k * per[owner], size[owner], slot[owner])


@dataclass
class FleetVerdict:
    """The EDF verdict on a fleet, with its volumes' names: who misses, by how much, what would suffice."""

    verdict: Verdict
    ids: list[str]
    horizon_s: float

    @property
    def feasible(self) -> bool:
        return self.verdict.feasible

    def misses(self) -> dict[str, float]:
        """{volume id: worst lateness (h)}, latest first."""
        m = self.verdict.misses()
        return {self.ids[v]: round(s / HOUR_S, 3) for v, s in sorted(m.items(), key=lambda kv: -kv[1])}

    def as_dict(self) -> dict[str, Any]:
        v = self.verdict
        return {
            "feasible": self.feasible,
            "horizon_h": self.horizon_s / HOUR_S,
            "volumes_missing": len(self.misses()),
            "misses_h": self.misses(),
            "need_slots": round(v.need_slots, 2),
            "need_ingest_mbps": round(v.need_mbps, 1),
            "tiers": v.tiers_needed(),
        }

    def warning(self, top: int = 5) -> str:
        """One line for the terminal (`experiments.runner.print_warning`); empty when every RPO can be met."""
        if self.feasible:
            return ""
        m = self.misses()
        worst = ", ".join(f"{k} by {h:.1f} h" for k, h in list(m.items())[:top]) + (" ..." if len(m) > top else "")
        return (
            f"the backup tiers cannot meet every RPO (EDF over {self.horizon_s / HOUR_S:g} h): "
            f"{len(m)} volumes miss ({worst}); {self.verdict.capacity_text()}"
        )


def check_fleet(
    ids: Sequence[str],
    bytes_per_period: np.ndarray,
    rpo_s: np.ndarray,
    max_rate_mbps: np.ndarray,
    tiers: Sequence[TierLike],
    horizon_s: float | None = None,
) -> FleetVerdict:
    """Whether any schedule can keep every volume within its RPO on `tiers`.

    Each volume needs `bytes_per_period[v]` moved every `rpo_s[v]` (its changes over one RPO),
    at most at `max_rate_mbps[v]` (its source's limit) and at most a slot's share of the pooled
    ingest. From the critical instant (every volume just backed up), over `horizon_s`
    (default: twice the longest RPO) the EDF fluid test says who misses and what would suffice.
    """
    pool = Pool.of(tiers)
    rpo = np.asarray(rpo_s, float)
    horizon = float(horizon_s if horizon_s is not None else 2.0 * rpo.max())
    rate = np.minimum(np.asarray(max_rate_mbps, float), pool.slot_mbps)
    jobs = periodic_jobs(np.asarray(bytes_per_period, float), rpo, rate, horizon)
    return FleetVerdict(edf(jobs, pool), list(ids), horizon)


def check_jobs(volumes: Any, jobs: Any, tiers: Sequence[TierLike], max_util: float = 0.95) -> FleetVerdict:
    """`check_fleet` on a finished run: each volume's bytes per RPO period from its
    incremental backups (bytes changed per second between snapshots, times the RPO), its
    source's limit from its device class. `volumes` and `jobs` are a run's frames
    (`volume`, `device`, `rpo_s`; `volume`, `kind`, `snapshot_t`, `size_bytes`)."""
    ids = list(volumes["volume"])
    rpo = volumes["rpo_s"].to_numpy(float)
    rate = np.array([DEVICE_CLASSES[d].max_mbps * max_util if d in DEVICE_CLASSES else np.inf for d in volumes["device"]])
    per_s = np.zeros(len(ids))
    if len(jobs):
        j = jobs.sort_values("snapshot_t")
        gap = j.groupby("volume")["snapshot_t"].diff()
        inc = j[(j["kind"] == "incremental") & gap.gt(0)]
        gaps = gap[inc.index]
        sums = inc.assign(gap=gaps).groupby("volume")[["size_bytes", "gap"]].sum()
        rates = (sums["size_bytes"] / sums["gap"]).to_dict()
        per_s = np.array([rates.get(i, 0.0) for i in ids])
    return check_fleet(ids, per_s * rpo, rpo, rate, tiers)

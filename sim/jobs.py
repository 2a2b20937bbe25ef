"""Backup jobs as the simulator runs them (one live job per volume at most).

Job state lives in per-volume arrays (the decision context hands them to the scheduler
as they are); each job is also a SimPy process with few events: it waits for a slot
of its tier, snapshots when it gets one (its restore point is the data as of then) and
holds the slot until its bytes have moved. A job moves bytes at the minimum of its
throttle, its max-min fair share of the tier's ingest and the source device's headroom.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import simpy

from common.units import MB
from sim.cbt import FleetTracker
from sim.devices import rate_for_utilisation
from sim.tiers import Tier, waterfill
from sim.types import Action, BackupKind, JobState, Pause, Resume, Start, Throttle

# plain ints for the hot paths (IntEnum attribute access is slow)
_NONE, _QUEUED, _RUNNING, _PAUSED = (int(s) for s in (JobState.NONE, JobState.QUEUED, JobState.RUNNING, JobState.PAUSED))


@dataclass
class Job:
    volume: int
    kind: BackupKind
    tier: int
    queued_t: float
    done: simpy.Event
    reason: str = ""
    forced: bool = False
    pause_on_start: bool = False
    snapshot_t: float = float("nan")  # set when the job gets its tier slot
    size_bytes: float = 0.0
    moved_bytes: float = 0.0
    complete_t: float = float("nan")
    pauses: int = 0
    extra: dict = field(default_factory=dict)


class JobTable:
    """The live jobs of the fleet; `on_complete(job)` is called as each one finishes."""

    def __init__(
        self, env: simpy.Environment, n_volumes: int, tiers: list[Tier], tracker: FleetTracker, on_complete: Callable[[Job], None]
    ):
        n = n_volumes
        self.env = env
        self.tiers = tiers
        self.tracker = tracker
        self.on_complete = on_complete
        self.kind = np.full(n, -1, np.int8)
        self.state = np.zeros(n, np.int8)
        self.tier = np.full(n, -1, np.int8)
        self.rate = np.zeros(n)  # achieved in the last tick
        self.throttle = np.full(n, np.inf)
        self.remaining = np.zeros(n)
        self.moved_by_job = np.zeros(n)
        self.backup_mbps = np.zeros(n)  # what each volume's backup read in the last tick
        self.jobs: list[Job | None] = [None] * n
        self.moved = np.zeros((len(tiers), len(BackupKind)))  # bytes per tier and kind
        self._running = np.zeros(0, np.int64)
        self._running_dirty = False

    # ------------------------------------------------------------------ actions
    def apply(self, a: Action, t: float) -> bool:
        """Apply one scheduler action at `t`; False when it does not fit the job's state."""
        v = a.volume
        state = self.state[v]
        if isinstance(a, Start):
            if state != _NONE:
                return False
            self._start(a, t)
            return True
        if isinstance(a, Throttle):
            if state == _NONE:
                return False
            self.throttle[v] = np.inf if a.rate_mbps is None else a.rate_mbps
            return True
        if isinstance(a, Pause):
            if state == _RUNNING:
                self.state[v] = _PAUSED
                self.jobs[v].pauses += 1
                self._running_dirty = True
            elif state == _QUEUED:
                self.jobs[v].pause_on_start = True
            return state in (_RUNNING, _QUEUED)
        if isinstance(a, Resume):
            if state == _PAUSED:
                self.state[v] = _RUNNING
                self._running_dirty = True
            elif state == _QUEUED:
                self.jobs[v].pause_on_start = False
            ok = state in (_PAUSED, _QUEUED)
            if ok and a.rate_mbps is not None:
                self.throttle[v] = a.rate_mbps
            return ok
        return True

    def _start(self, a: Start, t: float) -> None:
        v = a.volume
        if not 0 <= a.tier < len(self.tiers):
            raise ValueError(f"scheduler asked for tier {a.tier}; tiers are 0..{len(self.tiers) - 1}")
        job = Job(v, BackupKind(a.kind), a.tier, t, self.env.event(), reason=a.reason, forced=a.forced)
        self.jobs[v] = job
        self.kind[v] = job.kind
        self.tier[v] = a.tier
        self.state[v] = _QUEUED
        self.throttle[v] = np.inf if a.rate_mbps is None else a.rate_mbps
        self.env.process(self._process(job))

    def _process(self, job: Job):
        tier = self.tiers[job.tier]
        with tier.slots.request() as req:
            yield req
            v = job.volume
            job.snapshot_t = self.env.now
            job.size_bytes = self.tracker.start_backup(v, job.kind)
            self.remaining[v] = job.size_bytes
            self.state[v] = _PAUSED if job.pause_on_start else _RUNNING
            self._running_dirty = True
            yield job.done

    # ------------------------------------------------------------------ progress
    def running(self) -> np.ndarray:
        """Volumes whose job is running now (recomputed only after a state change)."""
        if self._running_dirty:
            self._running = np.flatnonzero(self.state == _RUNNING)
            self._running_dirty = False
            self.backup_mbps[:] = 0.0
        return self._running

    def progress(self, run: np.ndarray, t: float, dt: float, iops, mbps, max_iops, max_mbps, max_util: float) -> None:
        """Move the running jobs' bytes over the tick `[t, t + dt)`."""
        head = rate_for_utilisation(iops, mbps, max_iops, max_mbps, max_util)
        cap = np.minimum(self.throttle[run], head)
        tiers = self.tier[run]
        rate = np.empty_like(cap)
        for tier in np.unique(tiers):
            sel = tiers == tier
            rate[sel] = waterfill(cap[sel], self.tiers[tier].spec.ingest_mbps)
        rem = self.remaining[run]
        can = rate * dt * MB
        moved = np.minimum(rem, can)
        self.remaining[run] = rem - moved
        self.rate[run] = rate
        self.backup_mbps[run] = moved / (dt * MB)
        kinds = self.kind[run]
        np.add.at(self.moved, (tiers, kinds), moved)
        self.moved_by_job[run] += moved
        done = rem <= can
        if done.any():
            frac = np.where(can > 0, rem / np.where(can > 0, can, 1.0), 0.0)
            for j in np.flatnonzero(done):
                self._complete(int(run[j]), t + float(frac[j]) * dt)

    def _complete(self, v: int, t_done: float) -> None:
        job = self.jobs[v]
        job.complete_t = t_done
        job.moved_bytes = float(self.moved_by_job[v])
        self.moved_by_job[v] = 0.0
        self.on_complete(job)
        self.jobs[v] = None
        self.kind[v] = -1
        self.state[v] = _NONE
        self.tier[v] = -1
        self.rate[v] = 0.0
        self.throttle[v] = np.inf
        self.remaining[v] = 0.0
        self._running_dirty = True
        job.done.succeed()

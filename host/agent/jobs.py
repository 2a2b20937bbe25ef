"""Backup jobs on a real host: the policy's actions applied to real processes.

The same rules as the simulator's `JobTable`: at most one job per volume; a `Start` is
refused when the volume has one (and, here, while its failures back off); a started
job waits in its tier's queue (`QUEUED`) until a slot frees and snapshots when it takes
the slot; `Throttle`, `Pause` and `Resume` act on its process (`throttle.py`): the limit
in force is returned for the decision log. Per-volume arrays (`kind`, `state`, `tier`,
`rate`, `throttle`, `remaining`) are what the `DecisionContext` shows.

Each job is a row in the state before its process starts and is updated as it runs and
ends; its process is found again after an agent restart (`adopt`), or its outcome is read
from the files it left. A job ends in a restore point only when the tool said success.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from common.units import MB
from host.agent import proc
from host.agent.adapters import Adapter, JobSpec, Outcome, kind_name
from host.agent.adapters.base import last_line
from host.agent.retry import Backoff
from host.agent.state import AgentState
from host.agent.throttle import Mechanism, ThrottleError
from sim.types import Action, BackupKind, JobState, Pause, Resume, Start, Throttle

_NONE, _QUEUED, _RUNNING, _PAUSED = (int(s) for s in (JobState.NONE, JobState.QUEUED, JobState.RUNNING, JobState.PAUSED))
KEEP_FOLDERS = 200  # job output folders kept


@dataclass
class Job:
    id: int
    v: int
    tier: int
    kind: BackupKind
    forced: bool
    spec: JobSpec
    adapter: Adapter
    throttle: float | None
    handle: proc.Handle | None = None
    start_t: float | None = None
    pause_on_start: bool = False
    est_bytes: float = 0.0
    dev_written: float = 0.0
    read_bytes: float = 0.0
    io_prev: tuple[float, float, float] = (0.0, 0.0, 0.0)
    limit: str = "unthrottled"
    adopted: bool = False
    notes: list[str] = field(default_factory=list)


@dataclass
class Finished:
    job: Job
    outcome: Outcome
    end_t: float
    snapshot_t: float | None  # Unix seconds of the restore point (None: no point)


class JobTable:
    """Jobs of every volume: per-volume arrays for the context, processes underneath."""

    def __init__(
        self,
        vols: list,
        tiers: list,
        adapters: Callable[[int, int], Adapter],
        devs: list[tuple[str, str]],
        state: AgentState | None,
        mech: Mechanism,
        backoff: Backoff,
        estimate: Callable[[int, BackupKind], tuple[float, float]],
        parent_full: Callable[[str, str], str | None],
        paths: list[tuple[str, ...]],
    ):
        n = len(vols)
        self.vols, self.tiers, self.adapters = vols, tiers, adapters
        self.devs = devs  # per volume: (diskstats name, "major:minor" of the disk to throttle)
        self.state, self.mech, self.backoff = state, mech, backoff
        self.estimate, self.parent_full, self.paths = estimate, parent_full, paths
        self.kind = np.full(n, -1, np.int8)
        self.jstate = np.zeros(n, np.int8)
        self.tier = np.full(n, -1, np.int8)
        self.rate = np.zeros(n)
        self.throttle = np.full(n, np.inf)
        self.remaining = np.zeros(n)
        self.jobs: list[Job | None] = [None] * n
        self.queue: list[int] = []
        self.log: Callable[[str], None] = lambda m: None
        self.failed_starts: list[Finished] = []  # jobs whose process could not start (collected by the loop)

    # ------------------------------------------------------------------ views
    def busy(self, tier: int) -> int:
        return sum(1 for j in self.jobs if j is not None and j.tier == tier and j.handle is not None)

    def queued(self, tier: int) -> int:
        return sum(1 for v in self.queue if self.jobs[v] is not None and self.jobs[v].tier == tier)

    def folder(self, job_id: int) -> Path:
        return (self.state.folder if self.state else Path(".")) / "jobs" / str(job_id)

    # ------------------------------------------------------------------ actions
    def apply(self, a: Action, now: float) -> tuple[bool, str]:
        """Apply one action at Unix time `now`: (accepted, the limit in force or why refused)."""
        v = a.volume
        st = int(self.jstate[v])
        job = self.jobs[v]
        if isinstance(a, Start):
            if st != _NONE:
                return False, "the volume has a job"
            if not self.backoff.ready(v, now):
                f = self.backoff.f[v]
                return (
                    False,
                    f"backing off after {f.consecutive} failure(s) until "
                    f"{time.strftime('%H:%M:%S', time.localtime(f.next_retry_t))}: {f.last_error}",
                )
            return self._queue(a, now)
        if st == _NONE:
            return False, "no job"
        if isinstance(a, Throttle):
            return True, self._set_rate(job, a.rate_mbps)
        if isinstance(a, Pause):
            if st == _QUEUED:
                job.pause_on_start = True
                return True, "paused before its start"
            if st == _PAUSED:
                return True, job.limit
            job.limit = self.mech.pause(job.id, job.handle)
            self.jstate[v] = _PAUSED
            self._save(job, state="paused")
            return True, job.limit
        if isinstance(a, Resume):
            if a.rate_mbps is not None:
                job.throttle = a.rate_mbps
            if st == _QUEUED:
                job.pause_on_start = False
                return True, "resumed before its start"
            if st != _PAUSED:
                return False, "not paused"
            self.mech.resume(job.id, job.handle)
            self.jstate[v] = _RUNNING
            self._save(job, state="running")
            return True, self._set_rate(job, job.throttle)
        return False, f"unknown action {type(a).__name__}"

    def _queue(self, a: Start, now: float) -> tuple[bool, str]:
        v = a.volume
        vol = self.vols[v]
        kind = BackupKind(int(a.kind))
        tier = self.tiers[a.tier]
        adapter = self.adapters(v, a.tier)
        job_id = self._new_row(vol.name, tier.name, kind, a, now)
        spec = JobSpec(job_id, vol.name, self.paths[v], kind, tier.name)
        job = Job(job_id, v, a.tier, kind, a.forced, spec, adapter, a.rate_mbps)
        self.jobs[v] = job
        self.kind[v], self.tier[v], self.jstate[v] = int(kind), a.tier, _QUEUED
        self.throttle[v] = np.inf if a.rate_mbps is None else a.rate_mbps
        self.queue.append(v)
        self.failed_starts += self.start_queued(now)
        if job.handle is not None:
            return True, job.limit
        return True, "queued for a slot" if self.jobs[v] is job else "could not start"

    def _new_row(self, volume: str, tier: str, kind: BackupKind, a: Start, now: float) -> int:
        if self.state is None:
            self._fake_id = getattr(self, "_fake_id", 0) + 1
            return self._fake_id
        return self.state.add_job(
            volume=volume, tier=tier, kind=kind_name(kind), state="queued", forced=int(a.forced), reason=a.reason, queued_t=now
        )

    def _set_rate(self, job: Job, rate: float | None) -> str:
        job.throttle = rate
        self.throttle[job.v] = np.inf if rate is None else rate
        if job.handle is None:
            return "set for its start" if rate is not None else "unthrottled"
        dev = self.devs[job.v][1]
        try:
            job.limit = self.mech.set_rate(job.id, dev, rate)
        except ThrottleError as err:
            job.limit = f"not in force ({err})"
        self._save(job, throttle_mbps=rate)
        return job.limit

    # ------------------------------------------------------------------ starting
    def start_queued(self, now: float) -> list[Finished]:
        """Start queued jobs whose tier has a free slot (first come, first served)."""
        failed: list[Finished] = []
        for v in list(self.queue):
            job = self.jobs[v]
            if self.busy(job.tier) >= self.tiers[job.tier].slots:
                continue
            self.queue.remove(v)
            err = self._launch(job, now)
            if err is not None:
                failed.append(self._end(job, Outcome(False, err), now))
        return failed

    def _launch(self, job: Job, now: float) -> str | None:
        """Start a job's process; None, or why it could not start."""
        vol = self.vols[job.v]
        if job.kind == BackupKind.DIFFERENTIAL:
            job.spec = JobSpec(job.id, vol.name, job.spec.paths, job.kind, job.spec.tier, self.parent_full(vol.name, job.spec.tier))
        try:
            argv, env = job.adapter.command(job.spec)
        except ValueError as err:
            return str(err)
        job.est_bytes, job.dev_written = self.estimate(job.v, job.kind)
        dev = self.devs[job.v][1]
        procs = None
        try:
            procs = self.mech.prepare(job.id, dev)
            if procs is not None:
                job.limit = self.mech.set_rate(job.id, dev, job.throttle)
        except ThrottleError as err:
            self.log(f"{vol.name}: job {job.id}: no cgroup ({err}); it runs without a read limit")
            job.limit, procs = f"not in force ({err})", None
        job.start_t = time.time()
        try:
            job.handle = proc.spawn(job.id, argv, env, self.folder(job.id), procs)
        except OSError as err:
            return f"cannot start {argv[0]}: {err.strerror or err}"
        self.mech.attach(job.id, job.handle, dev)
        if procs is None:
            job.limit = self.mech.set_rate(job.id, dev, job.throttle)
        self.jstate[job.v] = _RUNNING
        if job.pause_on_start:
            job.limit = self.mech.pause(job.id, job.handle)
            self.jstate[job.v] = _PAUSED
        self.remaining[job.v] = job.est_bytes
        h = job.handle
        self._save(
            job,
            state="paused" if job.pause_on_start else "running",
            start_t=job.start_t,
            pid=h.pid,
            proc_start=h.proc_start,
            boot_id=h.boot,
            cgroup=procs,
            throttle_mbps=job.throttle,
            est_bytes=job.est_bytes,
            dev_written_bytes=job.dev_written,
            out_dir=str(h.folder),
        )
        return None

    # ------------------------------------------------------------------ progress
    def measure(self, dt: float) -> dict[str, tuple[float, float, float]]:
        """Each started job's reads since the last call: per-volume rate and remaining bytes;
        the backups' (read B, read I/Os, written B) per device, for the production load."""
        per_dev: dict[str, list[float]] = {}
        for job in self.jobs:
            if job is None or job.handle is None:
                continue
            dev_name, dev = self.devs[job.v]
            cur = self.mech.io(job.id, job.handle, dev)
            d = [max(0.0, c - p) for c, p in zip(cur, job.io_prev)]
            job.io_prev = cur
            job.read_bytes += d[0]
            self.rate[job.v] = d[0] / MB / dt if dt > 0 else 0.0
            self.remaining[job.v] = max(job.est_bytes - job.read_bytes, 0.0)
            acc = per_dev.setdefault(dev_name, [0.0, 0.0, 0.0])
            for i in range(3):
                acc[i] += d[i]
        return {k: (a[0], a[1], a[2]) for k, a in per_dev.items()}

    def poll(self, now: float) -> list[Finished]:
        """Jobs whose process ended since the last call, with their outcome."""
        done = []
        for job in self.jobs:
            if job is None or job.handle is None or job.handle.alive():
                continue
            done.append(self._end(job, self._outcome(job), now))
        return done

    def _outcome(self, job: Job) -> Outcome:
        rc = job.handle.exit_code()
        if rc == proc.CGROUP_JOIN_FAILED and not job.handle.rc_path.exists():
            return Outcome(False, f"the backup could not join its cgroup ({last_line(job.handle.folder / 'err')})")
        return job.adapter.outcome(job.spec, job.handle.folder, rc)

    def _end(self, job: Job, out: Outcome, now: float) -> Finished:
        v = job.v
        self.mech.release(job.id)
        if self.jobs[v] is job:
            self.jobs[v] = None
            self.kind[v], self.tier[v], self.jstate[v] = -1, -1, _NONE
            self.rate[v], self.throttle[v], self.remaining[v] = 0.0, np.inf, 0.0
        if v in self.queue:
            self.queue.remove(v)
        snap_t = None
        if out.ok:
            snap_t = out.snapshot_t or job.start_t
            if out.snapshot_id and hasattr(job.adapter, "snapshot_time"):
                snap_t = job.adapter.snapshot_time(out.snapshot_id) or snap_t
        self._save(
            job,
            state="done" if out.ok else "failed",
            end_t=now,
            read_bytes=job.read_bytes,
            processed_bytes=out.processed_bytes,
            added_bytes=out.added_bytes,
            snapshot_id=out.snapshot_id,
            error=out.error,
        )
        self._prune_folders()
        return Finished(job, out, now, snap_t)

    def _save(self, job: Job, **fields) -> None:
        if self.state is not None:
            self.state.update_job(job.id, **fields)

    def _prune_folders(self) -> None:
        if self.state is None:
            return
        root = self.state.folder / "jobs"
        ids = sorted((int(p.name) for p in root.iterdir() if p.name.isdigit()), reverse=True)
        live = {j.id for j in self.jobs if j is not None}
        for i in ids[KEEP_FOLDERS:]:
            if i not in live:
                shutil.rmtree(root / str(i), ignore_errors=True)

    # ------------------------------------------------------------------ restart & stop
    def adopt(self, row: dict, v: int, tier: int, now: float) -> Finished | None:
        """Take over a job the previous agent left: its process if it still runs, else its outcome."""
        kind = BackupKind[row["kind"].upper()]
        vol = self.vols[v]
        spec = JobSpec(row["id"], vol.name, self.paths[v], kind, self.tiers[tier].name)
        job = Job(row["id"], v, tier, kind, bool(row["forced"]), spec, self.adapters(v, tier), row["throttle_mbps"], adopted=True)
        job.start_t, job.est_bytes = row["start_t"], float(row["est_bytes"] or 0.0)
        folder = self.folder(row["id"])
        if row["state"] == "queued":
            self._save(job, state="dropped", end_t=now, error="queued when the agent stopped")
            return None
        h = proc.adopt(row["id"], row["pid"], row["proc_start"], row["boot_id"], folder)
        if h is None:  # it ended while no agent watched: its files say how
            job.handle = proc.Handle(int(row["pid"] or 0), 0, "", folder)
            return self._end(job, job.adapter.outcome(spec, folder, job.handle.exit_code()), now)
        job.handle = h
        job.io_prev = self.mech.io(job.id, h, self.devs[v][1])  # counted from the job's start (its cgroup's or processes' totals)
        job.read_bytes = job.io_prev[0]
        self.jobs[v] = job
        self.kind[v], self.tier[v] = int(kind), tier
        self.throttle[v] = np.inf if job.throttle is None else job.throttle
        self.mech.attach(job.id, h, self.devs[v][1])
        if row["state"] == "paused":
            job.limit = self.mech.pause(job.id, h)
            self.jstate[v] = _PAUSED
        else:
            self.mech.resume(job.id, h)  # a duty cycle may have left it stopped
            self.jstate[v] = _RUNNING
            job.limit = self._set_rate(job, job.throttle)
        self._save(job, adopted=1, pid=h.pid, proc_start=h.proc_start, boot_id=h.boot)
        self.log(f"{vol.name}: adopted job {job.id} ({row['kind']} to {spec.tier}, pid {h.pid}), still running")
        return None

    def stop_all(self, now: float) -> list[Finished]:
        """Kill every job's whole process group (no orphans); queued jobs are dropped."""
        out = []
        for job in list(self.jobs):
            if job is None:
                continue
            if job.handle is None:
                self._save(job, state="dropped", end_t=now, error="the agent stopped before its start")
                self.jobs[job.v] = None
                continue
            job.handle.kill()
            fin = self._end(job, Outcome(False, "killed: the agent stopped"), now)
            self._save(job, state="killed")
            out.append(fin)
        return out

"""The SimPy model: one process advances the whole fleet per load tick.

Per-volume state lives in NumPy arrays; SimPy events per tick do not grow with the
number of volumes (one tick timeout, plus a few per backup job: slot granted, done).

Order inside tick k, covering `[t, t + dt)`:
1. the previous tick's writes are folded into changed-block tracking (so a snapshot
   at `t` holds every write before `t`);
2. on decision ticks the scheduler sees the state at `t` (observations of tick k-1)
   and its actions are applied (new jobs take their tier slot at `t`, snapshotting);
3. running jobs move bytes at min(throttle, max-min fair tier share, device headroom);
   a job that finishes mid-tick completes at its exact time.
Impact, RPO/RTO and the rest are scored per block from per-tick buffers.

The parts live beside this loop: jobs (`sim.jobs`), restore points (`sim.restore`),
the scheduler's context (`sim.context`), what the run leaves behind (`sim.recording`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from common.units import HOUR_S
from sim.cbt import FleetTracker
from sim.chains import RestorePoint
from sim.clock import CountingEnvironment
from sim.context import build_context
from sim.devices import U_MAX, utilisation_with_backup
from sim.history import HistoryRecorder
from sim.jobs import Job, JobTable
from sim.metrics import MetricsAccumulator
from sim.recording import ForecastLog, RunResult, SeriesLog, build_result, decision_row, job_row
from sim.restore import RestoreBook
from sim.spec import SimSpec
from sim.tiers import Tier
from sim.types import BackupKind, DecisionContext, Forecast, LoadHistory, VolumeTable
from workloads.base import LoadBlock, LoadSource

__all__ = ["ForecastProvider", "RunResult", "Simulation"]


class ForecastProvider(Protocol):
    """What the simulator needs from a forecasting service (see forecasters.service)."""

    def update(self, history: LoadHistory) -> Forecast | None: ...


def _block_ticks(spec: SimSpec) -> int:
    unit = math.lcm(spec.ticks(spec.history_step_s), spec.ticks(spec.record_s))
    want = spec.block_ticks or spec.ticks(HOUR_S)
    return unit * max(1, round(want / unit))


def _volume_table(spec: SimSpec, load: LoadSource) -> VolumeTable:
    vs = spec.volumes
    return VolumeTable(
        ids=[v.volume_id for v in vs],
        kinds=[m.kind for m in load.volumes],
        device=[v.device.name for v in vs],
        max_iops=np.array([v.device.max_iops for v in vs]),
        max_mbps=np.array([v.device.max_mbps for v in vs]),
        base_latency_ms=np.array([v.device.base_latency_ms for v in vs]),
        used_bytes=np.array([v.used_bytes for v in vs]),
        rpo_s=np.array([v.rpo_s for v in vs]),
        rto_s=np.array([v.rto_s for v in vs]),
    )


@dataclass
class _Block:
    """One block of load and the per-tick buffers scored at its end (`[ticks, volumes]`)."""

    b0: int
    load: LoadBlock
    iops: np.ndarray
    mbps: np.ndarray
    writes: np.ndarray
    backup: np.ndarray
    snap: np.ndarray
    rto: np.ndarray
    exact: dict  # volume column -> (extents, per-tick bounds into them)


class Simulation:
    def __init__(
        self,
        spec: SimSpec,
        load: LoadSource,
        scheduler,
        forecasts: ForecastProvider | None = None,
        progress: Callable[[float], None] | None = None,
    ):
        if len(load.volumes) != len(spec.volumes):
            raise ValueError(f"load has {len(load.volumes)} volumes, spec {len(spec.volumes)}")
        if abs(load.tick_s - spec.tick_s) > 1e-9:
            raise ValueError(f"load tick {load.tick_s}s differs from the run's tick {spec.tick_s}s")
        self.spec = spec
        self.load = load
        self.scheduler = scheduler
        self.forecasts = forecasts
        self.progress = progress
        self.env = CountingEnvironment()
        n = len(spec.volumes)
        self.table = _volume_table(spec, load)
        self.tiers = [Tier(self.env, i, t) for i, t in enumerate(spec.tiers)]
        self.tracker = FleetTracker(
            self.table.used_bytes,
            [m.working_set for m in load.volumes],
            np.array([m.write_io_bytes for m in load.volumes], float),
            spec.chunk_bytes,
            spec.seed,
        )
        self.metrics = MetricsAccumulator(n, spec.impact_threshold)
        self.points = RestoreBook(n, self.tiers, spec.restore_overhead_s)
        self.jobs = JobTable(self.env, n, self.tiers, self.tracker, self._job_done)
        self.job_log: list[dict] = []
        self.decision_log: list[tuple] = []
        # observations of the last tick
        self.prod_iops = np.zeros(n)
        self.prod_mbps = np.zeros(n)
        self.tick = 0
        self.forecast: Forecast | None = None
        self.history = HistoryRecorder(
            n,
            spec.tick_s,
            spec.ticks(spec.history_step_s),
            spec.ticks(spec.duration_s) // spec.ticks(spec.history_step_s) + 1,
            self.table.kinds,
            spec.start_epoch,
        )
        record_ticks = spec.ticks(spec.record_s)
        self.series = SeriesLog(self.table.ids, spec.n_ticks // record_ticks if spec.record_series else 0)
        self.forecast_log = ForecastLog(self.table.ids)
        self.timing = {"decide_s": 0.0, "forecast_s": 0.0}
        self._prev_writes = np.zeros(n)
        self._decide_every = spec.ticks(spec.decision_s)
        self._step_ticks = spec.ticks(spec.history_step_s)
        if spec.initial_full:
            self._seed_initial_fulls()

    # ------------------------------------------------------------------ set-up
    def _seed_initial_fulls(self) -> None:
        n = len(self.spec.volumes)
        for v, vs in enumerate(self.spec.volumes):
            self.tracker.start_backup(v, BackupKind.FULL)
            age = self.spec.initial_full_spread_s * v / n
            self.points.record(v, RestorePoint(BackupKind.FULL, -age, 0.0, vs.used_bytes, vs.initial_tier))
            if age > 0:  # changes since then are not modelled: the chain's incremental is empty
                self.points.record(v, RestorePoint(BackupKind.INCREMENTAL, 0.0, 0.0, 0.0, vs.initial_tier))

    # ------------------------------------------------------------------ run
    def run(self) -> RunResult:
        """Run to the end; the scheduler's `reset()` comes first, its `summary()` lands in `meta`."""
        reset = getattr(self.scheduler, "reset", None)
        if callable(reset):
            reset()
        wall = time.perf_counter()
        self.env.process(self._fleet())
        self.env.run()
        wall = time.perf_counter() - wall
        result = self._result(wall)
        summary = getattr(self.scheduler, "summary", None)
        if callable(summary):
            policy_summary = summary()
            if isinstance(policy_summary, dict):
                result.meta["policy_summary"] = policy_summary
        return result

    def _fleet(self):
        n_ticks = self.spec.n_ticks
        block = _block_ticks(self.spec)
        for b0 in range(0, n_ticks, block):
            nb = min(block, n_ticks - b0)
            yield from self._run_block(self._load_block(b0, nb))
            if self.progress is not None:
                self.progress((b0 + nb) / n_ticks)
        self.tracker.add_writes(self._prev_writes)

    def _load_block(self, b0: int, nb: int) -> _Block:
        n = self.table.n
        blk = self.load.block(b0, nb)
        writes = blk.write_iops.astype(np.float64) * self.spec.tick_s
        exact = self._prepare_extents(blk, writes)
        return _Block(
            b0,
            blk,
            blk.iops.astype(np.float64),
            blk.mbps.astype(np.float64),
            writes,
            np.zeros((nb, n)),
            np.empty((nb, n)),
            np.empty((nb, n)),
            exact,
        )

    def _run_block(self, b: _Block):
        dt = self.spec.tick_s
        nb = b.iops.shape[0]
        for i in range(nb):
            self._tick(b, i)
            yield self.env.timeout(dt)
        if b.exact:
            self._mark_extents(b.exact, nb - 1)
            self._prev_writes = np.zeros(self.table.n)
        self._score_block(b)

    def _tick(self, b: _Block, i: int) -> None:
        """Steps 1-3 of the module docstring for row `i` of the block, then the history."""
        spec = self.spec
        dt = spec.tick_s
        k = b.b0 + i
        t = k * dt
        self.tick = k
        self.tracker.add_writes(self._prev_writes)
        if b.exact:
            self._mark_extents(b.exact, i - 1)
        if k % self._decide_every == 0:
            self._decide(t)
        iops, mbps = b.iops[i], b.mbps[i]
        self.prod_iops, self.prod_mbps = iops, mbps
        run = self.jobs.running()
        if run.size:
            tb = self.table
            self.jobs.progress(run, t, dt, iops[run], mbps[run], tb.max_iops[run], tb.max_mbps[run], spec.backup_max_util)
            b.backup[i, run] = self.jobs.backup_mbps[run]
        b.snap[i] = self.points.last_snap
        b.rto[i] = self.points.rto_est
        self._prev_writes = b.writes[i]
        step_ticks = self._step_ticks
        if (k + 1) % step_ticks == 0:
            self.history.add_ticks(b.load, i + 1 - step_ticks, i + 1)
            if self.forecasts is not None:
                f0 = time.perf_counter()
                self.forecast = self.forecasts.update(self.history.history())
                self.timing["forecast_s"] += time.perf_counter() - f0
                self.forecast_log.add(self.forecast, self.history.n_steps)

    # ------------------------------------------------------------------ exact CBT
    def _prepare_extents(self, blk: LoadBlock, writes_b: np.ndarray) -> dict:
        """Volumes with exact extents skip the working-set model; index their extents by tick."""
        prepared = {}
        for col, ext in blk.extents.items():
            writes_b[:, col] = 0.0
            bounds = np.searchsorted(ext.tick, np.arange(blk.n_ticks + 1), side="left")
            prepared[col] = (ext, bounds)
        return prepared

    def _mark_extents(self, exact: dict, i: int) -> None:
        if i < 0:
            return
        for col, (ext, bounds) in exact.items():
            lo, hi = bounds[i], bounds[i + 1]
            if hi > lo:
                self.tracker.mark_extents(col, ext.offset[lo:hi], ext.length[lo:hi])

    # ------------------------------------------------------------------ jobs & decisions
    def _job_done(self, job: Job) -> None:
        self.points.record(job.volume, RestorePoint(job.kind, job.snapshot_t, job.complete_t, job.size_bytes, job.tier))
        self.job_log.append(job_row(job, self.table.ids[job.volume], self.tiers[job.tier].spec.name))

    def context(self, t: float) -> DecisionContext:
        """What the scheduler sees at `t`."""
        return build_context(
            t,
            self.tick,
            self.spec,
            self.table,
            self.tiers,
            self.points,
            self.jobs,
            (self.prod_iops, self.prod_mbps),
            self.tracker.dirty_bytes,
            self.history.history,
            self.forecast,
        )

    def _decide(self, t: float) -> None:
        t0 = time.perf_counter()
        actions = self.scheduler.decide(self.context(t))
        for a in actions:
            ok = self.jobs.apply(a, t)
            self.decision_log.append(decision_row(a, t, ok, self.table.ids[a.volume], self.tiers))
        self.timing["decide_s"] += time.perf_counter() - t0

    # ------------------------------------------------------------------ scoring
    def _score_block(self, b: _Block) -> None:
        tb = self.table
        dt = self.spec.tick_s
        nb = b.iops.shape[0]
        u_p, u_pb = utilisation_with_backup(b.iops, b.mbps, b.backup, tb.max_iops, tb.max_mbps)
        t_end = (np.arange(b.b0, b.b0 + nb) + 1.0)[:, None] * dt
        age = t_end - b.snap
        impact = self.metrics.add_block(dt, b.iops * dt, u_p, u_pb, tb.base_latency_ms, age, tb.rpo_s, b.rto, tb.rto_s)
        if self.spec.record_series:
            columns = {
                "prod_iops": b.iops,
                "prod_mbps": b.mbps,
                "backup_mbps": b.backup,
                "impact": impact,
                "rp_age_s": age,
                "rto_estimate_s": b.rto,
                "utilisation": np.minimum(u_p, U_MAX),
            }
            self.series.add_block(b.b0, dt, self.spec.ticks(self.spec.record_s), columns)

    def _result(self, wall_s: float) -> RunResult:
        for tier in self.tiers:
            tier.integrate(self.spec.duration_s)
        timing = {"sim_s": wall_s, **self.timing}
        result = build_result(self.table, self.tiers, self.metrics, self.job_log, self.decision_log, self.jobs.moved, timing)
        if self.spec.record_series:
            result.series = self.series.frame()
        result.forecasts = self.forecast_log.frame(self.history.history())
        return result

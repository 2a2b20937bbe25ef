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
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import pandas as pd
import simpy

from sim.cbt import FleetTracker
from sim.chains import MB, RestorePoint, VolumeChain
from sim.devices import BACKUP_IO_MB, U_MAX, rate_for_utilisation, utilisation
from sim.history import HistoryRecorder
from sim.jobs import Job
from sim.metrics import MetricsAccumulator
from sim.spec import SimSpec
from sim.tiers import Tier, waterfill
from sim.types import (
    Action,
    BackupKind,
    DecisionContext,
    Forecast,
    JobState,
    LoadHistory,
    Pause,
    Resume,
    Start,
    Throttle,
    TierView,
    VolumeTable,
)
from workloads.base import LoadSource

# plain ints for the hot paths (IntEnum attribute access is slow)
_NONE, _QUEUED, _RUNNING, _PAUSED = (int(s) for s in (JobState.NONE, JobState.QUEUED, JobState.RUNNING, JobState.PAUSED))


class ForecastProvider(Protocol):
    """What the simulator needs from a forecasting service (see forecasters.service)."""

    def update(self, history: LoadHistory) -> Forecast | None: ...


@dataclass
class RunResult:
    fleet: dict[str, float]
    volumes: pd.DataFrame
    jobs: pd.DataFrame
    decisions: pd.DataFrame
    series: pd.DataFrame | None
    backup: pd.DataFrame  # bytes moved per tier and kind
    meta: dict = field(default_factory=dict)
    forecasts: pd.DataFrame | None = None  # what the policy was told vs what happened


def _block_ticks(spec: SimSpec) -> int:
    unit = math.lcm(spec.ticks(spec.history_step_s), spec.ticks(spec.record_s))
    want = spec.block_ticks or spec.ticks(3600.0)
    return unit * max(1, round(want / unit))


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
        self.env = simpy.Environment()
        n = len(spec.volumes)
        vs = spec.volumes
        self.table = VolumeTable(
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
        self.tiers = [Tier(self.env, i, t) for i, t in enumerate(spec.tiers)]
        self._restore_mbps = [t.restore_mbps for t in spec.tiers]
        self.tracker = FleetTracker(
            self.table.used_bytes,
            [m.working_set for m in load.volumes],
            np.array([m.write_io_bytes for m in load.volumes], float),
            spec.chunk_bytes,
            spec.seed,
        )
        self.metrics = MetricsAccumulator(n, spec.impact_threshold)
        # restore points
        self.chains = [VolumeChain() for _ in range(n)]
        self.last_snap = np.full(n, -np.inf)
        self.last_full = np.full(n, -np.inf)
        self.rto_est = np.full(n, np.inf)
        self.chain_len = np.zeros(n, np.int64)
        # jobs
        self.job_kind = np.full(n, -1, np.int8)
        self.job_state = np.zeros(n, np.int8)
        self.job_tier = np.full(n, -1, np.int8)
        self.job_rate = np.zeros(n)
        self.job_throttle = np.full(n, np.inf)
        self.job_remaining = np.zeros(n)
        self.job_moved = np.zeros(n)
        self.jobs: list[Job | None] = [None] * n
        self._running = np.zeros(0, np.int64)
        self._running_dirty = False
        self.job_log: list[dict] = []
        self.decision_log: list[tuple] = []
        self.moved = np.zeros((len(self.tiers), len(BackupKind)))
        # observations
        self.prod_iops = np.zeros(n)
        self.prod_mbps = np.zeros(n)
        self.backup_mbps = np.zeros(n)
        self.tick = 0
        self.forecast: Forecast | None = None
        self.history = HistoryRecorder(
            n, spec.tick_s, spec.ticks(spec.history_step_s), spec.ticks(spec.duration_s) // spec.ticks(spec.history_step_s) + 1,
            self.table.kinds, spec.start_epoch,
        )
        self.series: list[dict[str, np.ndarray]] = []
        self._forecast_log: list[tuple[int, str, np.ndarray]] = []  # (target step, model, [4, V])
        self.timing = {"decide_s": 0.0, "forecast_s": 0.0}
        if spec.initial_full:
            self._seed_initial_fulls()

    # ------------------------------------------------------------------ set-up
    def _seed_initial_fulls(self) -> None:
        n = len(self.spec.volumes)
        for v, vs in enumerate(self.spec.volumes):
            self.tracker.start_backup(v, BackupKind.FULL)
            age = self.spec.initial_full_spread_s * v / n
            self._record_point(v, RestorePoint(BackupKind.FULL, -age, 0.0, vs.used_bytes, vs.initial_tier))
            if age > 0:  # changes since then are not modelled: the chain's incremental is empty
                self._record_point(v, RestorePoint(BackupKind.INCREMENTAL, 0.0, 0.0, 0.0, vs.initial_tier))

    # ------------------------------------------------------------------ run
    def run(self) -> RunResult:
        wall = time.perf_counter()
        self.env.process(self._fleet())
        self.env.run()
        wall = time.perf_counter() - wall
        return self._result(wall)

    def _fleet(self):
        spec = self.spec
        dt = spec.tick_s
        n_ticks = spec.n_ticks
        block = _block_ticks(spec)
        decide_every = spec.ticks(spec.decision_s)
        step_ticks = spec.ticks(spec.history_step_s)
        record_ticks = spec.ticks(spec.record_s)
        n = self.table.n
        max_iops, max_mbps = self.table.max_iops, self.table.max_mbps
        prev_writes = np.zeros(n)
        for b0 in range(0, n_ticks, block):
            nb = min(block, n_ticks - b0)
            blk = self.load.block(b0, nb)
            iops_b = blk.iops.astype(np.float64)
            mbps_b = blk.mbps.astype(np.float64)
            writes_b = blk.write_iops.astype(np.float64) * dt
            exact = self._prepare_extents(blk, writes_b)
            backup_b = np.zeros((nb, n))
            snap_b = np.empty((nb, n))
            rto_b = np.empty((nb, n))
            for i in range(nb):
                k = b0 + i
                t = k * dt
                self.tick = k
                self.tracker.add_writes(prev_writes)
                if exact:
                    self._mark_extents(exact, i - 1)
                if k % decide_every == 0:
                    self._decide(t)
                iops, mbps = iops_b[i], mbps_b[i]
                self.prod_iops, self.prod_mbps = iops, mbps
                if self._running_dirty:
                    self._running = np.flatnonzero(self.job_state == _RUNNING)
                    self._running_dirty = False
                    self.backup_mbps[:] = 0.0
                run = self._running
                if run.size:
                    self._progress(run, t, dt, iops[run], mbps[run], max_iops[run], max_mbps[run])
                    backup_b[i, run] = self.backup_mbps[run]
                snap_b[i] = self.last_snap
                rto_b[i] = self.rto_est
                prev_writes = writes_b[i]
                if (k + 1) % step_ticks == 0:
                    lo = i + 1 - step_ticks
                    self.history.add_ticks(blk, lo, i + 1)
                    if self.forecasts is not None:
                        f0 = time.perf_counter()
                        self.forecast = self.forecasts.update(self.history.history())
                        self.timing["forecast_s"] += time.perf_counter() - f0
                        self._log_forecast()
                yield self.env.timeout(dt)
            if exact:
                self._mark_extents(exact, nb - 1)
                prev_writes = np.zeros(n)
            self._score_block(b0, nb, dt, iops_b, mbps_b, backup_b, snap_b, rto_b, record_ticks)
            if self.progress is not None:
                self.progress((b0 + nb) / n_ticks)
        self.tracker.add_writes(prev_writes)

    # ------------------------------------------------------------------ forecasts
    def _log_forecast(self) -> None:
        """Keep the forecast for the step one hour ahead (or the horizon's last), per volume."""
        fc = self.forecast
        if fc is None or fc.horizon == 0:
            return
        lead = min(fc.horizon, max(1, round(3600.0 / fc.step_s))) - 1
        values = np.stack([fc.mean[:, lead, 0], fc.upper[:, lead, 0], fc.mean[:, lead, 1], fc.upper[:, lead, 1]])
        self._forecast_log.append((self.history.n_steps + lead, fc.model, values.astype(np.float32)))

    def _forecast_frame(self) -> pd.DataFrame | None:
        if not self._forecast_log:
            return None
        hist = self.history.history()
        step_s = hist.step_s
        n = self.table.n
        rows = [(i, m, v) for i, m, v in self._forecast_log if i < hist.n_steps]
        if not rows:
            return None
        idx = np.array([i for i, _, _ in rows])
        vals = np.stack([v for _, _, v in rows])  # [rows, 4, V]
        return pd.DataFrame(
            {
                "t": np.repeat(idx * step_s, n),
                "volume": np.tile(np.array(self.table.ids, dtype=object), len(rows)),
                "model": np.repeat(np.array([m for _, m, _ in rows], dtype=object), n),
                "iops_mean": vals[:, 0].ravel(),
                "iops_upper": vals[:, 1].ravel(),
                "iops_actual": hist.iops[idx].ravel(),
                "mbps_mean": vals[:, 2].ravel(),
                "mbps_upper": vals[:, 3].ravel(),
                "mbps_actual": hist.mbps[idx].ravel(),
            }
        )

    # ------------------------------------------------------------------ exact CBT
    def _prepare_extents(self, blk, writes_b: np.ndarray) -> dict:
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

    # ------------------------------------------------------------------ jobs
    def _progress(self, run, t, dt, iops, mbps, max_iops, max_mbps) -> None:
        head = rate_for_utilisation(iops, mbps, max_iops, max_mbps, self.spec.backup_max_util)
        cap = np.minimum(self.job_throttle[run], head)
        tiers = self.job_tier[run]
        rate = np.empty_like(cap)
        for tier in np.unique(tiers):
            sel = tiers == tier
            rate[sel] = waterfill(cap[sel], self.tiers[tier].spec.ingest_mbps)
        rem = self.job_remaining[run]
        can = rate * dt * MB
        moved = np.minimum(rem, can)
        self.job_remaining[run] = rem - moved
        self.job_rate[run] = rate
        self.backup_mbps[run] = moved / (dt * MB)
        kinds = self.job_kind[run]
        np.add.at(self.moved, (tiers, kinds), moved)
        self.job_moved[run] += moved
        done = rem <= can
        if done.any():
            frac = np.where(can > 0, rem / np.where(can > 0, can, 1.0), 0.0)
            for j in np.flatnonzero(done):
                self._complete(int(run[j]), t + float(frac[j]) * dt)

    def _job_process(self, job: Job):
        tier = self.tiers[job.tier]
        with tier.slots.request() as req:
            yield req
            v = job.volume
            job.snapshot_t = self.env.now
            job.size_bytes = self.tracker.start_backup(v, job.kind)
            self.job_remaining[v] = job.size_bytes
            self.job_state[v] = _PAUSED if job.pause_on_start else _RUNNING
            self._running_dirty = True
            yield job.done

    def _complete(self, v: int, t_done: float) -> None:
        job = self.jobs[v]
        job.complete_t = t_done
        job.moved_bytes = float(self.job_moved[v])
        self.job_moved[v] = 0.0
        self._record_point(v, RestorePoint(job.kind, job.snapshot_t, t_done, job.size_bytes, job.tier))
        self.job_log.append(
            {
                "volume": self.table.ids[v],
                "kind": job.kind.name.lower(),
                "tier": self.tiers[job.tier].spec.name,
                "queued_t": job.queued_t,
                "snapshot_t": job.snapshot_t,
                "complete_t": t_done,
                "size_bytes": job.size_bytes,
                "moved_bytes": job.moved_bytes,
                "pauses": job.pauses,
                "forced": job.forced,
                "reason": job.reason,
            }
        )
        self.jobs[v] = None
        self.job_kind[v] = -1
        self.job_state[v] = _NONE
        self.job_tier[v] = -1
        self.job_rate[v] = 0.0
        self.job_throttle[v] = np.inf
        self.job_remaining[v] = 0.0
        self._running_dirty = True
        job.done.succeed()

    def _record_point(self, v: int, point: RestorePoint) -> None:
        now = point.complete_t
        for tier in self.tiers:
            tier.integrate(now)
        dropped = self.chains[v].add(point)
        self.tiers[point.tier].stored_bytes += point.bytes
        for p in dropped:
            self.tiers[p.tier].stored_bytes -= p.bytes
        self.last_snap[v] = max(self.last_snap[v], point.snapshot_t)
        if point.kind == BackupKind.FULL:
            self.last_full[v] = max(self.last_full[v], point.snapshot_t)
        self.rto_est[v] = self.chains[v].restore_seconds(self._restore_mbps, self.spec.restore_overhead_s)
        self.chain_len[v] = len(self.chains[v].restore_chain())

    # ------------------------------------------------------------------ decisions
    def _observed_impact(self) -> np.ndarray:
        """Impact of the last tick (zero where no backup ran)."""
        out = np.zeros(self.table.n)
        on = np.flatnonzero(self.backup_mbps > 0)
        if on.size:
            ti, tm = self.table.max_iops[on], self.table.max_mbps[on]
            u_p = utilisation(self.prod_iops[on], self.prod_mbps[on], ti, tm)
            b = self.backup_mbps[on]
            u_b = utilisation(self.prod_iops[on] + b / BACKUP_IO_MB, self.prod_mbps[on] + b, ti, tm)
            out[on] = (1.0 - u_p) / (1.0 - u_b) - 1.0
        return out

    def _tier_views(self) -> list[TierView]:
        return [
            TierView(
                index=tier.index,
                name=tier.spec.name,
                media=tier.spec.media,
                ingest_mbps=tier.spec.ingest_mbps,
                restore_mbps=tier.spec.restore_mbps,
                slots=tier.spec.slots,
                busy=tier.slots.count,
                queued=len(tier.slots.queue),
                priority=tier.spec.priority,
                cost_per_gb_month=tier.spec.cost_per_gb_month,
                stored_bytes=tier.stored_bytes,
                capacity_bytes=tier.spec.capacity_bytes,
            )
            for tier in self.tiers
        ]

    def context(self, t: float) -> DecisionContext:
        return DecisionContext(
            t=t,
            tick=self.tick,
            tick_s=self.spec.tick_s,
            volumes=self.table,
            tiers=self._tier_views(),
            impact_threshold=self.spec.impact_threshold,
            start_epoch=self.spec.start_epoch,
            rp_age_s=t - self.last_snap,
            last_snapshot_t=self.last_snap,
            last_full_t=self.last_full,
            rto_estimate_s=self.rto_est,
            chain_len=self.chain_len,
            job_kind=self.job_kind,
            job_state=self.job_state,
            job_tier=self.job_tier,
            job_rate_mbps=self.job_rate,
            job_throttle_mbps=self.job_throttle,
            job_remaining_bytes=self.job_remaining,
            prod_iops=self.prod_iops,
            prod_mbps=self.prod_mbps,
            impact=self._observed_impact(),
            _dirty=self.tracker.dirty_bytes,
            _history=self.history.history,
            forecast=self.forecast,
        )

    def _decide(self, t: float) -> None:
        t0 = time.perf_counter()
        actions = self.scheduler.decide(self.context(t))
        for a in actions:
            self._apply(a, t)
        self.timing["decide_s"] += time.perf_counter() - t0

    def _apply(self, a: Action, t: float) -> None:
        v = a.volume
        state = self.job_state[v]
        ok = True
        if isinstance(a, Start):
            if state != _NONE:
                ok = False
            else:
                if not 0 <= a.tier < len(self.tiers):
                    raise ValueError(f"scheduler asked for tier {a.tier}; tiers are 0..{len(self.tiers) - 1}")
                job = Job(v, BackupKind(a.kind), a.tier, t, self.env.event(), reason=a.reason, forced=a.forced)
                self.jobs[v] = job
                self.job_kind[v] = job.kind
                self.job_tier[v] = a.tier
                self.job_state[v] = _QUEUED
                self.job_throttle[v] = np.inf if a.rate_mbps is None else a.rate_mbps
                self.env.process(self._job_process(job))
        elif isinstance(a, Throttle):
            ok = state != _NONE
            if ok:
                self.job_throttle[v] = np.inf if a.rate_mbps is None else a.rate_mbps
        elif isinstance(a, Pause):
            ok = state in (_RUNNING, _QUEUED)
            if state == _RUNNING:
                self.job_state[v] = _PAUSED
                self.jobs[v].pauses += 1
                self._running_dirty = True
            elif state == _QUEUED:
                self.jobs[v].pause_on_start = True
        elif isinstance(a, Resume):
            ok = state in (_PAUSED, _QUEUED)
            if state == _PAUSED:
                self.job_state[v] = _RUNNING
                self._running_dirty = True
            elif state == _QUEUED:
                self.jobs[v].pause_on_start = False
            if ok and a.rate_mbps is not None:
                self.job_throttle[v] = a.rate_mbps
        kind = getattr(a, "kind", None)
        tier = getattr(a, "tier", None)
        self.decision_log.append(
            (
                t,
                self.table.ids[v],
                type(a).__name__.lower(),
                BackupKind(kind).name.lower() if kind is not None else "",
                self.tiers[tier].spec.name if tier is not None and 0 <= tier < len(self.tiers) else "",
                float(getattr(a, "rate_mbps", None) or np.nan),
                a.reason,
                bool(getattr(a, "forced", False)),
                ok,
            )
        )

    # ------------------------------------------------------------------ scoring
    def _score_block(self, b0, nb, dt, iops_b, mbps_b, backup_b, snap_b, rto_b, record_ticks) -> None:
        tb = self.table
        u_p = utilisation(iops_b, mbps_b, tb.max_iops, tb.max_mbps)
        u_pb = utilisation(iops_b + backup_b / BACKUP_IO_MB, mbps_b + backup_b, tb.max_iops, tb.max_mbps)
        t_end = (np.arange(b0, b0 + nb) + 1.0)[:, None] * dt
        age = t_end - snap_b
        impact = self.metrics.add_block(dt, iops_b * dt, u_p, u_pb, tb.base_latency_ms, age, tb.rpo_s, rto_b, tb.rto_s)
        if self.spec.record_series:
            r = record_ticks
            m = nb // r

            def mean(x):
                return x[: m * r].reshape(m, r, -1).mean(axis=1)

            self.series.append(
                {
                    "t": (np.arange(m) * r + b0) * dt,
                    "prod_iops": mean(iops_b),
                    "prod_mbps": mean(mbps_b),
                    "backup_mbps": mean(backup_b),
                    "impact": mean(impact),
                    "rp_age_s": age[: m * r].reshape(m, r, -1).max(axis=1),
                    "rto_estimate_s": rto_b[: m * r].reshape(m, r, -1).max(axis=1),
                    "utilisation": mean(np.minimum(u_p, U_MAX)),
                }
            )

    def _result(self, wall_s: float) -> RunResult:
        end = self.spec.duration_s
        for tier in self.tiers:
            tier.integrate(end)
        per_vol = pd.DataFrame(
            {
                "volume": self.table.ids,
                "kind": self.table.kinds,
                "device": self.table.device,
                "rpo_s": self.table.rpo_s,
                "rto_s": self.table.rto_s,
                **self.metrics.per_volume(),
            }
        )
        jobs = pd.DataFrame(self.job_log, columns=["volume", "kind", "tier", "queued_t", "snapshot_t", "complete_t", "size_bytes", "moved_bytes", "pauses", "forced", "reason"])
        counts = jobs.groupby("kind").size() if len(jobs) else pd.Series(dtype=int)
        per_vol["jobs"] = per_vol["volume"].map(jobs.groupby("volume").size()).fillna(0).astype(int) if len(jobs) else 0
        per_vol["backup_bytes"] = per_vol["volume"].map(jobs.groupby("volume")["size_bytes"].sum()).fillna(0.0) if len(jobs) else 0.0
        decisions = pd.DataFrame(
            self.decision_log, columns=["t", "volume", "action", "kind", "tier", "rate_mbps", "reason", "forced", "accepted"]
        )
        backup = pd.DataFrame(
            [
                {"tier": tier.spec.name, "kind": k.name.lower(), "bytes": float(self.moved[tier.index, k])}
                for tier in self.tiers
                for k in BackupKind
            ]
        )
        fleet = self.metrics.fleet()
        fleet.update(
            {
                "backup_tb": float(self.moved.sum() / 1e12),
                "jobs_full": int(counts.get("full", 0)),
                "jobs_incremental": int(counts.get("incremental", 0)),
                "jobs_differential": int(counts.get("differential", 0)),
                "forced_decisions": int(decisions["forced"].sum()) if len(decisions) else 0,
                "storage_cost": float(sum(t.cost for t in self.tiers)),
                "sim_wall_s": wall_s,
                "decide_wall_s": self.timing["decide_s"],
                "forecast_wall_s": self.timing["forecast_s"],
            }
        )
        series = None
        if self.spec.record_series and self.series:
            series = self._series_frame()
        return RunResult(
            fleet=fleet, volumes=per_vol, jobs=jobs, decisions=decisions, series=series, backup=backup, forecasts=self._forecast_frame()
        )

    def _series_frame(self) -> pd.DataFrame:
        t = np.concatenate([s["t"] for s in self.series])
        n = self.table.n
        cols = {"t": np.repeat(t, n), "volume": np.tile(np.array(self.table.ids, dtype=object), t.size)}
        for key in ("prod_iops", "prod_mbps", "backup_mbps", "impact", "rp_age_s", "rto_estimate_s", "utilisation"):
            cols[key] = np.concatenate([s[key] for s in self.series]).astype(np.float32).ravel()
        return pd.DataFrame(cols)

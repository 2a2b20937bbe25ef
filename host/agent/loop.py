"""The agent's main loop: every period observe, forecast, decide with the registered policy, act.

One period (default 10 s), in the simulator's order:

1. the jobs' reads since the last period are measured and finished jobs collected (a
   success is a restore point at its snapshot time; a failure is counted and backed off);
2. the devices and the host are sampled; production load (device minus backups) is
   folded into history steps, and at each closed step the forecast service updates;
3. the `DecisionContext` is built from that real state (`context.py`) and the policy
   (`schedulers.base.SCHEDULERS`, the very class the simulator runs) decides; its actions
   are applied to processes (`jobs.py`) and logged with the limit put in force;
4. the tiers' EDF check names the volumes that will miss their RPO (when it changes);
   the live status and the Prometheus gauges are refreshed. A period's writes are one
   transaction of the state.

`Agent.open` is everything done once: state and clock, which volumes and tiers this host
can serve, the throttle mechanism, restore points (the tools' own listings, so none is
lost across a restart), the jobs a previous agent left (adopted or cleaned up), the
observed history (and a `piop record` store before it), the policy (`reset()`) and the
forecast service.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable

import numpy as np

from common.units import MB
from host.agent import feasible
from host.agent.adapters import kind_name
from host.agent.config import Loaded
from host.agent.context import build_context, tier_views, volume_table
from host.agent.estimate import DirtyEstimator
from host.agent.jobs import Finished, JobTable
from host.agent.metrics import Metrics
from host.agent.observe import Sampler, StepHistory, store_prior
from host.agent.points import PointBook, gather_points
from host.agent.retry import Backoff
from host.agent.setup import resolve_host
from host.agent.state import AgentState
from host.agent.status import live
from host.agent.throttle import Mechanism, probe
from sim.types import DecisionContext, Forecast, Pause, Resume, Start, Throttle


def stderr_log(msg: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {msg}", file=sys.stderr, flush=True)


class Agent:
    def __init__(self, loaded: Loaded, log: Callable[[str], None] = stderr_log, dry_run: bool = False):
        self.loaded, self.cfg, self.log, self.dry_run = loaded, loaded.cfg, log, dry_run
        self.state: AgentState | None = None
        self.forecast: Forecast | None = None
        self.service = None
        self.metrics: Metrics | None = None
        self.verdict: feasible.Feasibility | None = None
        self.decide_s = self.forecast_s = 0.0
        self.periods = 0
        self._closed = self._changed = False

    # ------------------------------------------------------------------ start
    def open(self) -> None:
        cfg, L = self.cfg, self.loaded
        if self.dry_run:
            self.state = AgentState.open_read(L.state_dir)
            self.start_epoch = float(self.state.meta("start_epoch") or time.time()) if self.state else float(int(time.time()))
        else:
            self.state = AgentState.open(L.state_dir, cfg.name)
            self.start_epoch = self.state.start_epoch()
        s = self.host = resolve_host(L, self.log, create=not self.dry_run)
        n = len(s.vols)
        self.names = [v.name for v in s.vols]
        self.mech, pr = probe(cfg.throttle, cfg.name, s.throttle_devs[0]) if not self.dry_run else (Mechanism(cfg.name), None)
        self.probe = pr
        if pr is not None:
            self.log(f"throttle: {pr.name} ({'; '.join(f'{k}: {v}' for k, v in pr.notes.items())})")
        self.estimator = DirtyEstimator(s.paths, cfg.estimate_every)
        self.used = np.zeros(n)
        self.book = PointBook(
            self.names, [t.name for t in s.tiers], [t.restore_mbps for t in s.tiers], cfg.restore_overhead, self.start_epoch
        )
        self._load_points()
        self.table = volume_table(s.vols, s.models, s.devices, self.used)
        self.backoff = Backoff(self.names, cfg.retry.base, cfg.retry.max, None if self.dry_run else self.state)
        self.cum_written = np.zeros(n)
        self.cum_at_snap = np.zeros(n)
        self.cum_at_launch = np.zeros(n)
        self.stored = self.state.stored_bytes([t.name for t in s.tiers]) if self.state else [0.0] * len(s.tiers)
        self.jobs = JobTable(
            s.vols,
            s.tiers,
            s.adapter,
            list(zip(s.devices, s.throttle_devs)),
            None if self.dry_run else self.state,
            self.mech,
            self.backoff,
            self._estimate,
            self.book.newest_full_id,
            s.paths,
        )
        self.jobs.log = self.log
        self.sampler = Sampler(s.devices)
        self.prod = (np.zeros(n), np.zeros(n))
        self._open_history()
        self._open_policy()
        if not self.dry_run:
            self._adopt()
            if cfg.metrics.port is not None:
                self.metrics = Metrics(self.names)
                port = self.metrics.serve(cfg.metrics.port, cfg.metrics.address)
                self.log(f"metrics: http://{cfg.metrics.address}:{port}/metrics")
        self.sampler.sample(time.time(), {})  # the first sample is a baseline
        self.t_prev = time.time() - self.start_epoch

    def _load_points(self) -> None:
        rows = gather_points(self.state, self.host, self.names, self.dry_run, self.log)
        self.used[:] = self.estimator.dirty(np.full(len(self.names), np.inf), np.full(len(self.names), np.inf), time.time())[2]
        self.book.load(rows, self.used)

    def _open_history(self) -> None:
        cfg = self.cfg
        n = len(self.names)
        self.hist = StepHistory(n, cfg.history_step, [v.kind for v in self.host.vols], self.start_epoch)
        k_now = int((time.time() - self.start_epoch) // cfg.history_step)
        if self.state is not None:
            self.hist.load(self.state.history(k_now - int(cfg.history.keep // cfg.history_step)), self.names)
        self.prior = None
        if cfg.history.store and (self.hist.k_first in (None, 0)):
            self.prior = store_prior(
                self.loaded.resolve(cfg.history.store),
                self.host.devices,
                self.hist.kinds,
                cfg.history_step,
                self.start_epoch,
                cfg.history.keep,
            )
            if self.prior is not None:
                self.log(f"history: {self.prior.n_steps} steps from {cfg.history.store} before the agent's clock origin")

    def _open_policy(self) -> None:
        from forecasters.base import FORECASTERS
        from forecasters.service import ForecastService
        from schedulers.base import SCHEDULERS

        cfg = self.cfg
        self.scheduler = SCHEDULERS.create(cfg.policy, **cfg.params)
        self.scheduler.reset()
        name = self.loaded.forecaster
        if name is not None:
            fallback = FORECASTERS.create(cfg.fallback, **cfg.fallback_params)
            self.service = ForecastService(
                FORECASTERS.create(name, **cfg.forecaster_params),
                max(1, round(cfg.horizon / cfg.history_step)),
                retrain=cfg.retrain,
                fallback=fallback,
                prior=self.prior,
            )
            if self.hist.n_steps or self.prior is not None:
                self._update_forecast()

    def _adopt(self) -> None:
        """Jobs the previous agent left: adopt those still running, settle the others."""
        vidx = {v: i for i, v in enumerate(self.names)}
        tidx = {t.name: i for i, t in enumerate(self.host.tiers)}
        now = time.time()
        with self.state.tx():
            for row in self.state.open_jobs():
                v, tier = vidx.get(row["volume"]), tidx.get(row["tier"])
                if v is None or tier is None:
                    self.state.update_job(row["id"], state="dropped", end_t=now, error="volume or tier no longer served")
                    continue
                fin = self.jobs.adopt(row, v, tier, now)
                if fin is not None:
                    self._finished(fin, now, settled=True)

    # ------------------------------------------------------------------ one period
    def step(self) -> None:
        t0 = time.perf_counter()
        now = time.time()
        t = now - self.start_epoch
        dt = max(t - self.t_prev, 1e-6)
        with self.state.tx():
            io = self.jobs.measure(dt)
            self._settle(self.jobs.poll(now), now)
            self._observe(now, t, io)
            self._settle(self.jobs.start_queued(now), now)
            ctx = self.context(t)
            d0 = time.perf_counter()
            actions = self.scheduler.decide(ctx)
            self.decide_s += time.perf_counter() - d0
            for a in actions:
                self._apply(a, now)
            self._settle(self.jobs.start_queued(now), now)
            after = self.context(t)
            if self.verdict is None or actions or self._closed or self._changed:
                self._check_feasibility(after, now)
                self._changed = False
            self._publish(after, now)
            self._retain(now)
        self.t_prev = t
        self.periods += 1
        if self.metrics is not None:
            self.metrics.loop_s.set(time.perf_counter() - t0)

    def _observe(self, now: float, t: float, io: dict) -> None:
        obs = self.sampler.sample(now, io)
        self._closed = False
        if obs is None:
            return
        self.prod = (obs.iops, obs.mbps)
        self.cum_written += obs.dev_written
        vals = np.stack(
            [obs.iops, obs.mbps, np.full_like(obs.iops, obs.cpu), np.full_like(obs.iops, obs.mem), np.full_like(obs.iops, obs.net)]
        )
        closed = self.hist.add(self.t_prev, t, vals)
        if closed:
            self._closed = True
            self.state.add_history([(k, name, *map(float, row[:, v])) for k, row in closed for v, name in enumerate(self.names)])
            if self.service is not None:
                self._update_forecast()

    def _update_forecast(self) -> None:
        f0 = time.perf_counter()
        self.forecast = self.service.update(self.hist.history())
        self.forecast_s += time.perf_counter() - f0

    def context(self, t: float) -> DecisionContext:
        return build_context(
            t,
            self.cfg,
            self.start_epoch,
            self.table,
            tier_views(self.host.tiers, self.jobs, self.stored),
            self.book,
            self.jobs,
            self.prod,
            self._dirty,
            self.hist.history,
            self.forecast,
        )

    def _dirty(self) -> tuple[np.ndarray, np.ndarray]:
        incr, diff, used = self.estimator.dirty(self.book.last_snap + self.start_epoch, self.book.last_full + self.start_epoch, time.time())
        if np.any(used != self.used):
            self.used[:] = used
            for v in range(len(self.names)):
                self.book.refresh(v, used[v])
        return incr, diff

    def _estimate(self, v: int, kind) -> tuple[float, float]:
        """(bytes the job should read, device bytes written since the last snapshot) at a job's start."""
        incr, diff = self._dirty()
        self.cum_at_launch[v] = self.cum_written[v]
        size = {0: self.used[v], 1: incr[v], 2: diff[v]}[int(kind)]
        return float(size), float(self.cum_written[v] - self.cum_at_snap[v])

    # ------------------------------------------------------------------ actions & outcomes
    def _apply(self, a, now: float) -> None:
        v = a.volume
        ok, limit = self.jobs.apply(a, now)
        name = self.names[v]
        action = type(a).__name__.lower()
        kind = kind_name(a.kind) if isinstance(a, Start) else ""
        tier = self.host.tiers[a.tier].name if isinstance(a, Start) else ""
        forced = bool(getattr(a, "forced", False))
        if isinstance(a, Start) and not ok and limit.startswith("backing off") and not self.backoff.first_refusal(v):
            return  # refused again during the same back-off: logged once
        self.state.add_decision(
            t=now,
            volume=name,
            action=action,
            kind=kind,
            tier=tier,
            rate_mbps=getattr(a, "rate_mbps", None),
            forced=int(forced),
            accepted=int(ok),
            limit_text=limit,
            reason=a.reason,
        )
        if self.metrics is not None:
            self.metrics.decisions.labels(action, str(forced).lower()).inc()
        rate = getattr(a, "rate_mbps", None)
        r = "unthrottled" if rate is None else f"{rate:.1f} MB/s"
        if isinstance(a, Start):
            head = "FORCED start" if forced else "start"
            self.log(f"{name}: {head} {kind} to {tier} at {r}{'' if ok else ' refused'} [{limit}]: {a.reason}")
        elif isinstance(a, Throttle | Resume):
            self.log(f"{name}: {action} to {r}{'' if ok else ' refused'} [{limit}]: {a.reason}")
        elif isinstance(a, Pause):
            self.log(f"{name}: pause{'' if ok else ' refused'} [{limit}]: {a.reason}")

    def _settle(self, fins: list[Finished], now: float) -> None:
        """Outcomes of jobs that ended, those that could not start included."""
        fins = fins + self.jobs.failed_starts
        self.jobs.failed_starts = []
        for fin in fins:
            self._finished(fin, now)

    def _finished(self, fin: Finished, now: float, settled: bool = False) -> None:
        job, out = fin.job, fin.outcome
        name = self.names[job.v]
        self._changed = True
        took = now - job.start_t if job.start_t else 0.0
        for note in out.notes:
            self.log(f"{name}: job {job.id}: {note}")
        if self.metrics is not None:
            self.metrics.backups.labels(name, "ok" if out.ok else "failed").inc()
        if out.ok:
            point = {
                "volume": name,
                "tier": job.spec.tier,
                "snapshot_id": out.snapshot_id or f"job-{job.id}",
                "kind": kind_name(job.kind),
                "snapshot_t": fin.snapshot_t,
                "bytes": job.read_bytes or job.est_bytes,
                "source": "restic" if job.adapter.self_contained else "command",
                "job": job.id,
            }
            self.state.add_points([point])
            self.book.add(point, self.used[job.v])
            self.backoff.succeeded(job.v)
            self.cum_at_snap[job.v] = self.cum_at_launch[job.v]
            self.stored[job.tier] += float(out.added_bytes or job.read_bytes or 0.0)
            tool = (
                ""
                if out.processed_bytes is None
                else f"; restic processed {out.processed_bytes / MB:.1f} MB, added {(out.added_bytes or 0) / MB:.1f} MB"
            )
            self.log(
                f"{name}: job {job.id} ({kind_name(job.kind)} to {job.spec.tier}) {'found ' if settled else ''}done"
                f"{'' if settled else f' in {took:.1f} s'}: restore point {point['snapshot_id']}{tool}; read {job.read_bytes / MB:.1f} MB "
                f"from the device, estimated {job.est_bytes / MB:.1f} MB (device writes since the last snapshot "
                f"{job.dev_written / MB:.1f} MB)"
            )
            return
        wait = self.backoff.failed(job.v, now, out.error or "failed")
        self.log(f"{name}: job {job.id} failed: {out.error}; retry in {wait:.0f} s (failures: {self.backoff.f[job.v].total})")
        if out.locked or "killed" in (out.error or ""):
            msg = job.adapter.cleanup()
            if msg:
                self.log(f"{name}: {msg}")

    # ------------------------------------------------------------------ reporting
    def _check_feasibility(self, ctx: DecisionContext, now: float) -> None:
        incr, _ = ctx.dirty_bytes()
        v = feasible.check(ctx, incr, now)
        old = self.verdict
        self.verdict = v
        if v.warning() and (old is None or {m.volume for m in old.misses} != {m.volume for m in v.misses}):
            self.log(v.warning())
        elif not v.warning() and old is not None and old.misses:
            self.log("the backup tiers can meet every RPO again")

    def _publish(self, ctx: DecisionContext, now: float) -> None:
        self.state.put_status("live", live(self, ctx, now))
        if self.metrics is not None:
            self.metrics.update(ctx, self.forecast, {m.volume for m in (self.verdict.misses if self.verdict else [])})

    def _retain(self, now: float) -> None:
        if now - getattr(self, "_last_retain", 0.0) < 3600.0:
            return
        self._last_retain = now
        keep = self.cfg.history.keep
        self.state.retain(int((now - self.start_epoch - keep) // self.cfg.history_step), now - keep)

    # ------------------------------------------------------------------ run & stop
    def run(self, stop: threading.Event, duration: float | None = None) -> None:
        """Decide every period until `stop` is set (or `duration` seconds passed)."""
        period = self.cfg.period
        t0 = time.monotonic()
        k = 1
        while not stop.is_set():
            if duration is not None and time.monotonic() - t0 >= duration:
                break
            wait = t0 + k * period - time.monotonic()
            if wait > 0 and stop.wait(wait):
                break
            k = max(k + 1, int((time.monotonic() - t0) // period) + 1)  # a stalled period is skipped, not repeated
            self.step()

    def close(self) -> None:
        """Stop: kill every running backup's process group (and clean up after it), keep the state."""
        if self.state is None:
            return
        if not self.dry_run and hasattr(self, "jobs"):  # (`open` may have stopped before its jobs existed)
            now = time.time()
            with self.state.tx():
                for fin in self.jobs.stop_all(now):
                    self.log(f"{self.names[fin.job.v]}: job {fin.job.id} killed (the agent stops)")
                    msg = fin.job.adapter.cleanup()
                    if msg:
                        self.log(f"{self.names[fin.job.v]}: {msg}")
                self.state.put_status("policy_summary", self.scheduler.summary())
                if self.service is not None:
                    self.state.put_status("forecast_summary", self.service.summary())
        if self.metrics is not None:
            self.metrics.close()
        self.state.close()
        self.state = None

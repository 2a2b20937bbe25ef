"""`predictive`: the PIOP scheduler class — one decision from observation to actions.

A decision period costs a few vector operations over volumes; whenever the forecast
changes (every history step) or a volume's job ends, each idle volume is planned again
(`windows`, `kinds`, `placement`), and running jobs are re-throttled, paused or resumed
(`control`). The run's settings (impact threshold, device headroom, restore overhead,
history step) come from the context, so the plan uses the values the run is scored with.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from schedulers.base import SCHEDULERS, BaseScheduler
from schedulers.predictive import reasons
from schedulers.predictive.control import control, surprised
from schedulers.predictive.forecast import Frame, flat_forecast, flat_steps, plan_horizon, same_step, step_index
from schedulers.predictive.kinds import DIFF, FULL, GrowthLaw, KindChoice, KindChooser, full_restore_s
from schedulers.predictive.params import PredictiveParams
from schedulers.predictive.placement import Contention, TierLoad, TierTable
from schedulers.predictive.windows import Plan, plan_windows
from sim.types import Action, BackupKind, DecisionContext, Forecast, JobState, Pause, Start, Throttle, impact

_NONE = int(JobState.NONE)

#: what `summary()` counts: planning rounds, starts by the rule that chose them, control actions
COUNTERS = (
    "plans",  # planning rounds
    "planned_volumes",  # volumes planned, summed over rounds
    "fallback_plans",  # rounds planned on a flat forecast of observed load (no forecast yet)
    "fallback_starts",  # starts chosen on it
    "starts_forced",  # RPO over impact: no window meets the deadline under the threshold
    "starts_late",  # the last start that still meets the deadline at the threshold
    "starts_contention",  # early, so every due backup still gets a tier slot
    "starts_quiet",  # opportunistic, much cheaper than the horizon's median
    "starts_lookahead",  # the cheapest sequence of backups over the horizon begins now
    "starts_flat_price",  # flat predicted price: the latest start that meets the deadline
    "starts_window",  # greedy: the cheapest window is now
    "throttles",
    "pauses",
    "resumes",
)


@SCHEDULERS.register("predictive")
class PredictiveScheduler(BaseScheduler):
    name = "predictive"
    uses_forecasts = True
    default_forecaster = None  # with no forecaster named it plans on observed load

    def __init__(self, **params):
        self.params = PredictiveParams(**params)
        self.reset()

    def reset(self) -> None:
        self._n = -1  # per-volume state is rebuilt at the next decision
        self._counts = dict.fromkeys(COUNTERS, 0)

    def summary(self) -> dict[str, Any]:
        return dict(self._counts)

    def threshold(self, ctx: DecisionContext) -> float:
        """The impact rates are planned for (the threshold x `impact_target`)."""
        return self.params.planning_threshold(ctx.impact_threshold)

    # ------------------------------------------------------------------ state
    def _init(self, ctx: DecisionContext) -> None:
        n = ctx.volumes.n
        p = self.params
        self._n = n
        self._fc: Forecast | None = None  # the forecast plans were made on
        self._fc_src: Forecast | None = None  # the ctx.forecast it came from (None: a flat one)
        self._step_key = None
        self._last_t: float | None = None
        self._prev_state = np.full(n, -1, np.int8)
        self._prev_snap = np.asarray(ctx.last_snapshot_t, float).copy()
        self._wake = np.full(n, -np.inf)  # plan again at the latest then
        self._ewma = np.stack([np.asarray(ctx.prod_iops, float), np.asarray(ctx.prod_mbps, float)], -1)
        self._obs = self._ewma.copy()
        self._growth = GrowthLaw(n, p)
        self._kinds = KindChooser(n)
        self._tiers = TierTable(ctx, p)
        self._queue = Contention(n, float(sum(t.slots for t in ctx.tiers)))
        vt = ctx.volumes
        self._vmax = (vt.max_iops.astype(float), vt.max_mbps.astype(float))

    def _observe(self, ctx: DecisionContext) -> float:
        """Update the observed-load EWMA and last tick; returns the seconds since the last decision."""
        t = ctx.t
        dt = ctx.tick_s if self._last_t is None else max(ctx.tick_s, t - self._last_t)
        self._last_t = t
        a = 1.0 if ctx.tick <= 1 else min(1.0, dt / self.params.ewma_s)  # t=0 observes nothing yet
        self._ewma[:, 0] += a * (ctx.prod_iops - self._ewma[:, 0])
        self._ewma[:, 1] += a * (ctx.prod_mbps - self._ewma[:, 1])
        self._obs = np.stack([np.asarray(ctx.prod_iops, float), np.asarray(ctx.prod_mbps, float)], -1)
        return dt

    def _forecast(self, ctx: DecisionContext) -> tuple[Forecast, Forecast | None]:
        """(the forecast to plan on, the ctx.forecast it is; None for a flat one of observed load)."""
        fc = ctx.forecast
        if fc is not None and fc.horizon > 0:
            return fc, fc
        p = self.params
        step = ctx.history_step_s
        if self._fc_src is None and self._fc is not None and same_step(self._fc.origin_t, ctx.t, step):
            return self._fc, None
        return flat_forecast(ctx.t, step, flat_steps(p.fallback_horizon_h, step), self._ewma, self._ewma * p.fallback_upper), None

    # ------------------------------------------------------------------ decide
    def decide(self, ctx: DecisionContext) -> list[Action]:
        if self._n != ctx.volumes.n:
            self._init(ctx)
        p = self.params
        t = ctx.t
        dt = self._observe(ctx)
        fc, src = self._forecast(ctx)
        h = plan_horizon(fc, p.horizon_h)
        i0, elapsed = step_index(fc, t, h)
        fresh = elapsed >= ctx.tick_s - 1e-9  # the last tick lies inside the current step
        step_key = (id(src) if src is not None else None, fc.origin_t, i0)
        new_fc = step_key != self._step_key
        if new_fc:
            self._fc, self._fc_src, self._step_key = fc, src, step_key
        state = ctx.job_state
        changed = state != self._prev_state
        snap = ctx.last_snapshot_t
        ended = (state == _NONE) & (changed | (snap != self._prev_snap))  # a job ended (maybe within one tick)
        self._prev_snap = snap.copy()
        self._growth.observe(ctx.prod_iops, dt)
        self._prev_state = state.copy()
        replan = (state == _NONE) & (new_fc | ended | (self._wake <= t))
        obs = self._obs if p.nowcast and fresh else None
        fr = Frame(ctx, fc, src is None, h, i0, elapsed, self.threshold(ctx), obs, self._vmax[0], self._vmax[1])
        actions: list[Action] = []
        if replan.any():
            actions += self._start(fr, np.flatnonzero(replan))
        if new_fc:
            actions += self._control(fr)
        elif obs is not None:  # load observed above the forecast: re-throttle those jobs now
            surprise = surprised(p, fr)
            if surprise.size:
                actions += self._control(fr, surprise)
        return actions

    def _control(self, fr: Frame, vols: np.ndarray | None = None) -> list[Action]:
        out = control(self.params, fr, reasons.forecast(fr.fc, fr.flat), vols)
        for a in out:
            self._counts["throttles" if isinstance(a, Throttle) else "pauses" if isinstance(a, Pause) else "resumes"] += 1
        return out

    # ------------------------------------------------------------------ starting jobs
    def _start(self, fr: Frame, vols: np.ndarray) -> list[Action]:
        """Plan idle volumes `vols`; start those whose plan (or tier contention) says now."""
        p, ctx = self.params, fr.ctx
        self._counts["plans"] += 1
        self._counts["planned_volumes"] += int(vols.size)
        self._counts["fallback_plans"] += int(fr.flat)
        incr_all, diff_all = ctx.dirty_bytes()
        self._growth.refit(incr_all)
        self._kinds.observe(ctx)
        incr, diff = incr_all[vols], diff_all[vols]
        ch = self._kinds.choose(p, ctx, vols, incr, diff, self._tiers.bulk_restore)
        used = ctx.volumes.used_bytes[vols]
        sizes = np.where(ch.kind == FULL, used, np.where(ch.kind == DIFF, diff, incr))
        load = TierLoad(ctx.tiers)
        share = np.full(vols.size, self._tiers.start_share(load))
        kappa, alpha = self._growth.law(vols, incr)
        plan = plan_windows(p, fr, vols, sizes, np.where(ch.kind == FULL, 0.0, kappa), share, alpha, self._growth.io_since)
        if ch.soft_full.any():
            self._soft_fulls(fr, vols, used, share, alpha, plan, ch, sizes)
        self._wake[vols] = plan.wake_t
        self._queue.note_plan(vols, plan)
        crowd, crowd_why = self._queue.crowded(ctx, vols, p.min_rate_mbps)
        go = np.flatnonzero(plan.start_now | crowd)
        if go.size == 0:
            return []
        go = go[np.argsort(plan.latest_t[go], kind="stable")]  # most urgent first: they queue first
        self._queue.note_started(plan.slot_s[go])
        desc = reasons.forecast(fr.fc, fr.flat)
        return [self._launch(fr, plan, j, int(vols[j]), ch, sizes, bool(crowd[j]), crowd_why, load, desc) for j in go.tolist()]

    def _soft_fulls(self, fr: Frame, vols, used, share, alpha, plan: Plan, ch: KindChoice, sizes: np.ndarray) -> None:
        """A full due by the full-every rule waits for a window it fits; until then the usual kind."""
        p, ctx = self.params, fr.ctx
        sel = np.flatnonzero(ch.soft_full)
        early = KindChooser.full_early(p, ctx, vols[sel])
        fplan = plan_windows(p, fr, vols[sel], used[sel], np.zeros(sel.size), share[sel], alpha[sel], self._growth.io_since, greedy=True, gate=early)
        take = fplan.feasible_any
        if take.any():
            idx = sel[take]
            ch.kind[idx] = FULL
            sizes[idx] = used[idx]
            ch.rto_after[idx] = full_restore_s(used[idx], self._tiers.bulk_restore, ctx.restore_overhead_s)
            plan.overlay(idx, fplan, take)

    def _launch(self, fr: Frame, plan: Plan, j: int, v: int, ch: KindChoice, sizes, crowd: bool, crowd_why: str, load: TierLoad, desc: str) -> Start:
        """The start of planned job `j` (volume `v`): tier, rate and the reason."""
        p, ctx = self.params, fr.ctx
        tier, tier_why = self._tiers.pick(ctx, plan, j, v, sizes[j], ch.rto_after[j], load)
        k = BackupKind(int(ch.kind[j]))
        what = reasons.kind(k, ctx.volumes.rto_s[v], ctx.rto_estimate_s[v], ch.rto_after[j], ch.after_incr[j], ch.lim[j], ch.soft_full[j], p.full_every_h)
        lo = p.min_rate_mbps
        if plan.forced[j]:
            rate = float(np.clip(max(plan.need_rate[j], plan.rate_now[j], lo), lo, max(plan.max_rate[j], lo)))
        else:
            rate = float(max(plan.rate_now[j], lo))
            if plan.late[j]:
                rate = float(min(max(plan.need_rate[j], rate), max(plan.max_rate[j], lo)))
        up = plan.up_now[j]
        facts = reasons.StartFacts(
            kind=k,
            size=sizes[j],
            rate=rate,
            impact=float(impact(up[0], up[1], rate, self._vmax[0][v], self._vmax[1][v])),
            quantile=round(100 * fr.fc.quantile),
            threshold=fr.threshold / p.impact_target,
            left_s=float(plan.deadline[j]) - ctx.t,
            what=what,
            tier=tier_why,
            forecast=desc,
        )
        self._growth.snapshot(v)  # its snapshot resets changed-block tracking
        self._counts["fallback_starts"] += int(fr.flat)
        if plan.forced[j]:
            self._counts["starts_forced"] += 1
            return Start(v, k, tier, rate, reason=reasons.forced(facts, plan.need_rate[j], plan.rate_thr[j]), forced=True)
        head, counter = self._head(fr, plan, j, crowd, crowd_why)
        self._counts[counter] += 1
        return Start(v, k, tier, rate, reason=reasons.planned(facts, head, plan.dur_now[j]))

    def _head(self, fr: Frame, plan: Plan, j: int, crowd: bool, crowd_why: str) -> tuple[str, str]:
        """(the rule that chose a non-forced start, in words; its counter)."""
        if plan.late[j]:
            return reasons.late(plan.need_rate[j]), "starts_late"
        if crowd and not plan.start_now[j]:
            return crowd_why, "starts_contention"
        if plan.quiet[j]:
            return reasons.quiet(self.params, plan.cost_now[j], plan.cost_median[j]), "starts_quiet"
        if plan.path[j] is not None and np.isnan(plan.cost_wait[j]):
            return reasons.flat_price(plan.cost_now[j]), "starts_flat_price"
        if plan.path[j] is not None:
            return reasons.sequence(fr.ctx.t, plan.path[j], plan.cost_best[j], plan.cost_wait[j], plan.cost_now[j]), "starts_lookahead"
        return reasons.window(plan.cost_now[j], plan.cost_best[j], plan.cost_median[j]), "starts_window"

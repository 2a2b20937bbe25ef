"""`predictive`: the PIOP scheduler class — one decision from observation to actions.

A decision period costs a few vector operations over volumes; whenever the forecast
changes (every history step) or a volume's job ends, each idle volume is planned again
(`windows`, `kinds`, `placement`), and running jobs are re-throttled, paused or resumed
(`control`). Every planning round first places every volume's next restore point on the
tiers earliest-deadline-first (`fleet`): RPO first, so the most urgent volumes take the
free slots, and fulls or early backups start only where capacity is left for them. The
run's settings (impact threshold, device headroom, restore overhead, history step) come
from the context, so the plan uses the values the run is scored with.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from schedulers.base import SCHEDULERS, BaseScheduler
from schedulers.predictive import reasons
from schedulers.predictive.control import control, surprised
from schedulers.predictive.fleet import Demand, FleetEDF, FleetState
from schedulers.predictive.forecast import Frame, filled, flat_forecast, flat_steps, plan_horizon, same_step, step_index
from schedulers.predictive.kinds import DIFF, FULL, INCR, GrowthLaw, KindChoice, KindChooser, full_restore_s
from schedulers.predictive.params import PredictiveParams
from schedulers.predictive.placement import TierLoad, TierTable
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
    "starts_rpo_first",  # before its plan: the fleet's earliest-deadline-first schedule needs it now
    "starts_incremental_first",  # a fresh restore point first, so the full or differential fits after it
    "starts_empty",  # nothing changed: an empty incremental renews the restore point
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
        """Counters, and the fleet's saturation report (who misses, by how much, what would suffice)."""
        out: dict[str, Any] = dict(self._counts)
        if self._n >= 0:
            out["saturation"] = self._fleet.log.summary()
        return out

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
        self._filled: tuple[Forecast | None, Forecast | None] = (None, None)  # (a ctx.forecast, it with gaps filled)
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
        self._fleet = FleetEDF(ctx, p)
        self._pending = np.zeros(n, bool)  # urgent volumes waiting for a tier slot
        self._tight = False  # the last round found the fleet's EDF schedule short of capacity
        self._why = np.zeros(n, np.int8)  # why a volume's kind changed this round: 1 incremental first
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
            if self._filled[0] is not fc:  # a forecast with gaps (NaN) plans on the observed load there
                self._filled = (fc, filled(fc, self._ewma, self._ewma * self.params.fallback_upper))
            return self._filled[1], fc
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
        self._dispatch_pending(ctx, replan)
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
        out = control(self.params, fr, reasons.forecast(fr.fc, fr.flat), vols, self._tight)
        for a in out:
            self._counts["throttles" if isinstance(a, Throttle) else "pauses" if isinstance(a, Pause) else "resumes"] += 1
        return out

    # ------------------------------------------------------------------ starting jobs
    def _dispatch_pending(self, ctx: DecisionContext, replan: np.ndarray) -> None:
        """Urgent volumes held for a slot: the most urgent plan again as slots free up."""
        held = np.flatnonzero(self._pending & (ctx.job_state == _NONE) & ~replan)
        if held.size == 0:
            return
        room = self._fleet.allowance(ctx)
        if room > 0:
            rpo = ctx.volumes.rpo_s[held]
            due = ctx.last_snapshot_t[held] + rpo - self.params.margin(rpo)
            replan[held[np.argsort(due, kind="stable")[:room]]] = True

    def _demand(self, fr: Frame, incr_all: np.ndarray, diff_all: np.ndarray, tight: bool) -> Demand:
        """Every volume's next backup (the kind its RPO and RTO need, grown to its deadline) and its bytes per RPO period."""
        p, ctx = self.params, fr.ctx
        allv = np.arange(ctx.volumes.n)
        ch = self._kinds.choose(p, ctx, allv, incr_all, diff_all, self._tiers.bulk_restore, tight=tight)
        used = ctx.volumes.used_bytes
        rpo = ctx.volumes.rpo_s
        left = np.clip(np.nan_to_num(ctx.last_snapshot_t + rpo - p.margin(rpo) - ctx.t, nan=0.0, neginf=0.0), 0.0, None)
        io_rate = np.nan_to_num(self._ewma[:, 0])
        grown = self._growth.grown(allv, incr_all, io_rate * left)
        now = np.where(ch.kind == FULL, used, np.where(ch.kind == DIFF, diff_all + grown - incr_all, grown))
        period = self._growth.per_period(allv, incr_all, io_rate * (rpo - p.margin(rpo)))
        grow = 1.0 + p.size_margin
        return Demand(np.nan_to_num(now) * grow, np.nan_to_num(period) * grow)

    def _assess(self, fr: Frame, incr_all: np.ndarray, diff_all: np.ndarray) -> FleetState:
        """The fleet's EDF view; while tight, assessed again on the smaller kinds RPO first takes."""
        view = self._fleet.assess(fr, self._demand(fr, incr_all, diff_all, False))
        if view.tight:
            view = self._fleet.assess(fr, self._demand(fr, incr_all, diff_all, True))
        return view

    def _start(self, fr: Frame, vols: np.ndarray) -> list[Action]:
        """Plan idle volumes `vols`; start those the fleet's EDF schedule or their plan says start now."""
        p, ctx = self.params, fr.ctx
        self._counts["plans"] += 1
        self._counts["planned_volumes"] += int(vols.size)
        self._counts["fallback_plans"] += int(fr.flat)
        incr_all, diff_all = ctx.dirty_bytes()
        self._growth.refit(incr_all)
        self._kinds.observe(ctx)
        view = self._assess(fr, incr_all, diff_all)
        self._pending[:] = view.urgent
        self._tight = view.tight
        incr, diff = incr_all[vols], diff_all[vols]
        ch = self._kinds.choose(p, ctx, vols, incr, diff, self._tiers.bulk_restore, tight=view.tight)
        used = ctx.volumes.used_bytes[vols]
        sizes = np.where(ch.kind == FULL, used, np.where(ch.kind == DIFF, diff, incr))
        load = TierLoad(ctx, p.min_rate_mbps, p.full_slots_frac)
        share = np.full(vols.size, self._tiers.start_share(load))
        kappa, alpha = self._growth.law(vols, incr)
        plan = plan_windows(p, fr, vols, sizes, np.where(ch.kind == FULL, 0.0, kappa), share, alpha, self._growth.io_since)
        self._why[vols] = 0
        self._first = np.zeros(vols.size, bool)  # an incremental now, so the full that is due fits after it
        if ch.soft_full.any():
            self._soft_fulls(fr, vols, used, share, alpha, plan, ch, sizes, view, load)
        self._incremental_first(fr, vols, incr, share, kappa, alpha, plan, ch, sizes)
        self._wake[vols] = plan.wake_t
        go, urgent = self._dispatch(fr, view, vols, plan, sizes, ch, load.full_room())
        if go.size == 0:
            return []
        desc = reasons.forecast(fr.fc, fr.flat)
        return [self._launch(fr, plan, j, int(vols[j]), ch, sizes, bool(urgent[j]), view, load, desc) for j in go.tolist()]

    def _dispatch(
        self, fr: Frame, view: FleetState, vols: np.ndarray, plan: Plan, sizes: np.ndarray, ch: KindChoice, full_room: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """(which planned volumes start now, in order; which of `vols` are urgent).

        Urgent volumes (the fleet's EDF prefix that would be late, and those whose own plan
        has no window left) take the tiers' free slots in deadline order; the rest wait for
        the next free slot. Starts the RPO does not need now (the plan's cheap windows) take
        what is left (a full or differential only when the fleet's schedule admits it); those
        left without a slot go as slots free up (they plan again then)."""
        p, ctx = self.params, fr.ctx
        # its plan has no later window: now or never (or already too late)
        last = ((plan.start_now & (plan.latest_t <= ctx.t)) | ~plan.feasible_any) & ~ch.soft_full
        urgent = view.urgent[vols] | (last & (ctx.job_state[vols] == _NONE))
        room = self._fleet.allowance(ctx)
        ess = np.flatnonzero(urgent)
        ess = ess[np.argsort(view.deadline[vols[ess]], kind="stable")]
        take, held = ess[:room], ess[room:]
        log = self._fleet.log.counts
        log["urgent_starts"] += int(take.size)
        log["held_for_slots"] += int(held.size)
        self._pending[vols[take]] = False
        self._pending[vols[held]] = True
        self._wake[vols[held]] = np.inf  # planned again when a slot frees (or the forecast moves on)
        room -= take.size
        opt = np.flatnonzero(plan.start_now & ~urgent)
        opt = opt[np.argsort(plan.latest_t[opt], kind="stable")]
        chosen = []
        for j in opt.tolist():
            if room <= 0:  # no slot for it now: it goes when one frees, in deadline order
                self._pending[vols[j]] = True
                self._wake[vols[j]] = np.inf
                continue
            # an incremental early is the volume's own next job done sooner (on a slot no urgent job
            # takes now); a full or differential is more work, taken only where the schedule has room
            if ch.soft_full[j] and full_room <= 0:  # planned again next round (as the usual kind if still no room)
                continue
            if ch.kind[j] == INCR or view.admits(float(plan.slot_s[j]), float(sizes[j]), float(max(plan.rate_now[j], p.min_rate_mbps))):
                chosen.append(j)
                room -= 1
                full_room -= int(ch.soft_full[j])
            else:
                log["optional_refused"] += 1
        go = np.concatenate([take, np.array(chosen, np.int64)]).astype(np.int64)
        return go, urgent

    def _soft_fulls(
        self, fr: Frame, vols, used, share, alpha, plan: Plan, ch: KindChoice, sizes: np.ndarray, view: FleetState, load: TierLoad
    ) -> None:
        """A full due by the full-every rule waits for a window it fits (leaving the next backup room
        before the full's own restore point runs out) and for capacity the fleet can spare (and a
        tier where fulls hold under `full_slots_frac` of the slots); until then the usual kind."""
        p, ctx = self.params, fr.ctx
        ch.soft_full &= ~view.urgent[vols]  # a volume the fleet needs protected now takes its usual kind
        sel = np.flatnonzero(ch.soft_full)
        if sel.size == 0:
            return
        early = KindChooser.full_early(p, ctx, vols[sel])
        tail = np.where(np.isfinite(plan.dur_now[sel]), plan.dur_now[sel] * p.duration_safety, 0.0)  # the incremental after it
        fplan = plan_windows(
            p,
            fr,
            vols[sel],
            used[sel],
            np.zeros(sel.size),
            share[sel],
            alpha[sel],
            self._growth.io_since,
            greedy=True,
            gate=early,
            tail_s=tail,
        )
        room = load.full_room() > 0
        # overdue (never while the fleet is tight), no window at the planned rates: now, at the rate its deadline
        # needs, where the device gives that (and, as every full, where a slot is free: `take` below)
        forced = ch.overdue[sel] & ~fplan.feasible_any & (fplan.max_rate >= fplan.need_rate)
        fplan.start_now[forced], fplan.forced[forced] = True, True
        take = (fplan.feasible_any | forced) & room
        for q in np.flatnonzero(take).tolist():
            rate = float(max(fplan.need_rate[q] if forced[q] else fplan.rate_now[q], p.min_rate_mbps))
            take[q] = view.admits(float(fplan.slot_s[q]), float(used[sel[q]]), rate) if fplan.start_now[q] else not view.tight
        ch.deferred[sel[fplan.feasible_any & ~take]] = True
        # a full whose window is now, but which only a fresh restore point leaves time for: an incremental first
        late = np.flatnonzero(~fplan.feasible_any & ~forced & (ctx.rp_age_s[vols[sel]] >= 2 * ctx.tick_s))
        if late.size and room and not view.tight:
            fresh = plan_windows(
                p,
                fr,
                vols[sel[late]],
                used[sel[late]],
                np.zeros(late.size),
                share[sel[late]],
                alpha[sel[late]],
                self._growth.io_since,
                greedy=True,
                gate=early[late],
                tail_s=tail[late],
                snap_t=np.full(late.size, ctx.t),
            )
            fits = (fresh.start_now & fresh.feasible_any) | (ch.overdue[sel[late]] & (fresh.max_rate >= fresh.need_rate))
            first = sel[late[fits]]
            plan.start_now[first] = True
            self._first[first] = True
        ch.soft_full[sel[~take]] = False  # the usual kind, for now
        if take.any():
            idx = sel[take]
            ch.kind[idx] = FULL
            sizes[idx] = used[idx]
            ch.rto_after[idx] = full_restore_s(used[idx], self._tiers.bulk_restore, ctx.restore_overhead_s)
            plan.overlay(idx, fplan, take)

    def _incremental_first(self, fr: Frame, vols, incr, share, kappa, alpha, plan: Plan, ch: KindChoice, sizes: np.ndarray) -> None:
        """A full or differential that cannot complete before the current restore point's deadline,
        but would from a fresh one, follows an incremental started now (the volume has one job at a
        time: a long job started late holds it while the restore point ages past the RPO)."""
        p, ctx = self.params, fr.ctx
        rpo = ctx.volumes.rpo_s[vols]
        chain = np.isfinite(ctx.rto_estimate_s[vols]) & np.isfinite(ctx.last_full_t[vols])
        fits_fresh = np.isfinite(plan.dur_now) & (plan.dur_now * p.duration_safety <= rpo - p.margin(rpo))
        self._why[vols[self._first]] = 1
        cand = np.flatnonzero((ch.kind != INCR) & ~plan.feasible_any & chain & fits_fresh & (ctx.rp_age_s[vols] >= 2 * ctx.tick_s))
        if cand.size == 0:
            return
        iplan = plan_windows(p, fr, vols[cand], incr[cand], kappa[cand], share[cand], alpha[cand], self._growth.io_since)
        take = iplan.feasible_any
        if not take.any():
            return
        idx = cand[take]
        plan.overlay(idx, iplan, take)
        plan.start_now[idx] = True
        ch.split[idx] = False
        ch.kind[idx] = INCR
        sizes[idx] = incr[idx]
        ch.rto_after[idx] = ch.after_incr[idx]
        self._why[vols[idx]] = 1

    def _launch(
        self, fr: Frame, plan: Plan, j: int, v: int, ch: KindChoice, sizes, urgent: bool, view: FleetState, load: TierLoad, desc: str
    ) -> Start:
        """The start of planned job `j` (volume `v`): tier, rate and the reason."""
        p, ctx = self.params, fr.ctx
        tier, tier_why = self._tiers.pick(ctx, plan, j, v, sizes[j], ch.rto_after[j], load, int(ch.kind[j]), bool(ch.soft_full[j]))
        k = BackupKind(int(ch.kind[j]))
        what = reasons.kind(
            k, ctx.volumes.rto_s[v], ctx.rto_estimate_s[v], ch.rto_after[j], ch.after_incr[j], ch.lim[j], ch.soft_full[j], p.full_every_h
        )
        if ch.overdue[j] and k == BackupKind.FULL and plan.forced[j]:
            what = reasons.overdue_full(p.full_every_h, ctx.t - ctx.last_full_t[v], p.full_late_h)
            self._fleet.log.counts["fulls_overdue"] += 1
        if ch.deferred[j]:
            what += f"; full due (every {p.full_every_h:g} h) deferred: no capacity to spare for it"
            self._fleet.log.counts["fulls_deferred"] += 1
        if ch.split[j]:
            what += "; smaller than the RTO margin asks: no capacity to spare for a full (RTO still holds)"
            self._fleet.log.counts["kinds_split"] += 1
        rate = plan.start_rate(j, urgent, p.min_rate_mbps)
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
        self._fleet.started_t[v] = ctx.t
        self._counts["fallback_starts"] += int(fr.flat)
        tail = f"; {view.note}" if view.note else ""
        if plan.forced[j] and facts.impact > facts.threshold:
            self._counts["starts_forced"] += 1
            return Start(v, k, tier, rate, reason=reasons.forced(facts, plan.need_rate[j], plan.rate_thr[j]) + tail, forced=True)
        head, counter = reasons.start_rule(p, plan, j, bool(self._why[v] == 1), float(ctx.rp_age_s[v]), urgent, view.urgent_why, ctx.t)
        self._counts[counter] += 1
        return Start(v, k, tier, rate, reason=reasons.planned(facts, head, plan.dur_now[j]) + tail)

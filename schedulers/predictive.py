"""`predictive`: the PIOP scheduler — when, how hard, what and where, from load forecasts.

Every decision period (cheap: a few vector operations over volumes) and, whenever the
forecast changes (every history step) or a volume's job ends, a *plan* per idle volume
(vectorised over volumes, over the forecast steps):

- **how hard**: in forecast step h a backup may read at `rate_for_impact(upper[h],
  impact_target x threshold)` MB/s — the upper (e.g. p90) forecast, not the mean, so the
  predicted impact stays under the acceptable-impact threshold when load comes in high;
  also capped by the tier's ingest share and the device headroom (`max_util`).
- **when**: for every candidate start (now, and each later forecast step) the job of the
  estimated size runs step by step at those rates; its *cost* is the production I/O it
  would slow down times the impact it would cause (the quantity the run's IO-weighted
  impact sums), from the mean forecast. A candidate is feasible when the job, with its
  duration stretched by `duration_safety`, completes `margin` before the RPO deadline
  (newest snapshot + RPO). The plan picks the *latest* feasible start whose cost is within
  `window_tolerance` of the cheapest (later starts push the next deadline out) and starts
  now only if that is now. Quiet periods add backups: when the job now costs at most
  `quiet_ratio` x the median over the horizon and the restore point is older than
  `quiet_min_interval_frac` x RPO, it starts now (backups get more frequent when quiet,
  so less is left for busy periods). Sustained-load steps are penalised.
- **safety**: when no candidate is feasible the RPO wins: start now, forced, at the least
  harmful constant rate that still completes in time (`Start(..., forced=True)`).
- running jobs are re-throttled at every forecast step (the threshold rate, but never
  below the rate the remaining bytes need to meet the deadline), paused through predicted
  bursts (`LoadLabel.BURST`, or no headroom at all) when the slack allows, resumed after.
- **what**: incremental by default; differential when the incremental would push the RTO
  estimate above `rto_margin` x RTO (or the chain is `max_chain` long); full when the
  differential would too, when it would hold `full_diff_frac` of the volume, or every
  `full_every_h` hours (such a full is planned into a cheap window like any backup and
  waits for one while the RPO deadline allows). Sizes come from changed-block tracking.
- **where**: each tier is scored (lower is better) by storage cost, configured priority,
  slot contention, and, weighted by urgency (deadline slack) and RTO pressure, by its
  ingest and restore speed: the fast tier when the deadline is close or RTO is tight, the
  cheap tier otherwise.

Without a forecast (early in a run, or no forecaster configured) it plans on a flat
forecast of the recently observed load (an EWMA) and says so in its reasons. Every
action's reason names the forecast facts it used.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from schedulers.base import SCHEDULERS, tier_index
from sim.devices import impact, rate_for_impact, rate_for_utilisation
from sim.types import Action, BackupKind, DecisionContext, Forecast, JobState, LoadLabel, Pause, Resume, Start, Throttle

_NONE, _QUEUED, _RUNNING, _PAUSED = (int(s) for s in (JobState.NONE, JobState.QUEUED, JobState.RUNNING, JobState.PAUSED))
_FULL, _INCR, _DIFF = int(BackupKind.FULL), int(BackupKind.INCREMENTAL), int(BackupKind.DIFFERENTIAL)
_BURST, _SUSTAINED = int(LoadLabel.BURST), int(LoadLabel.SUSTAINED)
MB = 1e6


@dataclass
class PredictiveParams:
    """Every threshold and weight of the predictive policy (all tunable).

    How hard:
        impact_threshold: acceptable relative latency increase; None = the run's. Default None.
        impact_target: plan rates for this fraction of the threshold (room for forecast error). Default 0.8.
        min_rate_mbps: slowest useful rate; a step allowing less counts as blocked. Default 2.0.
        max_util: device utilisation a backup may push production to (the simulator's
            `backup_max_util`): bounds forced rates. Default 0.95.
        rethrottle_tol: re-throttle a job when its target rate moves by more than this fraction. Default 0.15.
        pause_bursts: pause running jobs through predicted bursts / blocked steps. Default True.
        pause_max_h: pause only through predicted bursts at most this long. Default 1.0.
    When:
        horizon_h: planning horizon; None = the forecast's whole horizon. Default None.
        window_tolerance: a window costing within this fraction of the cheapest counts as cheapest. Default 0.1.
        deadline_margin_frac: finish this fraction of the RPO before the deadline... Default 0.05.
        deadline_margin_s: ...and at least this many seconds before it. Default 600.
        duration_safety: planned job durations are stretched by this factor. Default 1.5.
        quiet_ratio: "quiet now" when the job now costs at most this x the horizon's median. Default 0.5.
        quiet_min_interval_frac: quiet-period extra backups at most every this x RPO. Default 0.25.
        sustained_penalty: extra cost weight of steps labelled sustained load. Default 0.5.
        size_margin: planned sizes are CBT's dirty bytes (+ predicted growth) x (1 + this). Default 0.1.
        dirty_exponent: unique dirty bytes grow as (production I/O since the snapshot) ** this
            (hot chunks are re-dirtied: Zipf working sets give about 1 / zipf_s). Default 0.6.
    What:
        full_every_h: a full is due this long after the last one; None = only when RTO needs one. Default 168.
        full_diff_frac: take a full instead of a differential this large (fraction of used bytes). Default 0.5.
        rto_margin: keep the predicted RTO estimate under this fraction of the RTO. Default 0.9.
        max_chain: take a differential when the restore chain is this long; None = no limit. Default None.
        restore_overhead_s: assumed per-restore-point overhead (the simulator's). Default 60.
    Where:
        tier: always use this tier (name); None = choose per job. Default None.
        w_cost: weight of the tier's storage cost (normalised 0..1 across tiers). Default 1.0.
        w_priority: weight of the tier's configured priority (normalised 0..1). Default 0.5.
        w_contention: weight of (busy + queued) / slots. Default 1.0.
        full_slot_penalty: extra score of a tier with no free slot. Default 2.0.
        w_urgency: weight of slow ingest x urgency (urgency 1 at no slack). Default 3.0.
        w_rto: weight of slow restore x RTO pressure. Default 3.0.
        urgent_slack_frac: urgency grows as the slack falls below this fraction of the RPO. Default 0.25.
        rto_tight_frac: RTO pressure grows as the predicted RTO passes this fraction of the RTO. Default 0.5.
    Fallback (no forecast yet):
        fallback_upper: upper forecast = this x the observed EWMA load. Default 1.5.
        fallback_horizon_h: flat forecast horizon. Default 6.0.
        ewma_s: time constant of the observed-load EWMA. Default 300.
    """

    impact_threshold: float | None = None
    impact_target: float = 0.8
    min_rate_mbps: float = 2.0
    max_util: float = 0.95
    rethrottle_tol: float = 0.15
    pause_bursts: bool = True
    pause_max_h: float = 1.0
    horizon_h: float | None = None
    window_tolerance: float = 0.1
    deadline_margin_frac: float = 0.05
    deadline_margin_s: float = 600.0
    duration_safety: float = 1.5
    quiet_ratio: float = 0.5
    quiet_min_interval_frac: float = 0.25
    sustained_penalty: float = 0.5
    size_margin: float = 0.1
    dirty_exponent: float = 0.6
    full_every_h: float | None = 168.0
    full_diff_frac: float = 0.5
    rto_margin: float = 0.9
    max_chain: int | None = None
    restore_overhead_s: float = 60.0
    tier: str | None = None
    w_cost: float = 1.0
    w_priority: float = 0.5
    w_contention: float = 1.0
    full_slot_penalty: float = 2.0
    w_urgency: float = 3.0
    w_rto: float = 3.0
    urgent_slack_frac: float = 0.25
    rto_tight_frac: float = 0.5
    fallback_upper: float = 1.5
    fallback_horizon_h: float = 6.0
    ewma_s: float = 300.0

    def __post_init__(self) -> None:
        positive = ("impact_target", "max_util", "duration_safety", "rto_margin", "ewma_s", "fallback_horizon_h", "fallback_upper", "dirty_exponent")
        for name in positive:
            if not getattr(self, name) > 0:
                raise ValueError(f"predictive: {name} must be > 0, got {getattr(self, name)}")
        if not 0 < self.max_util < 1:
            raise ValueError(f"predictive: max_util must be in (0, 1), got {self.max_util}")
        if self.impact_threshold is not None and self.impact_threshold <= 0:
            raise ValueError("predictive: impact_threshold must be > 0")
        for name in ("window_tolerance", "quiet_ratio", "quiet_min_interval_frac", "sustained_penalty", "size_margin", "min_rate_mbps"):
            if getattr(self, name) < 0:
                raise ValueError(f"predictive: {name} must be >= 0, got {getattr(self, name)}")


@dataclass
class _Plan:
    """The outcome of window planning for a set of volumes (arrays over those volumes)."""

    start_now: np.ndarray  # bool
    forced: np.ndarray  # bool: no feasible window, RPO wins
    quiet: np.ndarray  # bool: opportunistic quiet-period start
    feasible_any: np.ndarray  # bool
    wake_t: np.ndarray  # when to plan again at the latest (chosen start)
    size: np.ndarray  # bytes if started now
    rate_now: np.ndarray  # threshold-limited rate in the current step
    need_rate: np.ndarray  # rate that completes by the deadline if started now
    max_rate: np.ndarray  # device headroom rate now
    cost_now: np.ndarray
    cost_best: np.ndarray
    cost_median: np.ndarray
    best_t: np.ndarray
    dur_now: np.ndarray  # planned duration if started now (s, unstretched)
    imp_now: np.ndarray  # predicted upper-quantile impact at rate_now
    deadline: np.ndarray


class _Flat:
    """A flat stand-in forecast built from observed load (no forecast yet)."""

    def __init__(self, t: float, step_s: float, horizon: int, mean: np.ndarray, upper: np.ndarray):
        self.origin_t = t
        self.step_s = step_s
        self.mean = np.repeat(mean[:, None, :], horizon, axis=1)
        self.upper = np.repeat(upper[:, None, :], horizon, axis=1)
        self.labels = np.zeros((mean.shape[0], horizon), np.int8)
        self.model = "observed-ewma (no forecast yet)"

    @property
    def horizon(self) -> int:
        return int(self.mean.shape[1])


def _rowwise_searchsorted(b: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """`searchsorted(b[i], targets[i], side='left')` for every row i (rows non-decreasing)."""
    p, n = b.shape
    span = max(float(np.nanmax(b[:, -1])) if b.size else 0.0, float(np.nanmax(targets)) if targets.size else 0.0) * 2.0 + 1.0
    off = np.arange(p, dtype=np.float64)[:, None] * span
    flat = (b + off).ravel()
    idx = np.searchsorted(flat, (targets + off).ravel(), side="left").reshape(targets.shape)
    return idx - np.arange(p)[:, None] * n


@SCHEDULERS.register("predictive")
class PredictiveScheduler:
    name = "predictive"

    def __init__(self, **params):
        self.params = PredictiveParams(**params)
        self._n = -1
        self.stats = {"plans": 0, "planned_volumes": 0, "forced": 0, "quiet": 0, "window": 0}

    # ------------------------------------------------------------------ state
    def _init(self, ctx: DecisionContext) -> None:
        n = ctx.volumes.n
        self._n = n
        self._fc = None  # the forecast (or flat stand-in) plans were made on
        self._fc_src = None  # the ctx.forecast object it came from
        self._step_key = None
        self._last_t = None
        self._prev_state = np.full(n, -1, np.int8)
        self._prev_snap = np.asarray(ctx.last_snapshot_t, float).copy()
        self._wake = np.full(n, -np.inf)
        self._ewma = np.stack([np.asarray(ctx.prod_iops, float), np.asarray(ctx.prod_mbps, float)], -1)
        self._dirty_prev = None
        self._dirty_prev_t = None
        self._io_since = np.zeros(n)  # production I/Os since the volume's last snapshot (observed)
        self._kappa = np.full(n, np.nan)  # dirty bytes = kappa * io_since ** dirty_exponent (fitted)
        self._full_restore = np.full(n, np.nan)  # RTO estimate of a chain holding only the full
        vt = ctx.volumes
        self._vmax = (vt.max_iops.astype(float), vt.max_mbps.astype(float))
        tiers = ctx.tiers
        self._restore = np.array([t.restore_mbps for t in tiers], float)
        self._ingest = np.array([t.ingest_mbps for t in tiers], float)

        def norm(x):
            x = np.asarray(x, float)
            span = x.max() - x.min()
            return (x - x.min()) / span if span > 0 else np.zeros_like(x)

        self._tier_cost = norm([t.cost_per_gb_month for t in tiers])
        self._tier_prio = norm([t.priority for t in tiers])
        self._tier_slow_in = 1.0 - norm(self._ingest)
        self._tier_slow_out = 1.0 - norm(self._restore)
        self._fixed_tier = tier_index(ctx, self.params.tier) if self.params.tier else None

    # ------------------------------------------------------------------ helpers
    def threshold(self, ctx: DecisionContext) -> float:
        p = self.params
        return (ctx.impact_threshold if p.impact_threshold is None else p.impact_threshold) * p.impact_target

    def _margin(self, rpo: np.ndarray) -> np.ndarray:
        return np.maximum(self.params.deadline_margin_s, self.params.deadline_margin_frac * rpo)

    def _forecast(self, ctx: DecisionContext):
        """The forecast to plan on (ctx.forecast, or a flat one from observations)."""
        fc = ctx.forecast
        if fc is not None and fc.horizon > 0:
            return fc, fc
        p = self.params
        step = 300.0
        key = math.floor(ctx.t / step)
        if self._fc_src is None and isinstance(self._fc, _Flat) and math.floor(self._fc.origin_t / step) == key:
            return self._fc, None
        h = max(1, round(p.fallback_horizon_h * 3600.0 / step))
        return _Flat(ctx.t, step, h, self._ewma, self._ewma * p.fallback_upper), None

    def _horizon(self, fc) -> int:
        h = fc.horizon
        if self.params.horizon_h is not None:
            h = min(h, max(1, round(self.params.horizon_h * 3600.0 / fc.step_s)))
        return h

    def _step_index(self, fc, t: float) -> tuple[int, float]:
        h = self._horizon(fc)
        i0 = int(np.clip(math.floor((t - fc.origin_t) / fc.step_s + 1e-9), 0, h - 1))
        elapsed = float(np.clip(t - (fc.origin_t + i0 * fc.step_s), 0.0, fc.step_s))
        return i0, elapsed

    def _fc_desc(self, fc) -> str:
        if isinstance(fc, _Flat):
            return "no forecast yet: flat observed EWMA"
        q = getattr(fc, "quantile", 0.9)
        return f"forecast {fc.model or '?'} p{round(100 * q)} @{fc.origin_t / 3600:.2f}h"

    # ------------------------------------------------------------------ what
    def _kinds(self, ctx: DecisionContext, vols: np.ndarray, incr: np.ndarray, diff: np.ndarray):
        """(kind, soft_full, rto_after, why) for idle volumes `vols` (sizes: incr/diff bytes)."""
        p = self.params
        vt = ctx.volumes
        rto = vt.rto_s[vols]
        used = vt.used_bytes[vols]
        bulk = self._bulk_tier_restore()
        full_rs = self._full_restore[vols]
        full_rs = np.where(np.isnan(full_rs), used / (bulk * MB) + p.restore_overhead_s, full_rs)
        rto_est = ctx.rto_estimate_s[vols]
        after_incr = rto_est + incr / (bulk * MB) + p.restore_overhead_s
        after_diff = full_rs + diff / (bulk * MB) + p.restore_overhead_s
        lim = p.rto_margin * rto
        no_chain = ~np.isfinite(rto_est) | ~np.isfinite(ctx.last_full_t[vols])
        chain_long = np.zeros(vols.size, bool) if p.max_chain is None else ctx.chain_len[vols] >= p.max_chain
        need_diff = (after_incr > lim) | chain_long
        need_full = no_chain | (need_diff & ((after_diff > lim) | (diff >= p.full_diff_frac * used)))
        soft_full = np.zeros(vols.size, bool)
        if p.full_every_h is not None:
            soft_full = ~need_full & (ctx.t - ctx.last_full_t[vols] >= p.full_every_h * 3600.0)
        kind = np.where(need_full, _FULL, np.where(need_diff, _DIFF, _INCR))
        rto_after = np.where(kind == _FULL, used / (bulk * MB) + p.restore_overhead_s, np.where(kind == _DIFF, after_diff, after_incr))
        return kind, soft_full, rto_after, after_incr, lim

    def _bulk_tier_restore(self) -> float:
        if self._fixed_tier is not None:
            return float(self._restore[self._fixed_tier])
        return float(self._restore[int(np.argmin(self._tier_score_base()))])

    def _tier_score_base(self) -> np.ndarray:
        p = self.params
        return p.w_cost * self._tier_cost + p.w_priority * self._tier_prio

    # ------------------------------------------------------------------ where
    def _choose_tier(self, ctx: DecisionContext, occ: np.ndarray, free: np.ndarray, urgency: float, rto_pressure: float) -> tuple[int, str]:
        if self._fixed_tier is not None:
            return self._fixed_tier, f"tier {ctx.tiers[self._fixed_tier].name} (configured)"
        p = self.params
        score = (
            self._tier_score_base()
            + p.w_contention * occ
            + p.full_slot_penalty * (free <= 0)
            + p.w_urgency * urgency * self._tier_slow_in
            + p.w_rto * rto_pressure * self._tier_slow_out
        )
        k = int(np.argmin(score))
        parts = []
        if urgency > 0:
            parts.append(f"urgency {urgency:.2f}")
        if rto_pressure > 0:
            parts.append(f"RTO pressure {rto_pressure:.2f}")
        parts.append(f"slots {int(free[k])} free")
        return k, f"tier {ctx.tiers[k].name} ({', '.join(parts)})"

    # ------------------------------------------------------------------ when
    def _plan(self, ctx: DecisionContext, fc, vols: np.ndarray, size0: np.ndarray, growth: np.ndarray, tier_share: np.ndarray) -> _Plan:
        """Window planning for idle volumes `vols` with job sizes `size0` (bytes if started now)."""
        p = self.params
        t = ctx.t
        step = float(fc.step_s)
        h = self._horizon(fc)
        i0, elapsed = self._step_index(fc, t)
        m = h - i0  # candidate starts: now, then each later step boundary
        ext = max(m, 12)  # beyond the horizon the last step is held (long jobs)
        max_iops, max_mbps = self._vmax[0][vols][:, None], self._vmax[1][vols][:, None]

        def window(a):
            a = a[vols, i0:h]
            return np.concatenate([a, np.repeat(a[:, -1:], ext, axis=1)], axis=1)

        up_i, up_m = window(fc.upper[..., 0]), window(fc.upper[..., 1])
        mu_i, mu_m = window(fc.mean[..., 0]), window(fc.mean[..., 1])
        labels = window(np.asarray(fc.labels))
        thr = self.threshold(ctx)
        r = np.minimum(rate_for_impact(up_i, up_m, max_iops, max_mbps, thr), tier_share[:, None])
        r = np.where(r >= p.min_rate_mbps, r, 0.0)
        imp = np.where(r > 0, impact(mu_i, mu_m, r, max_iops, max_mbps), 0.0)
        w = 1.0 + p.sustained_penalty * (labels == _SUSTAINED)
        bb = r * MB * step  # bytes per whole step
        cc = mu_i * imp * w * step  # cost per whole step (IO x impact x s)
        zero = np.zeros((vols.size, 1))
        bcum = np.concatenate([zero, np.cumsum(bb, axis=1)], axis=1)
        ccum = np.concatenate([zero, np.cumsum(cc, axis=1)], axis=1)
        # candidate start points (in bytes / cost already accumulated at the start)
        frac0 = elapsed / step
        b_start = bcum[:, :m].copy()
        c_start = ccum[:, :m].copy()
        b_start[:, 0] += bb[:, 0] * frac0
        c_start[:, 0] += cc[:, 0] * frac0
        s_t = fc.origin_t + (i0 + np.arange(m)) * step
        s_t[0] = t
        # predicted I/O between now and each candidate start drives the job's growth
        io_step = mu_i * step
        io_cum = np.concatenate([zero, np.cumsum(io_step, axis=1)], axis=1)[:, :m]
        io_cum = io_cum - io_step[:, :1] * frac0
        io_cum[:, 0] = 0.0
        w0 = self._io_since[vols][:, None]
        a = p.dirty_exponent
        size = (size0[:, None] + growth[:, None] * ((w0 + io_cum) ** a - w0**a)) * (1.0 + p.size_margin)
        size = np.maximum(size, MB)
        target = b_start + size
        k = _rowwise_searchsorted(bcum, target) - 1
        ok = k < bcum.shape[1] - 1
        kk = np.clip(k, 0, bb.shape[1] - 1)
        bk = np.take_along_axis(bb, kk, 1)
        base = np.take_along_axis(bcum, kk, 1)
        frac = np.where(ok & (bk > 0), (target - base) / np.where(bk > 0, bk, 1.0), 0.0)
        end_t = np.where(ok, fc.origin_t + (i0 + kk + frac) * step, np.inf)
        # score: the job's cost per hour of RPO coverage it buys (it moves the deadline from
        # last snapshot + RPO to start + RPO). Waiting grows the job by the measured dirtying
        # rate, so with re-dirtied hot chunks (concave growth) later starts cover more per byte.
        job_cost = np.take_along_axis(ccum, kk, 1) + np.take_along_axis(cc, kk, 1) * frac - c_start
        covered = np.clip(s_t[None, :] - ctx.last_snapshot_t[vols][:, None], step, 1e9) / 3600.0
        cost = np.where(ok, job_cost / covered, np.inf)
        dur = end_t - s_t[None, :]
        rpo = ctx.volumes.rpo_s[vols]
        deadline = ctx.last_snapshot_t[vols] + rpo
        latest_end = deadline - self._margin(rpo)
        feasible = ok & (s_t[None, :] + dur * p.duration_safety <= latest_end[:, None])
        any_f = feasible.any(axis=1)
        cmin = np.where(feasible, cost, np.inf).min(axis=1)
        near = feasible & (cost <= cmin[:, None] * (1.0 + p.window_tolerance) + 1e-12)
        best = np.where(any_f, m - 1 - np.argmax(near[:, ::-1], axis=1), 0)
        finite = np.where(ok, cost, np.nan)
        with np.errstate(all="ignore"):
            med = np.nanmedian(np.where(np.isnan(finite).all(axis=1, keepdims=True), 0.0, finite), axis=1)
        age = ctx.rp_age_s[vols]
        quiet = feasible[:, 0] & (cost[:, 0] <= p.quiet_ratio * med) & (age >= p.quiet_min_interval_frac * rpo) & (m > 1)
        start_now = (any_f & (best == 0)) | quiet
        forced = ~any_f
        wake = np.where(any_f, s_t[best], t)
        left = latest_end - t
        need = np.where(left > 0, size[:, 0] * p.duration_safety / MB / np.maximum(left, 1e-9), np.inf)
        max_rate = np.minimum(rate_for_utilisation(up_i[:, 0], up_m[:, 0], max_iops[:, 0], max_mbps[:, 0], p.max_util), tier_share)
        rate_now = r[:, 0]
        imp_now = np.where(rate_now > 0, impact(up_i[:, 0], up_m[:, 0], rate_now, max_iops[:, 0], max_mbps[:, 0]), 0.0)
        return _Plan(
            start_now=start_now | forced,
            forced=forced,
            quiet=quiet & ~(any_f & (best == 0)),
            feasible_any=any_f,
            wake_t=wake,
            size=size[:, 0],
            rate_now=rate_now,
            need_rate=need,
            max_rate=max_rate,
            cost_now=cost[:, 0],
            cost_best=np.where(any_f, cmin, np.inf),
            cost_median=med,
            best_t=s_t[best],
            dur_now=dur[:, 0],
            imp_now=imp_now,
            deadline=deadline,
        )

    # ------------------------------------------------------------------ decide
    def decide(self, ctx: DecisionContext) -> list[Action]:
        if self._n != ctx.volumes.n:
            self._init(ctx)
        p = self.params
        t = ctx.t
        dt = ctx.tick_s if self._last_t is None else max(ctx.tick_s, t - self._last_t)
        self._last_t = t
        a = 1.0 if ctx.tick <= 1 else min(1.0, dt / p.ewma_s)  # t=0 observes nothing yet
        self._ewma[:, 0] += a * (ctx.prod_iops - self._ewma[:, 0])
        self._ewma[:, 1] += a * (ctx.prod_mbps - self._ewma[:, 1])

        fc, src = self._forecast(ctx)
        i0, _ = self._step_index(fc, t)
        step_key = (id(src) if src is not None else None, fc.origin_t, i0)
        new_fc = step_key != self._step_key
        if new_fc:
            self._fc, self._fc_src, self._step_key = fc, src, step_key
        state = ctx.job_state
        changed = state != self._prev_state
        snap = ctx.last_snapshot_t
        ended = (state == _NONE) & (changed | (snap != self._prev_snap))  # a job ended (maybe within one tick)
        self._prev_snap = snap.copy()
        self._io_since += ctx.prod_iops * dt
        self._prev_state = state.copy()
        idle = state == _NONE
        replan = idle & (new_fc | ended | (self._wake <= t))
        actions: list[Action] = []
        if replan.any():
            actions += self._start(ctx, fc, np.flatnonzero(replan))
        if new_fc:
            actions += self._control(ctx, fc)
        return actions

    # ------------------------------------------------------------------ starting jobs
    def _measure(self, ctx: DecisionContext) -> tuple[np.ndarray, np.ndarray]:
        """CBT sizes; refits each volume's growth law dirty = kappa * io ** dirty_exponent."""
        incr, diff = ctx.dirty_bytes()
        w = self._io_since
        ok = (w > 0) & (incr > 0) & (ctx.t - ctx.last_snapshot_t >= 1800.0)  # enough history to fit
        k_obs = incr[ok] / w[ok] ** self.params.dirty_exponent
        old = self._kappa[ok]
        self._kappa[ok] = np.where(np.isnan(old), k_obs, 0.7 * old + 0.3 * k_obs)
        return incr, diff

    def _start(self, ctx: DecisionContext, fc, vols: np.ndarray) -> list[Action]:
        p = self.params
        self.stats["plans"] += 1
        self.stats["planned_volumes"] += int(vols.size)
        incr_all, diff_all = self._measure(ctx)
        one = ctx.chain_len == 1
        self._full_restore[one] = ctx.rto_estimate_s[one]
        incr, diff = incr_all[vols], diff_all[vols]
        kind, soft_full, rto_after, after_incr, rto_lim = self._kinds(ctx, vols, incr, diff)
        used = ctx.volumes.used_bytes[vols]
        sizes = np.where(kind == _FULL, used, np.where(kind == _DIFF, diff, incr))
        busy = np.array([tv.busy + tv.queued for tv in ctx.tiers], float)
        slots = np.array([tv.slots for tv in ctx.tiers], float)
        base_tier = self._fixed_tier if self._fixed_tier is not None else int(np.argmin(self._tier_score_base() + p.w_contention * busy / slots))
        share = np.full(vols.size, self._ingest[base_tier] / (busy[base_tier] + 1.0))
        kappa = self._kappa[vols]
        if np.isnan(kappa).any():  # not fitted yet: from the current size
            w = self._io_since[vols]
            guess = np.where(w > 0, incr / np.maximum(w, 1.0) ** p.dirty_exponent, 0.0)
            kappa = np.where(np.isnan(kappa), guess, kappa)
        plan = self._plan(ctx, fc, vols, sizes, np.where(kind == _FULL, 0.0, kappa), share)
        # a full due by the full-every rule waits for a window it fits; until then the usual kind
        if soft_full.any():
            sel = np.flatnonzero(soft_full)
            fplan = self._plan(ctx, fc, vols[sel], used[sel], np.zeros(sel.size), share[sel])
            take = fplan.feasible_any
            if take.any():
                idx = sel[take]
                kind[idx] = _FULL
                sizes[idx] = used[idx]
                rto_after[idx] = used[idx] / (self._bulk_tier_restore() * MB) + p.restore_overhead_s
                for f in _Plan.__dataclass_fields__:
                    getattr(plan, f)[idx] = getattr(fplan, f)[take]
        self._wake[vols] = plan.wake_t
        go = np.flatnonzero(plan.start_now)
        if go.size == 0:
            return []
        occ = busy / slots
        free = slots - busy
        out: list[Action] = []
        desc = self._fc_desc(fc)
        for j in go.tolist():
            v = int(vols[j])
            rpo = float(ctx.volumes.rpo_s[v])
            deadline = float(plan.deadline[j])
            left = deadline - ctx.t
            slack = left - self._margin(np.array(rpo)).item() - plan.dur_now[j] * p.duration_safety if np.isfinite(plan.dur_now[j]) else -np.inf
            urgency = float(np.clip(1.0 - slack / (p.urgent_slack_frac * rpo), 0.0, 1.0)) if np.isfinite(slack) else 1.0
            rto_s = float(ctx.volumes.rto_s[v])
            pressure = float(np.clip((rto_after[j] / rto_s - p.rto_tight_frac) / max(1e-9, 1.0 - p.rto_tight_frac), 0.0, 1.0))
            tier, tier_why = self._choose_tier(ctx, occ, free, urgency, pressure)
            busy[tier] += 1
            occ[tier] = busy[tier] / slots[tier]
            free[tier] -= 1
            k = BackupKind(int(kind[j]))
            what = self._what_reason(k, ctx, v, rto_after[j], after_incr[j], rto_lim[j], soft_full[j])
            dl = f"deadline in {left / 3600:.1f} h" if np.isfinite(left) else "no restore point"
            if plan.forced[j]:
                rate = float(np.clip(max(plan.need_rate[j], plan.rate_now[j], p.min_rate_mbps), p.min_rate_mbps, max(plan.max_rate[j], p.min_rate_mbps)))
                why = (
                    f"forced: no window completes under the threshold before the RPO deadline ({dl}); "
                    f"needs {plan.need_rate[j]:.0f} MB/s vs impact-limited {plan.rate_now[j]:.0f} MB/s; "
                    f"{k.name.lower()} {sizes[j] / 1e9:.1f} GB at {rate:.0f} MB/s; {what}; {tier_why}; {desc}"
                )
                self.stats["forced"] += 1
                out.append(Start(v, k, tier, rate, reason=why, forced=True))
                self._io_since[v] = 0.0  # its snapshot resets changed-block tracking
                continue
            rate = float(max(plan.rate_now[j], p.min_rate_mbps))
            if plan.quiet[j]:
                head = f"quiet now: cost {plan.cost_now[j]:.3g}/h covered <= {p.quiet_ratio:g} x horizon median {plan.cost_median[j]:.3g}"
                self.stats["quiet"] += 1
            else:
                head = f"cheapest window now: cost {plan.cost_now[j]:.3g}/h covered (best {plan.cost_best[j]:.3g}, median {plan.cost_median[j]:.3g})"
                self.stats["window"] += 1
            thr = self.threshold(ctx) / p.impact_target
            why = (
                f"{head}; predicted p90 impact {plan.imp_now[j]:.3f} <= {thr:g} at {rate:.0f} MB/s, "
                f"est {plan.dur_now[j] / 3600:.2f} h; {dl}; {k.name.lower()} {sizes[j] / 1e9:.1f} GB, {what}; {tier_why}; {desc}"
            )
            out.append(Start(v, k, tier, rate, reason=why))
            self._io_since[v] = 0.0
        return out

    def _what_reason(self, k: BackupKind, ctx, v, rto_after, after_incr, lim, soft_full) -> str:
        rto = ctx.volumes.rto_s[v]
        if k == BackupKind.INCREMENTAL:
            return f"RTO est after {rto_after / 3600:.2f} h <= {lim / 3600:.2f} h"
        if k == BackupKind.DIFFERENTIAL:
            return f"incremental would make RTO est {after_incr / 3600:.2f} h > {lim / 3600:.2f} h (RTO {rto / 3600:g} h)"
        if soft_full:
            return f"full due (every {self.params.full_every_h:g} h)"
        if not np.isfinite(ctx.rto_estimate_s[v]):
            return "no restore chain"
        return f"differential too large or RTO est {after_incr / 3600:.2f} h > {lim / 3600:.2f} h"

    # ------------------------------------------------------------------ running jobs
    def _control(self, ctx: DecisionContext, fc) -> list[Action]:
        """Re-throttle, pause and resume jobs for the current forecast step."""
        p = self.params
        active = np.flatnonzero(ctx.job_state != _NONE)
        if active.size == 0:
            return []
        t = ctx.t
        h = self._horizon(fc)
        i0, _ = self._step_index(fc, t)
        max_iops, max_mbps = self._vmax[0][active], self._vmax[1][active]
        up = fc.upper[active, i0]
        thr = self.threshold(ctx)
        r_imp = rate_for_impact(up[:, 0], up[:, 1], max_iops, max_mbps, thr)
        r_max = rate_for_utilisation(up[:, 0], up[:, 1], max_iops, max_mbps, p.max_util)
        rpo = ctx.volumes.rpo_s[active]
        latest_end = ctx.last_snapshot_t[active] + rpo - self._margin(rpo)
        left = latest_end - t
        remaining = ctx.job_remaining_bytes[active]
        need = np.where(left > 0, remaining * p.duration_safety / MB / np.maximum(left, 1e-9), np.inf)
        target = np.minimum(np.maximum(np.maximum(r_imp, need), p.min_rate_mbps), np.maximum(r_max, p.min_rate_mbps))
        labels = np.asarray(fc.labels)[active, i0:h]
        blocked = (labels == _BURST) | (r_imp < p.min_rate_mbps)[:, None]
        if labels.shape[1]:
            blocked[:, 1:] &= labels[:, 1:] == _BURST
        run_len = np.where(blocked.all(axis=1), labels.shape[1], np.argmin(blocked, axis=1))  # steps from now
        desc = self._fc_desc(fc)
        out: list[Action] = []
        state = ctx.job_state[active]
        throttle = ctx.job_throttle_mbps[active]
        for j, v in enumerate(active.tolist()):
            st = int(state[j])
            burst_s = run_len[j] * fc.step_s
            # slack if the job pauses through the predicted burst, then goes on at the threshold rate
            after = int(min(i0 + run_len[j], h - 1))
            r_after = float(rate_for_impact(fc.upper[v, after, 0], fc.upper[v, after, 1], max_iops[j], max_mbps[j], thr))
            can_wait = left[j] - burst_s - remaining[j] * p.duration_safety / MB / max(r_after, p.min_rate_mbps) > 0
            if p.pause_bursts and run_len[j] > 0 and burst_s <= p.pause_max_h * 3600.0 and can_wait:
                if st in (_RUNNING, _QUEUED):
                    why = (
                        f"predicted burst for {burst_s / 60:.0f} min (p90 {up[j, 0]:.0f} IOPS / {up[j, 1]:.0f} MB/s, "
                        f"impact-limited rate {r_imp[j]:.0f} MB/s); slack allows pausing; {desc}"
                    )
                    out.append(Pause(v, reason=why))
                continue
            if st == _PAUSED:
                why = f"predicted burst over: resume at {target[j]:.0f} MB/s (p90 impact <= {thr / p.impact_target:g}); {desc}"
                if not can_wait and run_len[j] > 0:
                    why = f"RPO slack exhausted: resume through predicted load at {target[j]:.0f} MB/s; {desc}"
                out.append(Resume(v, float(target[j]), reason=why))
                continue
            cur = throttle[j]
            if not np.isfinite(cur) or abs(target[j] - cur) > p.rethrottle_tol * cur:
                if need[j] > r_imp[j]:
                    why = f"RPO deadline: remaining {remaining[j] / 1e9:.1f} GB needs {need[j]:.0f} MB/s > impact-limited {r_imp[j]:.0f} MB/s; {desc}"
                else:
                    imp_t = float(impact(up[j, 0], up[j, 1], target[j], max_iops[j], max_mbps[j]))
                    why = f"re-throttle for forecast step: p90 {up[j, 0]:.0f} IOPS / {up[j, 1]:.0f} MB/s, predicted impact {imp_t:.3f} at {target[j]:.0f} MB/s; {desc}"
                out.append(Throttle(v, float(target[j]), reason=why))
        return out

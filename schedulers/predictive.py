"""`predictive`: the PIOP scheduler — when, how hard, what and where, from load forecasts.

A decision period costs a few vector operations over volumes; whenever the forecast
changes (every history step) or a volume's job ends, each idle volume is planned again
(vectorised over volumes and forecast steps):

- **how hard**: in forecast step h a backup may read at `rate_for_impact(upper[h],
  impact_target x threshold)` MB/s — the upper (e.g. p90) forecast, not the mean, so the
  predicted impact stays under the acceptable-impact threshold when load comes in high;
  also capped by the tier's ingest share and the device headroom (`max_util`).
- **when**: for every candidate start (now, and each later forecast step) the job of the
  estimated size runs step by step at those rates; its *cost* is the production I/O it
  would slow down times the impact it would cause (the quantity the run's IO-weighted
  impact sums), from the mean forecast; sustained-load steps weigh more. A start is
  feasible when the job, its duration stretched by `duration_safety`, completes `margin`
  before the RPO deadline (newest snapshot + RPO). Sizes come from changed-block tracking
  and grow with the predicted I/O until the start by a per-volume fitted law
  (dirty = kappa x io ** alpha: hot chunks are re-dirtied, so frequent backups move more
  bytes). With `lookahead` (default) the plan is the cheapest *sequence* of backups over
  the horizon — a shortest path over start steps, each backup within RPO of the previous
  one, bytes left after the last one charged at the horizon's median price — and the
  volume starts now only when that sequence begins now (or waits, when the deadline lies
  beyond the horizon and waiting is cheaper). So backups get more frequent before and
  in quiet periods, where that leaves less for busy ones, and are deferred through
  predicted sustained load. Without it, a greedy rule starts at the latest window within
  `window_tolerance` of the cheapest cost per GB. An optional quiet rule (`quiet_ratio`)
  adds a backup whenever now is much cheaper than the horizon's median.
- **safety**: when no candidate is feasible the RPO wins: start now at the least harmful
  constant rate that still completes in time; when that rate is above what the threshold
  allows the start is recorded as forced (`Start(..., forced=True)`).
- running jobs are re-throttled at every forecast step (the threshold rate, but never
  below the rate the remaining bytes need to meet the deadline), paused through predicted
  bursts (`LoadLabel.BURST`, or no headroom at all) when the slack allows, resumed after.
- **now-cast** (optional, `nowcast`): the current step's load is being observed, not only
  predicted: its upper load is at least the last tick's observed load, and when observed
  load passes the forecast a running job is re-throttled at that tick instead of at the
  next forecast step. A surprise burst the forecaster could not see is then met the way
  a reactive throttle meets it, while the plan stays predictive.
- **what**: incremental by default; differential when the incremental would push the RTO
  estimate above `rto_margin` x RTO (or the chain is `max_chain` long); full when the
  differential would too, when it would hold `full_diff_frac` of the volume, or every
  `full_every_h` hours (such a full may start up to `full_early_h` early in a quiet
  window, and otherwise waits for the cheapest window the RPO deadline allows).
- **where**: each tier is scored (lower is better) by storage cost, configured priority,
  slot contention, RTO pressure (the predicted RTO estimate with the job's bytes on that
  tier against the RTO) and, weighted by urgency (deadline slack), how much its ingest
  share would slow the job: the fast tier when the deadline is close or the RTO tight,
  the cheap tier otherwise.

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
from sim.types import Action, BackupKind, DecisionContext, JobState, LoadLabel, Pause, Resume, Start, Throttle

_NONE, _QUEUED, _RUNNING, _PAUSED = (int(s) for s in (JobState.NONE, JobState.QUEUED, JobState.RUNNING, JobState.PAUSED))
_FULL, _INCR, _DIFF = int(BackupKind.FULL), int(BackupKind.INCREMENTAL), int(BackupKind.DIFFERENTIAL)
_BURST, _SUSTAINED = int(LoadLabel.BURST), int(LoadLabel.SUSTAINED)
MB = 1e6
_CHUNK = 128  # volumes per lookahead batch


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
        lookahead: plan the cheapest *sequence* of backups over the horizon (a shortest path over
            start steps, each hop within the RPO) and start now when it begins now; False: the
            greedy rule (latest start within `window_tolerance` of the cheapest cost per GB). Default True.
        job_overhead_gb: fixed cost of one more backup, as GB moved at its window's price
            (restore-chain growth, per-job work); damps over-frequent backups. Default 0.0.
        window_tolerance: (greedy) a window costing within this fraction of the cheapest counts as cheapest. Default 0.1.
        min_interval_frac: no planned start sooner than this x RPO after the last snapshot (a
            plan may otherwise chain near-free tiny backups, each growing the restore chain). Default 0.25.
        deadline_margin_frac: finish this fraction of the RPO before the deadline... Default 0.05.
        deadline_margin_s: ...and at least this many seconds before it. Default 600.
        duration_safety: planned job durations are stretched by this factor. Default 1.5.
        quiet_ratio: extra backup when the job now costs (per GB) at most this x the horizon's
            median; 0 = off (the lookahead adds quiet-period backups where they pay). Default 0.0.
        quiet_min_interval_frac: quiet-period extra backups at most every this x RPO. Default 0.25.
        sustained_penalty: extra cost weight of steps labelled sustained load. Default 0.5.
        size_margin: planned sizes are CBT's dirty bytes (+ predicted growth) x (1 + this). Default 0.1.
        dirty_exponent: prior of the growth law: unique dirty bytes grow as kappa x (production
            I/O since the snapshot) ** this (hot chunks are re-dirtied: a Zipf working set gives
            about 1 / zipf_s); kappa and the exponent are refitted per volume from CBT. Default 0.6.
        growth_memory: forgetting factor per CBT sample (every history step) of that fit. Default 0.995.
    What:
        full_every_h: a full is due this long after the last one; None = only when RTO needs one. Default 168.
        full_early_h: a due full may start up to this much early, in a quiet window. Default 24.
        full_quiet_ratio: an early full needs a window costing (per GB) at most this x the horizon median. Default 0.5.
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
        w_urgency: weight of urgency (1 at no slack) x how much the tier's ingest share would
            slow the job (or, with no free slot, its slower ingest). Default 3.0.
        w_rto: weight of RTO pressure: how far the RTO estimate with this job on the tier
            passes `rto_tight_frac` x RTO (0..1). Default 3.0.
        urgent_slack_frac: urgency grows as the slack falls below this fraction of the RPO. Default 0.25.
        rto_tight_frac: RTO pressure grows as the predicted RTO passes this fraction of the RTO. Default 0.5.
    Now-cast:
        nowcast: the current step's upper load is at least the last tick's observed load, and
            running jobs are re-throttled at the tick observed load passes the forecast by
            more than `rethrottle_tol`. Default False: on the Bitbrains replay it cost more
            impact than it saved (jobs throttled in a surprise run on into later load), on
            the synthetic fleet it removed most I/O over the threshold at the same mean.
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
    lookahead: bool = True
    job_overhead_gb: float = 0.0
    window_tolerance: float = 0.1
    min_interval_frac: float = 0.25
    deadline_margin_frac: float = 0.05
    deadline_margin_s: float = 600.0
    duration_safety: float = 1.5
    quiet_ratio: float = 0.0
    quiet_min_interval_frac: float = 0.25
    sustained_penalty: float = 0.5
    size_margin: float = 0.1
    dirty_exponent: float = 0.6
    growth_memory: float = 0.995
    full_every_h: float | None = 168.0
    full_early_h: float = 24.0
    full_quiet_ratio: float = 0.5
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
    nowcast: bool = False

    def __post_init__(self) -> None:
        positive = ("impact_target", "max_util", "duration_safety", "rto_margin", "ewma_s", "fallback_horizon_h", "fallback_upper", "dirty_exponent", "growth_memory")
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
    forced: np.ndarray  # bool: no feasible window and the deadline needs more than the threshold allows
    late: np.ndarray  # bool: no feasible window left, but the threshold rate still meets the deadline
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
    cost_wait: np.ndarray
    best_t: np.ndarray
    dur_now: np.ndarray  # planned duration if started now (s, unstretched)
    rate_thr: np.ndarray  # rate at the full threshold now (above it a start is forced)
    up_now: np.ndarray  # [P, 2] upper-quantile load forecast for the current step
    latest_t: np.ndarray  # latest feasible start (now when none)
    slot_s: np.ndarray  # tier-slot seconds the job needs (stretched duration)
    deadline: np.ndarray
    path: list


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
        self.stats = {"plans": 0, "planned_volumes": 0, "forced": 0, "late": 0, "contention": 0, "quiet": 0, "window": 0}

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
        self._io_since = np.zeros(n)  # production I/Os since the volume's last snapshot (observed)
        # growth law dirty = kappa * io_since ** alpha, a per-volume log-log least-squares fit
        self._fit = np.zeros((5, n))  # decayed sums of 1, x, y, xx, xy (x = log io, y = log bytes)
        self._kappa = np.full(n, np.nan)
        self._alpha = np.full(n, self.params.dirty_exponent)
        self._full_restore = np.full(n, np.nan)  # RTO estimate of a chain holding only the full
        self._latest = np.full(n, np.inf)  # latest feasible start of each idle volume's next backup
        self._slot_s = np.zeros(n)  # and the slot time it needs
        self._slots_total = float(sum(t.slots for t in ctx.tiers))
        self._typical_slot_s = 0.0  # EWMA of the slot time of the jobs started
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
        i0 = min(max(math.floor((t - fc.origin_t) / fc.step_s + 1e-9), 0), h - 1)
        elapsed = min(max(t - (fc.origin_t + i0 * fc.step_s), 0.0), float(fc.step_s))
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
            soft_full = ~need_full & (ctx.t - ctx.last_full_t[vols] >= (p.full_every_h - p.full_early_h) * 3600.0)
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
    def _choose_tier(self, ctx, occ, free, urgency: float, rto_pressure: np.ndarray, short: np.ndarray) -> tuple[int, str]:
        """Lowest score wins: cost, priority, contention, and (urgent) ingest shortfall, RTO pressure."""
        if self._fixed_tier is not None:
            return self._fixed_tier, f"tier {ctx.tiers[self._fixed_tier].name} (configured)"
        p = self.params
        score = (
            self._tier_score_base()
            + p.w_contention * occ
            + p.full_slot_penalty * (free <= 0)
            + p.w_urgency * urgency * np.maximum(short, self._tier_slow_in * (free <= 0))
            + p.w_rto * rto_pressure
        )
        k = int(np.argmin(score))
        parts = []
        if urgency > 0:
            parts.append(f"urgency {urgency:.2f}")
        if rto_pressure.max() > 0:
            parts.append(f"RTO pressure {rto_pressure[k]:.2f} (max {rto_pressure.max():.2f})")
        parts.append(f"{int(max(free[k], 0))} slots free")
        return k, f"tier {ctx.tiers[k].name} ({', '.join(parts)})"

    # ------------------------------------------------------------------ when
    def _plan(
        self, ctx: DecisionContext, fc, vols: np.ndarray, size0: np.ndarray, growth: np.ndarray, tier_share: np.ndarray, alpha: np.ndarray,
        greedy: bool = False, gate: np.ndarray | None = None,
    ) -> _Plan:
        """Window planning for idle volumes `vols` with job sizes `size0` (bytes if started now).

        `greedy` plans one job (fulls); `gate` marks volumes that may only use quiet windows
        (cost per GB at most `full_quiet_ratio` x the horizon median: an early full).
        """
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
        up_i[:, 0], up_m[:, 0] = self._current_upper(fc, vols, i0).T
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
        a = alpha[:, None]
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
        job_cost = np.where(ok, np.take_along_axis(ccum, kk, 1) + np.take_along_axis(cc, kk, 1) * frac - c_start, np.inf)
        dur = end_t - s_t[None, :]
        rpo = ctx.volumes.rpo_s[vols]
        deadline = ctx.last_snapshot_t[vols] + rpo
        margin = self._margin(rpo)
        latest_end = deadline - margin
        feasible = ok & (s_t[None, :] + dur * p.duration_safety <= latest_end[:, None])
        any_f = feasible.any(axis=1)
        cpb = np.where(ok, job_cost / (size / 1e9), np.nan)  # cost per GB of a job starting there
        with np.errstate(all="ignore"):
            med = np.nanmedian(np.where(np.isnan(cpb).all(axis=1, keepdims=True), 0.0, cpb), axis=1)
        cpb = np.where(ok, cpb, np.inf)
        overhead = p.job_overhead_gb * np.where(ok, cpb, 0.0)
        first_cost = np.where(feasible, job_cost + overhead, np.inf)
        path = [None] * vols.size
        if gate is not None and gate.any():
            feasible = feasible & ~(gate[:, None] & ~(cpb <= p.full_quiet_ratio * med[:, None]))
            any_f = feasible.any(axis=1)
        if p.lookahead and m > 1 and not greedy:
            h_end = fc.origin_t + h * step
            # where the price per GB is flat over the horizon the cheapest sequence is known
            # without a search: as few backups as possible, as late as possible (or none yet)
            fin = np.where(np.isfinite(cpb), cpb, np.nan)
            with np.errstate(all="ignore"):
                lo, hi = np.nanmin(fin, axis=1), np.nanmax(fin, axis=1)
            flat = any_f & (hi <= lo * (1.0 + p.window_tolerance) + 1e-12)
            last = m - 1 - np.argmax(feasible[:, ::-1], axis=1)
            best = np.where(any_f, np.where(deadline - margin >= h_end, -1, last), -1)
            plan_cost = np.where(any_f, first_cost[np.arange(vols.size), np.maximum(last, 0)], np.inf)
            wait_cost = np.full(vols.size, np.nan)
            path: list = [None] * vols.size
            search = np.flatnonzero(~flat)
            # the rest in chunks of volumes: the path search holds [m, P, m] arrays
            for c in range(0, search.size, _CHUNK):
                sl = search[c : c + _CHUNK]
                b, pc, wc, paths = self._lookahead(
                    p, vols[sl], m, s_t, io_cum[sl], io_step[sl], frac0, w0[sl], growth[sl], alpha[sl], size[sl, 0], first_cost[sl],
                    cpb[sl], r[sl, :m], rpo[sl], margin[sl], med[sl], h_end, deadline[sl],
                )
                best[sl], plan_cost[sl], wait_cost[sl] = b, pc, wc
                for i, q in enumerate(sl.tolist()):
                    path[q] = paths[i]
            for q in np.flatnonzero(flat & (best == 0)).tolist():
                path[q] = [float(s_t[0])]
            score_now, score_best = first_cost[:, 0], plan_cost
        else:  # greedy: the latest start within tolerance of the cheapest cost per GB
            score = np.where(feasible, cpb, np.inf)
            cmin = score.min(axis=1)
            near = feasible & (score <= cmin[:, None] * (1.0 + p.window_tolerance) + 1e-12)
            best = np.where(any_f, m - 1 - np.argmax(near[:, ::-1], axis=1), -1)
            score_now, score_best, wait_cost = cpb[:, 0], cmin, np.full(vols.size, np.nan)
        if not greedy:  # no more often than min_interval_frac x RPO (quiet-period backups have their own spacing)
            best = np.where((best == 0) & (ctx.rp_age_s[vols] < p.min_interval_frac * rpo), np.where(m > 1, 1, -1), best)
        age = ctx.rp_age_s[vols]
        quiet = feasible[:, 0] & (cpb[:, 0] <= p.quiet_ratio * med) & (age >= p.quiet_min_interval_frac * rpo) & (m > 1) & (best != 0)
        start_now = (any_f & (best == 0)) | quiet
        forced = ~any_f
        step_next = fc.origin_t + (i0 + 1) * step
        wake = np.where(best > 0, s_t[np.maximum(best, 0)], np.where(forced, t, step_next))
        left = latest_end - t
        need = np.where(left > 0, size[:, 0] * p.duration_safety / MB / np.maximum(left, 1e-9), np.inf)
        # the most the device can give a forced job (expected load: the simulator caps at headroom anyway)
        max_rate = np.minimum(rate_for_utilisation(mu_i[:, 0], mu_m[:, 0], max_iops[:, 0], max_mbps[:, 0], p.max_util), tier_share)
        rate_now = r[:, 0]
        # RPO over impact: only when even the full threshold's rate cannot meet the deadline
        rate_thr = np.minimum(rate_for_impact(up_i[:, 0], up_m[:, 0], max_iops[:, 0], max_mbps[:, 0], self.threshold(ctx) / p.impact_target), tier_share)
        forced = forced & (need > rate_thr)
        late = ~any_f & ~forced
        # the latest feasible start and the slot time its job needs (tier contention check)
        last = np.where(any_f, m - 1 - np.argmax(feasible[:, ::-1], axis=1), 0)
        latest_t = np.where(any_f, s_t[last], t)
        slot_s = np.take_along_axis(dur, last[:, None], 1)[:, 0]
        slot_s = np.where(np.isfinite(slot_s), slot_s, np.where(np.isfinite(dur[:, 0]), dur[:, 0], h * step)) * p.duration_safety
        return _Plan(
            start_now=start_now | ~any_f,
            forced=forced,
            late=late,
            quiet=quiet,
            feasible_any=any_f,
            wake_t=wake,
            size=size[:, 0],
            rate_now=rate_now,
            need_rate=need,
            max_rate=max_rate,
            cost_now=score_now,
            cost_best=score_best,
            cost_median=med,
            cost_wait=wait_cost,
            best_t=np.where(best >= 0, s_t[np.maximum(best, 0)], np.inf),
            dur_now=dur[:, 0],
            rate_thr=rate_thr,
            up_now=np.stack([up_i[:, 0], up_m[:, 0]], -1),
            latest_t=latest_t,
            slot_s=slot_s,
            deadline=deadline,
            path=path,
        )

    def _lookahead(self, p, vols, m, s_t, io_cum, io_step, frac0, w0, growth, alpha, size_now, first_cost, cpb, r_start, rpo, margin, cpb_ref, h_end, deadline):
        """Cheapest sequence of backups over the horizon (a shortest path over start steps).

        Node j = a backup starting at candidate j. The first hop (from the current restore
        point) costs its exact planned job cost; a hop j -> j' costs the bytes dirtied
        between the two snapshots (kappa * predicted_io ** dirty_exponent) at j''s cost per
        GB, and is allowed when j' starts and finishes within RPO of j. Bytes dirtied after
        the last backup of the horizon are charged at the horizon's median cost per GB,
        and that backup must cover the horizon's end. Returns (first node per volume, -1 =
        none needed yet; the plan's cost; the cost of no backup in the horizon; the paths).
        """
        pcount = vols.size
        io_end = io_cum[:, m - 1] + io_step[:, m - 1] * ((1.0 - frac0) if m == 1 else 1.0)
        wj = io_cum  # predicted I/O from now to each candidate start
        # [j', P, j] layout: the loop below reads one contiguous [P, j] slab per node j'
        gap = np.maximum(wj.T[:, :, None] - wj[None, :, :], 1.0).astype(np.float32)
        hop_size = np.maximum(np.exp(np.log(gap) * alpha.astype(np.float32)[None, :, None]) * (growth * (1.0 + p.size_margin)).astype(np.float32)[None, :, None], MB)
        cpb_t = cpb.T[:, :, None]  # cost per GB of the hop's own job, at j'
        over = p.job_overhead_gb * np.where(np.isfinite(cpb_t), cpb_t, 0.0)
        jj = np.arange(m)
        span = s_t[:, None] - s_t[None, :]  # [j', j]
        # the hop's job must start and finish within RPO (less the margin) of the previous snapshot
        room = np.where((jj[:, None] > jj[None, :])[:, None, :], (rpo - margin)[None, :, None] - span[:, None, :], -1.0)
        limit = room * (r_start.T * (MB / p.duration_safety))[:, :, None]
        hop_t = np.where((hop_size <= limit) & (limit > 0), hop_size * (cpb_t / 1e9) + over, np.inf)
        # ties go to later backups (and to waiting): a later snapshot covers longer
        tie = 1e-9 * (m - jj)[None, :]
        dist = first_cost * (1.0 + tie) + tie
        pred = np.full((pcount, m), -1, np.int64)
        first = np.tile(jj, (pcount, 1))
        rows = np.arange(pcount)
        for j2 in range(1, m):  # nodes in time order: a shortest path over a DAG
            c = dist + hop_t[j2]
            i = c.argmin(axis=1)
            v = c[rows, i]
            better = v < dist[:, j2]
            if better.any():
                b = np.flatnonzero(better)
                dist[b, j2] = v[b]
                pred[b, j2] = i[b]
                first[b, j2] = first[b, i[b]]
        tail = np.maximum(io_end[:, None] - wj, 0.0)
        term = cpb_ref[:, None] * growth[:, None] * tail ** alpha[:, None] * (1.0 + p.size_margin) / 1e9
        covers = s_t[None, :] + (rpo - margin)[:, None] >= h_end
        total = np.where(covers, dist + term, np.inf)
        end = np.argmin(total, axis=1)
        plan_cost = total[rows, end]
        w_total = w0[:, 0] + io_end
        wait_cost = np.where(
            deadline - margin >= h_end,
            cpb_ref * (size_now / (1.0 + p.size_margin) + growth * (w_total**alpha - w0[:, 0] ** alpha)) * (1.0 + p.size_margin) / 1e9,
            np.inf,
        )
        go = np.isfinite(plan_cost) & (plan_cost < wait_cost)
        first_node = np.where(go, first[rows, end], -1)
        paths: list = [None] * pcount
        for q in np.flatnonzero(first_node == 0).tolist():  # the reasons of volumes starting now
            node, nodes = int(end[q]), []
            while node >= 0:
                nodes.append(float(s_t[node]))
                node = int(pred[q, node])
            paths[q] = nodes[::-1]
        return first_node, plan_cost, wait_cost, paths

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
        self._obs = np.stack([np.asarray(ctx.prod_iops, float), np.asarray(ctx.prod_mbps, float)], -1)

        fc, src = self._forecast(ctx)
        i0, elapsed = self._step_index(fc, t)
        self._obs_fresh = elapsed >= ctx.tick_s - 1e-9  # the last tick lies inside the current step
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
        elif p.nowcast and self._obs_fresh:  # load observed above the forecast: re-throttle those jobs now
            running = np.flatnonzero(ctx.job_state == _RUNNING)
            if running.size:
                up = np.asarray(fc.upper)[running, i0]
                surprise = running[((self._obs[running] > up * (1.0 + p.rethrottle_tol)) & (self._obs[running] > 0)).any(axis=1)]
                if surprise.size:
                    actions += self._control(ctx, fc, surprise)
        return actions

    # ------------------------------------------------------------------ starting jobs
    def _measure(self, ctx: DecisionContext) -> tuple[np.ndarray, np.ndarray]:
        """CBT sizes; refits each volume's growth law dirty = kappa * io ** alpha (log-log LS)."""
        p = self.params
        incr, diff = ctx.dirty_bytes()
        w = self._io_since
        ok = (w >= 1e3) & (incr >= MB)
        if ok.any():
            x, y = np.log(w[ok]), np.log(incr[ok])
            f = self._fit[:, ok] * p.growth_memory
            f += np.stack([np.ones_like(x), x, y, x * x, x * y])
            self._fit[:, ok] = f
            n, sx, sy, sxx, sxy = f
            var = n * sxx - sx * sx
            prior = p.dirty_exponent
            alpha = np.where(var > 1e-6 * n * n, (n * sxy - sx * sy) / np.where(var > 0, var, 1.0), prior)
            # shrink towards the prior while the fit has little spread in log io
            conf = np.clip(var / np.maximum(n * n, 1e-12) / 0.5, 0.0, 1.0)
            alpha = np.clip(conf * alpha + (1.0 - conf) * prior, 0.2, 1.0)
            self._alpha[ok] = alpha
            self._kappa[ok] = np.exp((sy - alpha * sx) / n)
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
        # a job shares the tier's ingest with at most `slots` running jobs
        share = np.full(vols.size, self._ingest[base_tier] / (min(busy[base_tier], slots[base_tier] - 1) + 1.0))
        kappa, alpha = self._kappa[vols], self._alpha[vols]
        if np.isnan(kappa).any():  # not fitted yet: through the current size
            w = self._io_since[vols]
            guess = np.where(w > 0, incr / np.maximum(w, 1.0) ** alpha, 0.0)
            kappa = np.where(np.isnan(kappa), guess, kappa)
        plan = self._plan(ctx, fc, vols, sizes, np.where(kind == _FULL, 0.0, kappa), share, alpha)
        # a full due by the full-every rule waits for a window it fits; until then the usual kind
        if soft_full.any():
            sel = np.flatnonzero(soft_full)
            early = ctx.t - ctx.last_full_t[vols[sel]] < (p.full_every_h or 0.0) * 3600.0
            fplan = self._plan(ctx, fc, vols[sel], used[sel], np.zeros(sel.size), share[sel], alpha[sel], greedy=True, gate=early)
            take = fplan.feasible_any
            if take.any():
                idx = sel[take]
                kind[idx] = _FULL
                sizes[idx] = used[idx]
                rto_after[idx] = used[idx] / (self._bulk_tier_restore() * MB) + p.restore_overhead_s
                for f in _Plan.__dataclass_fields__:
                    if f == "path":
                        for i, q in zip(idx.tolist(), np.flatnonzero(take).tolist()):
                            plan.path[i] = fplan.path[q]
                    else:
                        getattr(plan, f)[idx] = getattr(fplan, f)[take]
        self._wake[vols] = plan.wake_t
        self._latest[vols] = plan.latest_t
        self._slot_s[vols] = plan.slot_s
        crowd, crowd_why = self._contention(ctx, vols, plan)
        go = np.flatnonzero(plan.start_now | crowd)
        if go.size == 0:
            return []
        order = np.argsort(plan.latest_t[go], kind="stable")  # most urgent first: they queue first
        go = go[order]
        started = plan.slot_s[go]
        self._typical_slot_s += min(1.0, started.size / 20.0) * (float(np.mean(started)) - self._typical_slot_s)
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
            # predicted RTO estimate with this job's bytes on each tier
            base = rto_after[j] - sizes[j] / (self._bulk_tier_restore() * MB)
            rto_k = base + sizes[j] / (self._restore * MB)
            pressure = np.clip((rto_k / rto_s - p.rto_tight_frac) / max(1e-9, 1.0 - p.rto_tight_frac), 0.0, 1.0)
            job_rate = max(plan.rate_now[j], plan.need_rate[j] if plan.forced[j] or plan.late[j] else 0.0, p.min_rate_mbps)
            share = self._ingest / (np.minimum(busy, slots - 1) + 1.0)
            short = np.clip(1.0 - share / job_rate, 0.0, 1.0)  # how much the tier's ingest share would slow this job
            tier, tier_why = self._choose_tier(ctx, occ, free, urgency, pressure, short)
            busy[tier] += 1
            occ[tier] = busy[tier] / slots[tier]
            free[tier] -= 1
            k = BackupKind(int(kind[j]))
            what = self._what_reason(k, ctx, v, rto_after[j], after_incr[j], rto_lim[j], soft_full[j])
            dl = f"deadline in {left / 3600:.1f} h" if np.isfinite(left) else "no restore point"
            thr = self.threshold(ctx) / p.impact_target
            q = round(100 * getattr(fc, "quantile", 0.9))
            if plan.forced[j]:
                rate = float(np.clip(max(plan.need_rate[j], plan.rate_now[j], p.min_rate_mbps), p.min_rate_mbps, max(plan.max_rate[j], p.min_rate_mbps)))
                why = (
                    f"forced: no window completes under the threshold before the RPO deadline ({dl}); "
                    f"needs {plan.need_rate[j]:.0f} MB/s > {plan.rate_thr[j]:.0f} MB/s at the threshold {thr:g}; "
                    f"{k.name.lower()} {sizes[j] / 1e9:.1f} GB at {rate:.0f} MB/s, predicted p{q} impact {self._impact(v, plan.up_now[j], rate):.3f}; "
                    f"{what}; {tier_why}; {desc}"
                )
                self.stats["forced"] += 1
                out.append(Start(v, k, tier, rate, reason=why, forced=True))
                self._io_since[v] = 0.0  # its snapshot resets changed-block tracking
                continue
            rate = float(max(plan.rate_now[j], p.min_rate_mbps))
            if plan.late[j]:
                rate = float(min(max(plan.need_rate[j], rate), max(plan.max_rate[j], p.min_rate_mbps)))
                head = f"last moment before the RPO deadline: no later window completes in time (needs {plan.need_rate[j]:.0f} MB/s)"
                self.stats["late"] += 1
            elif crowd[j] and not plan.start_now[j]:
                head = crowd_why
                self.stats["contention"] += 1
            elif plan.quiet[j]:
                head = f"quiet now: {plan.cost_now[j]:.3g}/GB <= {p.quiet_ratio:g} x horizon median {plan.cost_median[j]:.3g}/GB"
                self.stats["quiet"] += 1
            elif plan.path[j] is not None and np.isnan(plan.cost_wait[j]):
                head = f"flat predicted price over the horizon ({plan.cost_now[j]:.3g}): the latest start that meets the deadline"
                self.stats["window"] += 1
            elif plan.path[j] is not None:
                at = ", ".join(f"+{(x - ctx.t) / 3600:.1f}" for x in plan.path[j][:4]) + (" ..." if len(plan.path[j]) > 4 else "")
                head = (
                    f"cheapest plan starts now: backups at {at} h, plan cost {plan.cost_best[j]:.3g} "
                    f"(waiting past the horizon {plan.cost_wait[j]:.3g}); now {plan.cost_now[j]:.3g}"
                )
                self.stats["window"] += 1
            else:
                head = f"cheapest window now: {plan.cost_now[j]:.3g}/GB (best {plan.cost_best[j]:.3g}, median {plan.cost_median[j]:.3g})"
                self.stats["window"] += 1
            why = (
                f"{head}; predicted p{q} impact {self._impact(v, plan.up_now[j], rate):.3f} <= {thr:g} at {rate:.0f} MB/s, "
                f"est {plan.dur_now[j] / 3600:.2f} h; {dl}; {k.name.lower()} {sizes[j] / 1e9:.1f} GB, {what}; {tier_why}; {desc}"
            )
            out.append(Start(v, k, tier, rate, reason=why))
            self._io_since[v] = 0.0
        return out

    def _contention(self, ctx: DecisionContext, vols: np.ndarray, plan: _Plan) -> tuple[np.ndarray, str]:
        """Predicted tier contention: which of `vols` must start now so every idle volume's
        backup still gets a tier slot before its latest feasible start.

        An earliest-deadline-first test over the whole fleet (fluid approximation): sorted by
        latest start L, a backup gets a slot once the backlog of queued and running jobs and
        the slot time of the backups before it have drained through all tiers' slots; that
        must happen by its L. Every volume up to the last one that would be late starts now
        (they queue in this order).
        """
        idle = np.flatnonzero(ctx.job_state == _NONE)
        out = np.zeros(vols.size, bool)
        if idle.size == 0:
            return out, ""
        t = ctx.t
        run = np.flatnonzero((ctx.job_state == _RUNNING) | (ctx.job_state == _PAUSED))
        thr = ctx.job_throttle_mbps[run]
        rate = np.maximum(np.where(np.isfinite(thr), np.maximum(thr, ctx.job_rate_mbps[run]), ctx.job_rate_mbps[run]), self.params.min_rate_mbps)
        backlog = float(np.minimum(ctx.job_remaining_bytes[run] / (rate * MB), 86_400.0).sum())
        backlog += int(np.sum(ctx.job_state == _QUEUED)) * self._typical_slot_s
        order = idle[np.argsort(self._latest[idle], kind="stable")]
        need = np.cumsum(self._slot_s[order]) - self._slot_s[order] + backlog  # work ahead of each
        avail = self._slots_total * np.maximum(self._latest[order] - t, 0.0)
        over = np.flatnonzero(need > avail)
        if over.size == 0:
            return out, ""
        k = int(over[-1])  # every volume up to the last prefix that does not fit
        crowded = np.zeros(ctx.volumes.n, bool)
        crowded[order[: k + 1]] = True
        out = crowded[vols]
        why = (
            f"tier contention: {k + 1} backups due by +{(self._latest[order[k]] - t) / 3600:.1f} h need "
            f"{need[k] / 3600:.1f} slot-hours, {avail[k] / 3600:.1f} available in {int(self._slots_total)} slots: start early"
        )
        return out, why

    def _impact(self, v: int, up: np.ndarray, rate: float) -> float:
        return float(impact(up[0], up[1], rate, self._vmax[0][v], self._vmax[1][v]))

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
    def _current_upper(self, fc, vols: np.ndarray, i0: int) -> np.ndarray:
        """Upper load `[len(vols), 2]` of the current step: the forecast's, or (`nowcast`) the
        last observed tick where that is higher (once a tick of this step has been observed)."""
        up = np.asarray(fc.upper)[vols, i0]
        return np.maximum(up, self._obs[vols]) if self.params.nowcast and self._obs_fresh else up

    def _control(self, ctx: DecisionContext, fc, vols: np.ndarray | None = None) -> list[Action]:
        """Re-throttle, pause and resume jobs (all active ones, or those of `vols`) for the current forecast step."""
        p = self.params
        active = np.flatnonzero((ctx.job_state == _RUNNING) | (ctx.job_state == _PAUSED))
        if vols is not None:
            active = np.intersect1d(active, vols)
        if active.size == 0:
            return []
        t = ctx.t
        h = self._horizon(fc)
        i0, _ = self._step_index(fc, t)
        max_iops, max_mbps = self._vmax[0][active], self._vmax[1][active]
        up = self._current_upper(fc, active, i0)
        thr = self.threshold(ctx)
        r_imp = rate_for_impact(up[:, 0], up[:, 1], max_iops, max_mbps, thr)
        mu = fc.mean[active, i0]
        r_max = rate_for_utilisation(mu[:, 0], mu[:, 1], max_iops, max_mbps, p.max_util)
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
        seen = (up > np.asarray(fc.upper)[active, i0]).any(axis=1)  # the observed load is the higher one
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
                        f"{'observed' if seen[j] else 'predicted'} burst for {burst_s / 60:.0f} min (upper {up[j, 0]:.0f} IOPS / {up[j, 1]:.0f} MB/s, "
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
                    load = "observed load above the forecast" if seen[j] else "re-throttle for forecast step: p90"
                    why = f"{load} {up[j, 0]:.0f} IOPS / {up[j, 1]:.0f} MB/s, predicted impact {imp_t:.3f} at {target[j]:.0f} MB/s; {desc}"
                out.append(Throttle(v, float(target[j]), reason=why))
        return out

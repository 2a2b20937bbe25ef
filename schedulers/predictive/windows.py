"""When to back up: window planning over the forecast horizon, and the lookahead plan.

In forecast step h a backup may read at `rate_for_impact(upper[h], threshold)` MB/s (the
upper forecast, so predicted impact stays under the threshold when load comes in high),
capped by the tier's ingest share. For every candidate start (now, then each later step
boundary) a job of the planned size runs step by step at those rates; its *cost* is the
production I/O it would slow down times the impact it would cause (from the mean forecast;
sustained-load steps weigh more). A start is feasible when the job, its duration stretched
by `duration_safety`, completes the margin before the RPO deadline. Sizes grow with the
predicted I/O until the start by the volume's growth law.

With `lookahead` the plan is the cheapest *sequence* of backups over the horizon (a
shortest path over start steps, `lookahead`), and a volume starts now only when that
sequence begins now; otherwise the greedy rule starts at the latest window within
`window_tolerance` of the cheapest cost per GB. When nothing is feasible the RPO wins:
the plan says start now (forced when even the full threshold's rate cannot make it).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from common.units import GB, MB
from schedulers.predictive.forecast import Frame
from schedulers.predictive.lookahead import lookahead
from schedulers.predictive.params import PredictiveParams
from sim.types import LoadLabel, impact, rate_for_impact, rate_for_utilisation

_SUSTAINED = int(LoadLabel.SUSTAINED)


@dataclass
class Plan:
    """The outcome of window planning for a set of volumes (arrays over those volumes)."""

    start_now: np.ndarray  # bool
    forced: np.ndarray  # bool: no feasible window and the deadline needs more than the threshold allows
    empty: np.ndarray  # bool: nothing to move if started now (never forced)
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
    rate_thr: np.ndarray  # the device's rate at the full threshold now (a start above it is forced)
    up_now: np.ndarray  # [P, 2] upper-quantile load forecast for the current step
    latest_t: np.ndarray  # latest feasible start (now when none)
    slot_s: np.ndarray  # tier-slot seconds the job needs (stretched duration)
    deadline: np.ndarray
    path: list

    def start_rate(self, j: int, urgent: bool, lo: float) -> float:
        """The rate planned volume `j` starts at (at least `lo` MB/s): a forced start the rate its
        deadline needs, within the device's headroom; a late or urgent one (started before its plan)
        at least that rate, so it does not crawl through a blocked step; else the threshold's rate."""
        if self.forced[j]:
            return float(np.clip(max(self.need_rate[j], self.rate_now[j], lo), lo, max(self.max_rate[j], lo)))
        rate = float(max(self.rate_now[j], lo))
        if self.late[j] or (urgent and not self.start_now[j]):
            rate = float(min(max(self.need_rate[j], rate), max(self.max_rate[j], lo)))
        return rate

    def overlay(self, idx: np.ndarray, other: Plan, take: np.ndarray) -> None:
        """Replace this plan's entries `idx` by `other`'s entries where `take` (bool) holds."""
        for f in fields(self):
            if f.name == "path":
                for i, q in zip(idx.tolist(), np.flatnonzero(take).tolist()):
                    self.path[i] = other.path[q]
            else:
                getattr(self, f.name)[idx] = getattr(other, f.name)[take]


@dataclass
class _Steps:
    """Rates, bytes and costs per forecast step from the current one, `[P, m + ext]`."""

    m: int  # candidate starts: now, then each later step boundary
    step: float
    frac0: float  # fraction of the current step already gone
    s_t: np.ndarray  # [m] candidate start times
    max_iops: np.ndarray  # [P, 1]
    max_mbps: np.ndarray
    up_i: np.ndarray
    up_m: np.ndarray
    mu_i: np.ndarray
    mu_m: np.ndarray
    r: np.ndarray  # rate the threshold allows (0: blocked)
    bb: np.ndarray  # bytes per whole step
    cc: np.ndarray  # cost per whole step (IO x impact x s)
    bcum: np.ndarray
    ccum: np.ndarray
    b_start: np.ndarray  # bytes / cost accumulated at each candidate start, [P, m]
    c_start: np.ndarray
    io_step: np.ndarray  # predicted production I/O per step
    io_cum: np.ndarray  # ... from now to each candidate start, [P, m]


@dataclass
class _Jobs:
    """A job of the planned size started at each candidate, `[P, m]`."""

    size: np.ndarray
    dur: np.ndarray
    ok: np.ndarray  # it completes within the (extended) horizon
    feasible: np.ndarray
    any_f: np.ndarray  # [P]
    cpb: np.ndarray  # cost per GB (inf where not ok)
    med: np.ndarray  # [P] the horizon's median cost per GB
    first_cost: np.ndarray  # job cost (+ overhead) where feasible, else inf
    rpo: np.ndarray  # [P]
    margin: np.ndarray
    deadline: np.ndarray
    latest_end: np.ndarray


def _rowwise_searchsorted(b: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """`searchsorted(b[i], targets[i], side='left')` for every row i (rows non-decreasing)."""
    p, n = b.shape
    span = max(_finite_max(b[:, -1]), _finite_max(targets)) * 2.0 + 1.0
    off = np.arange(p, dtype=np.float64)[:, None] * span
    flat = (b + off).ravel()
    idx = np.searchsorted(flat, (targets + off).ravel(), side="left").reshape(targets.shape)
    return idx - np.arange(p)[:, None] * n


def row_nanmedian(x: np.ndarray) -> np.ndarray:
    """`np.nanmedian(x, axis=1)` of a 2-D `x` with a number in every row, by one sort: the middle
    element, or the mean of the two (as `nanmedian` computes them). A zero with its sign bit set
    (whose place among equal zeros a sort leaves open) goes to `nanmedian` itself."""
    if x.shape[0] == 0 or x.shape[1] == 0 or np.any((x == 0) & np.signbit(x)):
        return np.nanmedian(x, axis=1)
    y = np.sort(x, axis=1)  # NaNs last
    n = np.count_nonzero(~np.isnan(x), axis=1)
    h = n // 2
    lo = np.where(n % 2 == 1, h, h - 1)
    rows = np.arange(x.shape[0])
    return (y[rows, lo] + y[rows, h]) / 2.0


def _finite_max(x: np.ndarray) -> float:
    """The largest finite value of `x` (0 when none): NaN-safe without NumPy's all-NaN warning."""
    fin = np.isfinite(x)
    return float(x[fin].max()) if fin.any() else 0.0


def _steps(p: PredictiveParams, fr: Frame, vols: np.ndarray, tier_share: np.ndarray) -> _Steps:
    fc, t, h, i0 = fr.fc, fr.ctx.t, fr.h, fr.i0
    step = float(fc.step_s)
    m = h - i0
    ext = max(m, 12)  # beyond the horizon the last step is held (long jobs)
    max_iops, max_mbps = fr.max_iops[vols][:, None], fr.max_mbps[vols][:, None]

    def window(a):
        a = a[vols, i0:h]
        return np.concatenate([a, np.repeat(a[:, -1:], ext, axis=1)], axis=1)

    up_i, up_m = window(fc.upper[..., 0]), window(fc.upper[..., 1])
    up_i[:, 0], up_m[:, 0] = fr.upper_now(vols).T
    mu_i, mu_m = window(fc.mean[..., 0]), window(fc.mean[..., 1])
    labels = window(np.asarray(fc.labels))
    r = np.minimum(rate_for_impact(up_i, up_m, max_iops, max_mbps, fr.threshold), tier_share[:, None])
    r = np.where(r >= p.min_rate_mbps, r, 0.0)
    imp = np.where(r > 0, impact(mu_i, mu_m, r, max_iops, max_mbps), 0.0)
    w = 1.0 + p.sustained_penalty * (labels == _SUSTAINED)
    bb = r * MB * step
    cc = mu_i * imp * w * step
    zero = np.zeros((vols.size, 1))
    bcum = np.concatenate([zero, np.cumsum(bb, axis=1)], axis=1)
    ccum = np.concatenate([zero, np.cumsum(cc, axis=1)], axis=1)
    frac0 = fr.elapsed / step
    b_start = bcum[:, :m].copy()
    c_start = ccum[:, :m].copy()
    b_start[:, 0] += bb[:, 0] * frac0
    c_start[:, 0] += cc[:, 0] * frac0
    s_t = fc.origin_t + (i0 + np.arange(m)) * step
    s_t[0] = t
    io_step = mu_i * step
    io_cum = np.concatenate([zero, np.cumsum(io_step, axis=1)], axis=1)[:, :m]
    io_cum = io_cum - io_step[:, :1] * frac0
    io_cum[:, 0] = 0.0
    return _Steps(m, step, frac0, s_t, max_iops, max_mbps, up_i, up_m, mu_i, mu_m, r, bb, cc, bcum, ccum, b_start, c_start, io_step, io_cum)


def _jobs(p: PredictiveParams, fr: Frame, st: _Steps, vols: np.ndarray, size0, growth, alpha, w0, tail_s=None, snap_t=None) -> _Jobs:
    """Where a job of `size0` bytes (+ growth by the law `growth` x io ** `alpha`) started at each candidate ends, and what it costs.

    An empty job (nothing changed, none predicted) completes as it starts, at no cost, whatever
    the load. `tail_s`: time the volume's next backup needs after this one (a long job must
    leave it room before its own restore point's deadline); `snap_t`: the newest snapshot to
    plan from (default the volumes' own)."""
    ctx, fc = fr.ctx, fr.fc
    a = alpha[:, None]
    size = (size0[:, None] + growth[:, None] * ((w0 + st.io_cum) ** a - w0**a)) * (1.0 + p.size_margin)
    size = np.nan_to_num(size, nan=0.0)
    empty = size <= 0.0
    size = np.where(empty, 0.0, np.maximum(size, MB))
    target = st.b_start + size
    k = _rowwise_searchsorted(st.bcum, target) - 1
    ok = k < st.bcum.shape[1] - 1
    kk = np.clip(k, 0, st.bb.shape[1] - 1)
    bk = np.take_along_axis(st.bb, kk, 1)
    base = np.take_along_axis(st.bcum, kk, 1)
    frac = np.where(ok & (bk > 0), (target - base) / np.where(bk > 0, bk, 1.0), 0.0)
    end_t = np.where(ok, fc.origin_t + (fr.i0 + kk + frac) * st.step, np.inf)
    job_cost = np.where(ok, np.take_along_axis(st.ccum, kk, 1) + np.take_along_axis(st.cc, kk, 1) * frac - st.c_start, np.inf)
    ok, job_cost = ok | empty, np.where(empty, 0.0, job_cost)
    dur = np.where(empty, 0.0, np.maximum(end_t - st.s_t[None, :], 0.0))
    rpo = ctx.volumes.rpo_s[vols]
    deadline = (ctx.last_snapshot_t[vols] if snap_t is None else snap_t) + rpo
    margin = p.margin(rpo)
    latest_end = deadline - margin
    feasible = ok & (st.s_t[None, :] + dur * p.duration_safety <= latest_end[:, None])
    if tail_s is not None:
        feasible &= dur * p.duration_safety + tail_s[:, None] <= (rpo - margin)[:, None]
    any_f = feasible.any(axis=1)
    with np.errstate(all="ignore"):
        cpb = np.where(ok, np.where(empty, 0.0, job_cost / np.where(empty, 1.0, size / GB)), np.nan)  # cost per GB of a job starting there
        med = row_nanmedian(np.where(np.isnan(cpb).all(axis=1, keepdims=True), 0.0, cpb))
    cpb = np.where(ok, cpb, np.inf)
    overhead = p.job_overhead_gb * np.where(ok, cpb, 0.0)
    first_cost = np.where(feasible, job_cost + overhead, np.inf)
    return _Jobs(size, dur, ok, feasible, any_f, cpb, med, first_cost, rpo, margin, deadline, latest_end)


def _choose_sequence(p: PredictiveParams, fr: Frame, st: _Steps, jb: _Jobs, growth, alpha, w0):
    """Lookahead choice: (first start per volume, -1 = none yet; cost now; plan cost; cost of waiting; paths)."""
    m, n = st.m, jb.any_f.size
    h_end = fr.fc.origin_t + fr.h * st.step
    # where the price per GB is flat over the horizon the cheapest sequence is known
    # without a search: as few backups as possible, as late as possible (or none yet)
    fin = np.isfinite(jb.cpb)
    lo = np.where(fin, jb.cpb, np.inf).min(axis=1)
    hi = np.where(fin, jb.cpb, -np.inf).max(axis=1)
    flat = jb.any_f & (hi <= lo * (1.0 + p.window_tolerance) + 1e-12)
    last = m - 1 - np.argmax(jb.feasible[:, ::-1], axis=1)
    best = np.where(jb.any_f, np.where(jb.deadline - jb.margin >= h_end, -1, last), -1)
    plan_cost = np.where(jb.any_f, jb.first_cost[np.arange(n), np.maximum(last, 0)], np.inf)
    wait_cost = np.full(n, np.nan)
    path: list = [None] * n
    sl = np.flatnonzero(~flat)
    if sl.size:
        b, pc, wc, paths = lookahead(p, st, jb, sl, growth[sl], alpha[sl], w0[sl], h_end)
        best[sl], plan_cost[sl], wait_cost[sl] = b, pc, wc
        for i, q in enumerate(sl.tolist()):
            path[q] = paths[i]
    for q in np.flatnonzero(flat & (best == 0)).tolist():
        path[q] = [float(st.s_t[0])]
    return best, jb.first_cost[:, 0], plan_cost, wait_cost, path


def _choose_greedy(p: PredictiveParams, st: _Steps, jb: _Jobs):
    """Greedy choice: the latest start within tolerance of the cheapest cost per GB."""
    score = np.where(jb.feasible, jb.cpb, np.inf)
    cmin = score.min(axis=1)
    near = jb.feasible & (score <= cmin[:, None] * (1.0 + p.window_tolerance) + 1e-12)
    best = np.where(jb.any_f, st.m - 1 - np.argmax(near[:, ::-1], axis=1), -1)
    n = jb.any_f.size
    return best, jb.cpb[:, 0], cmin, np.full(n, np.nan), [None] * n


def plan_windows(
    p: PredictiveParams,
    fr: Frame,
    vols: np.ndarray,
    size0: np.ndarray,
    growth: np.ndarray,
    tier_share: np.ndarray,
    alpha: np.ndarray,
    io_since: np.ndarray,
    greedy: bool = False,
    gate: np.ndarray | None = None,
    tail_s: np.ndarray | None = None,
    snap_t: np.ndarray | None = None,
) -> Plan:
    """Window planning for idle volumes `vols` with job sizes `size0` (bytes if started now).

    `growth` and `alpha` are the volumes' growth laws, `io_since` the production I/O since
    each volume's snapshot (all volumes). `greedy` plans one job (fulls); `gate` marks
    volumes that may only use quiet windows (cost per GB at most `full_quiet_ratio` x the
    horizon median: an early full); `tail_s` the time each volume's next backup needs after this one;
    `snap_t` plans from these snapshots instead (a fresh restore point: what if one were taken now).
    """
    st = _steps(p, fr, vols, tier_share)
    w0 = io_since[vols][:, None]
    jb = _jobs(p, fr, st, vols, size0, growth, alpha, w0, tail_s, snap_t)
    if gate is not None and gate.any():
        jb.feasible = jb.feasible & ~(gate[:, None] & ~(jb.cpb <= p.full_quiet_ratio * jb.med[:, None]))
        jb.any_f = jb.feasible.any(axis=1)
    if p.lookahead and st.m > 1 and not greedy:
        best, score_now, score_best, wait_cost, path = _choose_sequence(p, fr, st, jb, growth, alpha, w0)
    else:
        best, score_now, score_best, wait_cost, path = _choose_greedy(p, st, jb)
    if not greedy:  # no more often than min_interval_frac x RPO (quiet-period backups have their own spacing)
        best = np.where((best == 0) & (fr.ctx.rp_age_s[vols] < p.min_interval_frac * jb.rpo), np.where(st.m > 1, 1, -1), best)
    return _finish(p, fr, st, jb, vols, tier_share, best, score_now, score_best, wait_cost, path)


def _finish(p: PredictiveParams, fr: Frame, st: _Steps, jb: _Jobs, vols, tier_share, best, score_now, score_best, wait_cost, path) -> Plan:
    """The plan from the chosen first starts `best`: start now, forced, late, quiet, rates, slot time."""
    t, m, any_f = fr.ctx.t, st.m, jb.any_f
    age = fr.ctx.rp_age_s[vols]
    # (an empty backup costs nothing at any time: no window is quieter for it than the last one)
    quiet = (
        (jb.size[:, 0] > 0)
        & jb.feasible[:, 0]
        & (jb.cpb[:, 0] <= p.quiet_ratio * jb.med)
        & (age >= p.quiet_min_interval_frac * jb.rpo)
        & (m > 1)
        & (best != 0)
    )
    start_now = (any_f & (best == 0)) | quiet
    forced = ~any_f
    step_next = fr.fc.origin_t + (fr.i0 + 1) * st.step
    wake = np.where(best > 0, st.s_t[np.maximum(best, 0)], np.where(forced, t, step_next))
    left = jb.latest_end - t
    need = np.where(left > 0, jb.size[:, 0] * p.duration_safety / MB / np.maximum(left, 1e-9), np.inf)
    max_iops, max_mbps = st.max_iops[:, 0], st.max_mbps[:, 0]
    # the most the device can give a forced job (expected load: the environment caps at headroom anyway)
    max_rate = np.minimum(rate_for_utilisation(st.mu_i[:, 0], st.mu_m[:, 0], max_iops, max_mbps, fr.ctx.backup_max_util), tier_share)
    # RPO over impact: only when even the full threshold's rate cannot meet the deadline
    # (the device's rate at the threshold: where the tier's share is the tighter limit, more would not help)
    rate_thr = rate_for_impact(st.up_i[:, 0], st.up_m[:, 0], max_iops, max_mbps, fr.threshold / p.impact_target)
    empty = jb.size[:, 0] <= 0.0
    forced = forced & (need > rate_thr) & (max_rate > rate_thr) & ~empty
    # the latest feasible start and the slot time its job needs (for the fleet's EDF view)
    last = np.where(any_f, m - 1 - np.argmax(jb.feasible[:, ::-1], axis=1), 0)
    dur = jb.dur
    slot_s = np.take_along_axis(dur, last[:, None], 1)[:, 0]
    slot_s = np.where(np.isfinite(slot_s), slot_s, np.where(np.isfinite(dur[:, 0]), dur[:, 0], fr.h * st.step)) * p.duration_safety
    return Plan(
        start_now=start_now | ~any_f,
        forced=forced,
        empty=empty,
        late=~any_f & ~forced,
        quiet=quiet,
        feasible_any=any_f,
        wake_t=wake,
        size=jb.size[:, 0],
        rate_now=st.r[:, 0],
        need_rate=need,
        max_rate=max_rate,
        cost_now=score_now,
        cost_best=score_best,
        cost_median=jb.med,
        cost_wait=wait_cost,
        best_t=np.where(best >= 0, st.s_t[np.maximum(best, 0)], np.inf),
        dur_now=dur[:, 0],
        rate_thr=rate_thr,
        up_now=np.stack([st.up_i[:, 0], st.up_m[:, 0]], -1),
        latest_t=np.where(any_f, st.s_t[last], t),
        slot_s=slot_s,
        deadline=jb.deadline,
        path=path,
    )

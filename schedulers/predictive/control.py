"""Running jobs: re-throttle, pause through predicted bursts, resume after.

At every forecast step each running job gets the rate the upper forecast allows under
the threshold, but never less than its remaining bytes need to meet the deadline (nor
more than the device headroom the run allows, `ctx.backup_max_util`). Through a predicted
burst (`LoadLabel.BURST`, or a step with no headroom at all) a job pauses when that
spares production something (each byte moved in the burst slows more production I/O than
one moved after it), the fleet's tiers have slots to spare (a paused job holds its slot)
and the slack allows it: the forecast's threshold rates from the burst's end to the
deadline still move the job's remaining bytes (stretched by `duration_safety`). A pause
judged on the first step after the burst alone would let a long job pause into a
deadline it then misses. With the now-cast on, a job whose observed
load passes the forecast is re-throttled at that tick instead of at the next step.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from common.units import HOUR_S, MB
from schedulers.predictive import reasons
from schedulers.predictive.forecast import Frame
from schedulers.predictive.params import PredictiveParams
from sim.types import Action, JobState, LoadLabel, Pause, Resume, Throttle, impact, rate_for_impact, rate_for_utilisation

_QUEUED, _RUNNING, _PAUSED = int(JobState.QUEUED), int(JobState.RUNNING), int(JobState.PAUSED)
_BURST = int(LoadLabel.BURST)


@dataclass
class _Targets:
    """Per active job: the rates and burst facts of the current forecast step."""

    active: np.ndarray
    up: np.ndarray  # [A, 2] upper load now
    max_iops: np.ndarray
    max_mbps: np.ndarray
    r_imp: np.ndarray  # rate the threshold allows
    need: np.ndarray  # rate the deadline needs
    target: np.ndarray
    left: np.ndarray  # seconds to the latest end
    remaining: np.ndarray
    run_len: np.ndarray  # blocked steps from now
    seen: np.ndarray  # the observed load is the higher one
    latest_end: np.ndarray


def _targets(p: PredictiveParams, fr: Frame, active: np.ndarray) -> _Targets:
    ctx, fc, i0 = fr.ctx, fr.fc, fr.i0
    max_iops, max_mbps = fr.max_iops[active], fr.max_mbps[active]
    up = fr.upper_now(active)
    r_imp = rate_for_impact(up[:, 0], up[:, 1], max_iops, max_mbps, fr.threshold)
    mu = fc.mean[active, i0]
    r_max = rate_for_utilisation(mu[:, 0], mu[:, 1], max_iops, max_mbps, ctx.backup_max_util)
    rpo = ctx.volumes.rpo_s[active]
    latest_end = ctx.last_snapshot_t[active] + rpo - p.margin(rpo)
    left = latest_end - ctx.t
    remaining = ctx.job_remaining_bytes[active]
    need = np.where(left > 0, remaining * p.duration_safety / MB / np.maximum(left, 1e-9), np.inf)
    target = np.minimum(np.maximum(np.maximum(r_imp, need), p.min_rate_mbps), np.maximum(r_max, p.min_rate_mbps))
    labels = np.asarray(fc.labels)[active, i0 : fr.h]
    blocked = (labels == _BURST) | (r_imp < p.min_rate_mbps)[:, None]
    if labels.shape[1]:
        blocked[:, 1:] &= labels[:, 1:] == _BURST
    run_len = np.where(blocked.all(axis=1), labels.shape[1], np.argmin(blocked, axis=1))
    seen = (up > np.asarray(fc.upper)[active, i0]).any(axis=1)
    return _Targets(active, up, max_iops, max_mbps, r_imp, need, target, left, remaining, run_len, seen, latest_end)


def _after_burst(
    p: PredictiveParams, fr: Frame, v: int, max_iops: float, max_mbps: float, step0: int, until_t: float, nbytes: float
) -> tuple[float, float]:
    """A job of volume `v` going on at the forecast's threshold rates from the start of step
    `step0` (beyond the horizon the last step holds): (the bytes it moves by `until_t`; the most
    production I/O per MB moved among the steps that move its remaining `nbytes`)."""
    fc = fr.fc
    step = float(fc.step_s)
    t0 = fc.origin_t + step0 * step
    s0 = min(step0, fr.h - 1)
    up = np.nan_to_num(np.asarray(fc.upper)[v, s0 : fr.h])
    r = np.asarray(rate_for_impact(up[:, 0], up[:, 1], max_iops, max_mbps, fr.threshold), float)
    io = np.nan_to_num(np.asarray(fc.mean)[v, s0 : fr.h, 0])
    n = max(0.0, (until_t - t0) / step)
    k = int(np.ceil(n))
    if k > r.size:  # hold the last step
        r, io = np.concatenate([r, np.repeat(r[-1:], k - r.size)]), np.concatenate([io, np.repeat(io[-1:], k - io.size)])
    per_step = r * step * MB
    moved = float(per_step[: int(n)].sum()) + (float(per_step[int(n)]) * (n - int(n)) if int(n) < per_step.size else 0.0)
    cum = np.cumsum(per_step)
    e = int(min(np.searchsorted(cum, nbytes), per_step.size - 1)) if per_step.size else 0
    worst = float(np.max(io[: e + 1] / np.maximum(r[: e + 1], p.min_rate_mbps))) if per_step.size else 0.0
    return moved, worst


def control(p: PredictiveParams, fr: Frame, desc: str, vols: np.ndarray | None = None, tight: bool = False) -> list[Action]:
    """Re-throttle, pause and resume jobs (all active ones, or those of `vols`) for the current forecast step;
    `tight`: the fleet's tiers have no capacity to spare (a paused job holds its slot: none pauses)."""
    ctx, fc = fr.ctx, fr.fc
    active = np.flatnonzero((ctx.job_state == _RUNNING) | (ctx.job_state == _PAUSED))
    if vols is not None:
        active = np.intersect1d(active, vols)
    if active.size == 0:
        return []
    g = _targets(p, fr, active)
    out: list[Action] = []
    state = ctx.job_state[active]
    throttle = ctx.job_throttle_mbps[active]
    thr = fr.threshold
    for j, v in enumerate(active.tolist()):
        st = int(state[j])
        burst_s = g.run_len[j] * fc.step_s
        worth = can_wait = False
        if g.run_len[j] > 0:
            rest = g.remaining[j] * p.duration_safety
            moved, worst = _after_burst(p, fr, v, g.max_iops[j], g.max_mbps[j], fr.i0 + int(g.run_len[j]), float(g.latest_end[j]), rest)
            # a pause must spare production something: each MB moved in the burst slows more production
            # I/O than one moved in any step the rest of the job would then run in
            io_now = float(np.nan_to_num(fc.mean[v, fr.i0, 0]))
            worth = g.r_imp[j] < p.min_rate_mbps or io_now / g.r_imp[j] > (1.0 + p.rethrottle_tol) * worst
            # and the slack must allow it: the threshold rates from the burst's end to the deadline move the rest
            can_wait = moved >= rest
        if p.pause_bursts and not tight and g.run_len[j] > 0 and burst_s <= p.pause_max_h * HOUR_S and worth and can_wait:
            if st in (_RUNNING, _QUEUED):
                out.append(Pause(v, reason=reasons.pause(bool(g.seen[j]), burst_s, g.up[j, 0], g.up[j, 1], g.r_imp[j], desc)))
            continue
        if st == _PAUSED:
            why = reasons.resume(
                g.target[j], thr / p.impact_target, bool(g.run_len[j] > 0 and not can_wait), desc, bool(g.run_len[j] > 0 and not worth)
            )
            out.append(Resume(v, float(g.target[j]), reason=why))
            continue
        cur = throttle[j]
        if not np.isfinite(cur) or abs(g.target[j] - cur) > p.rethrottle_tol * cur:
            if g.need[j] > g.r_imp[j]:
                why = reasons.deadline_rate(g.remaining[j], g.need[j], g.r_imp[j], desc)
            else:
                imp_t = float(impact(g.up[j, 0], g.up[j, 1], g.target[j], g.max_iops[j], g.max_mbps[j]))
                why = reasons.rethrottle(bool(g.seen[j]), g.up[j, 0], g.up[j, 1], imp_t, g.target[j], desc)
            out.append(Throttle(v, float(g.target[j]), reason=why))
    return out


def surprised(p: PredictiveParams, fr: Frame) -> np.ndarray:
    """Running jobs whose last observed load passed the current step's upper forecast (now-cast)."""
    running = np.flatnonzero(fr.ctx.job_state == _RUNNING)
    if running.size == 0 or fr.obs is None:
        return running[:0]
    obs = fr.obs[running]
    up = np.asarray(fr.fc.upper)[running, fr.i0]
    return running[((obs > up * (1.0 + p.rethrottle_tol)) & (obs > 0)).any(axis=1)]

"""`piop agent CONFIG --dry-run`: the next backup of each volume, and why, without acting.

The policy is asked, not imitated: a copy of it is stepped through the forecast horizon
on the host's present state (restore points, running jobs, the observed load, the
forecast from the agent's history), each step's production load being the forecast's
mean for it, until it starts a backup for every volume (or the horizon ends). The first
start of each volume is its advice: when, kind, tier, rate, whether it is forced, the
policy's reason, and the window it should take (its estimated bytes at that rate).
Nothing is started, the state is only read, and the policy's own object is untouched.
"""

from __future__ import annotations

import copy
import dataclasses
import time

import numpy as np

from common.units import MB
from host.agent.adapters import kind_name
from host.agent.loop import Agent
from sim.types import DecisionContext, JobState, Start

MAX_STEPS = 500


def _load_at(ctx: DecisionContext, t: float) -> tuple[np.ndarray, np.ndarray]:
    fc = ctx.forecast
    if fc is None or not fc.horizon:
        return ctx.prod_iops, ctx.prod_mbps
    i = min(max(int((t - fc.origin_t) // fc.step_s), 0), fc.horizon - 1)
    return fc.mean[:, i, 0], fc.mean[:, i, 1]


def rollout(scheduler, ctx0: DecisionContext, horizon_s: float, step_s: float) -> dict[int, tuple[float, Start]]:
    """{volume: (agent time, its first Start)} of a copy of `scheduler` stepped over the horizon."""
    sched = copy.deepcopy(scheduler)
    state = np.asarray(ctx0.job_state).copy()
    found: dict[int, tuple[float, Start]] = {}
    steps = min(MAX_STEPS, int(horizon_s // step_s) + 1)
    for i in range(steps):
        t = ctx0.t + i * step_s
        iops, mbps = _load_at(ctx0, t)
        ctx = dataclasses.replace(
            ctx0,
            t=t,
            tick=ctx0.tick + int(round(i * step_s / ctx0.tick_s)),
            rp_age_s=t - ctx0.last_snapshot_t,
            job_state=state.copy(),
            prod_iops=iops,
            prod_mbps=mbps,
            impact=np.zeros_like(iops),
        )
        for a in sched.decide(ctx):
            if isinstance(a, Start) and a.volume not in found and state[a.volume] == int(JobState.NONE):
                found[a.volume] = (t, a)
                state[a.volume] = int(JobState.RUNNING)
        if len(found) == ctx0.volumes.n:
            break
    return found


def advise(agent: Agent, observe_s: float = 1.0) -> dict:
    """Open `agent` read-only, observe the load for `observe_s`, and ask its policy what comes next."""
    agent.open()
    time.sleep(observe_s)
    now = time.time()
    obs = agent.sampler.sample(now, {})
    if obs is not None:
        agent.prod = (obs.iops, obs.mbps)
    t = now - agent.start_epoch
    ctx = agent.context(t)
    cfg = agent.cfg
    step = max(cfg.period, min(cfg.history_step, cfg.horizon / 50))  # the policy replans at each forecast step
    found = rollout(agent.scheduler, ctx, cfg.horizon, step)
    incr, diff = ctx.dirty_bytes()
    rows = []
    for v, name in enumerate(agent.names):
        row = {"volume": name, "rpo_s": float(ctx.volumes.rpo_s[v]), "rp_age_s": float(ctx.rp_age_s[v]), "job": None}
        job = agent.jobs.jobs[v]
        if job is not None:
            row["job"] = (
                f"job {job.id} ({kind_name(job.kind)} to {job.spec.tier}) is "
                f"{['none', 'queued', 'running', 'paused'][int(ctx.job_state[v])]}"
            )
        if v not in found:
            row.update(start=None, reason=f"no backup within the {cfg.horizon:g} s horizon")
            rows.append(row)
            continue
        ts, a = found[v]
        size = float({0: ctx.volumes.used_bytes[v], 1: incr[v], 2: diff[v]}[int(a.kind)])
        tier = agent.host.tiers[a.tier]
        rate = min(tier.ingest_mbps, float(ctx.volumes.max_mbps[v]) * cfg.backup_max_util)  # what the tier and device allow
        rate = rate if a.rate_mbps is None else min(rate, a.rate_mbps)
        start = ts + agent.start_epoch
        row.update(
            start=start,
            window_end=start + size / (max(rate, 1e-3) * MB),
            in_s=ts - t,
            kind=kind_name(a.kind),
            tier=tier.name,
            rate_mbps=a.rate_mbps,
            expected_mbps=rate,
            bytes=size,
            forced=a.forced,
            reason=a.reason,
        )
        rows.append(row)
    fc = agent.forecast
    return {
        "now": now,
        "policy": cfg.policy,
        "forecast": None if fc is None else fc.model,
        "volumes": rows,
        "skipped": agent.host.skipped,
        "feasibility": _feasibility(ctx, incr, now),
    }


def _feasibility(ctx: DecisionContext, incr: np.ndarray, now: float) -> dict:
    from host.agent import feasible

    v = feasible.check(ctx, incr, now)
    return {**v.as_dict(), "warning": v.warning()}

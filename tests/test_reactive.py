"""The reactive policy: it only sees the past, and must act on it.

Decisions on hand-built contexts (one SSD volume, load and job state set per call), and a
small real simulation against the fixed schedule on the same busy load.
"""

from __future__ import annotations

import numpy as np
import pytest

import schedulers
from common.units import HOUR_S, MONDAY0_S
from sim.model import Simulation
from sim.spec import SimSpec, VolumeSpec
from sim.tiers import TierSpec
from sim.types import DEVICE_CLASSES, BackupKind, DecisionContext, JobState, Resume, TierView, VolumeTable
from workloads.constant import constant

SSD = DEVICE_CLASSES["ssd"]  # 80,000 IOPS, 500 MB/s
THRESHOLD = 0.2
CALM_MBPS = 50.0  # 10 % utilisation: latency 1.11 x idle
BUSY_MBPS = 300.0  # 60 %: latency 2.5 x idle, above the default deferral ratio of 2


def context(
    t: float,
    *,
    mbps: float = CALM_MBPS,
    state: JobState = JobState.NONE,
    rate: float = 0.0,
    throttle: float = np.inf,
    impact: float = 0.0,
    decision_s: float = 10.0,
) -> DecisionContext:
    """The context of one SSD volume at `t` (t=0 is Monday 00:00 UTC), with its job in `state`."""
    one = lambda x, dtype=float: np.array([x], dtype)  # noqa: E731
    volumes = VolumeTable(
        ids=["v0"],
        kinds=["test"],
        device=["ssd"],
        max_iops=one(SSD.max_iops),
        max_mbps=one(SSD.max_mbps),
        base_latency_ms=one(SSD.base_latency_ms),
        used_bytes=one(100e9),
        rpo_s=one(4 * HOUR_S),
        rto_s=one(4 * HOUR_S),
    )
    tier = TierView(0, "ssd", "ssd", 1500.0, 1200.0, 4, int(state != JobState.NONE), 0, 0, 0.08, 0.0, 1e14)
    running = state != JobState.NONE
    dirty = (one(1e9), one(1e9))
    return DecisionContext(
        t=t,
        tick=round(t / 10.0),
        tick_s=10.0,
        volumes=volumes,
        tiers=[tier],
        impact_threshold=THRESHOLD,
        start_epoch=MONDAY0_S,
        backup_max_util=0.95,
        restore_overhead_s=60.0,
        history_step_s=300.0,
        rp_age_s=one(t + HOUR_S),
        last_snapshot_t=one(-HOUR_S),
        last_full_t=one(-HOUR_S),
        rto_estimate_s=one(200.0),
        chain_len=one(1, np.int64),
        job_kind=one(int(BackupKind.INCREMENTAL) if running else -1, np.int8),
        job_state=one(int(state), np.int8),
        job_tier=one(0 if running else -1, np.int8),
        job_rate_mbps=one(rate),
        job_throttle_mbps=one(throttle),
        job_remaining_bytes=one(5e9 if running else 0.0),
        prod_iops=one(mbps * 10.0),
        prod_mbps=one(mbps),
        impact=one(impact),
        _dirty=lambda: dirty,
    )


def policy(**params):
    return schedulers.SCHEDULERS.create("reactive", incremental_every_h=1.0, **params)


def kinds(actions) -> list[str]:
    return [type(a).__name__ for a in actions]


# ----------------------------------------------------------------------------- schedule


def test_starts_on_its_schedule_when_load_is_acceptable():
    p = policy()
    first = p.decide(context(0.0))
    assert kinds(first) == ["Start"]
    assert first[0].kind == BackupKind.INCREMENTAL and first[0].reason == "scheduled, load acceptable"
    # nothing more until the next hour comes due
    assert p.decide(context(0.5 * HOUR_S)) == []
    assert p.decide(context(HOUR_S - 10.0)) == []
    again = p.decide(context(HOUR_S))
    assert kinds(again) == ["Start"] and again[0].volume == 0
    assert p.summary()["starts"] == 2


def test_defers_under_load_then_starts_when_it_falls():
    p = policy()
    assert p.decide(context(0.0, mbps=BUSY_MBPS)) == []  # due, but production latency is 2.5 x idle
    assert p.decide(context(600.0, mbps=BUSY_MBPS)) == []
    st = p.decide(context(1200.0, mbps=CALM_MBPS))
    assert kinds(st) == ["Start"] and st[0].reason == "scheduled, load acceptable"


def test_deferral_is_bounded():
    p = policy(max_defer_h=1.5)
    for t in np.arange(0.0, 1.5 * HOUR_S, 600.0):
        assert p.decide(context(float(t), mbps=BUSY_MBPS)) == [], t
    st = p.decide(context(1.5 * HOUR_S, mbps=BUSY_MBPS))
    assert kinds(st) == ["Start"] and st[0].reason == "scheduled, deferral limit reached"
    assert p.summary()["starts_deferral_limit"] == 1


# ----------------------------------------------------------------------------- control


def test_throttles_when_observed_impact_passes_the_threshold():
    p = policy()
    p.decide(context(0.0))  # starts the incremental
    out = p.decide(context(10.0, state=JobState.RUNNING, rate=200.0, impact=0.5))
    assert kinds(out) == ["Throttle"]
    assert out[0].rate_mbps == pytest.approx(100.0)  # cut by the default backoff of 0.5
    # under the threshold, but not far under: left alone
    assert p.decide(context(20.0, state=JobState.RUNNING, rate=100.0, throttle=100.0, impact=0.15)) == []
    # far under (below half the threshold) at its throttle: it speeds up again
    up = p.decide(context(30.0, state=JobState.RUNNING, rate=100.0, throttle=100.0, impact=0.05))
    assert kinds(up) == ["Throttle"] and up[0].rate_mbps == pytest.approx(125.0)
    # the rate is never cut below the minimum
    low = p.decide(context(40.0, state=JobState.RUNNING, rate=6.0, throttle=6.0, impact=0.3))
    assert kinds(low) == ["Throttle"] and low[0].rate_mbps == pytest.approx(5.0)


def test_pauses_when_cutting_the_rate_is_not_enough_and_resumes_when_load_falls():
    p = policy()
    p.decide(context(0.0))
    # at the minimum rate and still far above the threshold (3 x by default): pause
    out = p.decide(context(10.0, mbps=BUSY_MBPS, state=JobState.RUNNING, rate=5.0, throttle=5.0, impact=0.7))
    assert kinds(out) == ["Pause"] and "minimum rate" in out[0].reason
    # above the threshold but under the pause level: a (no-op) throttle at the minimum, not a pause
    assert kinds(p.decide(context(20.0, mbps=BUSY_MBPS, state=JobState.RUNNING, rate=5.0, throttle=5.0, impact=0.4))) == ["Throttle"]
    # paused: stays paused while production is busy, and for at least min_pause_s
    assert p.decide(context(40.0, mbps=BUSY_MBPS, state=JobState.PAUSED)) == []
    assert p.decide(context(50.0, mbps=CALM_MBPS, state=JobState.PAUSED)) == []  # 40 s after the pause
    assert p.decide(context(200.0, mbps=BUSY_MBPS, state=JobState.PAUSED)) == []
    res = p.decide(context(210.0, mbps=CALM_MBPS, state=JobState.PAUSED))
    assert kinds(res) == ["Resume"] and isinstance(res[0], Resume)
    assert p.summary()["pauses"] == 1 and p.summary()["resumes"] == 1


def test_reset_starts_the_schedule_over():
    p = policy()
    assert kinds(p.decide(context(0.0))) == ["Start"]
    assert p.decide(context(0.0)) == []  # the next incremental is an hour away
    p.reset()
    assert p.summary() == dict.fromkeys(p.summary(), 0)
    # a new run: its first context is the schedule's start again
    assert kinds(p.decide(context(0.0))) == ["Start"]


# ----------------------------------------------------------------------------- a real run


def test_in_a_simulation_it_keeps_impact_far_below_the_fixed_schedule():
    # 40 % utilisation by MB/s: an unthrottled backup pushes latency many times past +20 %
    load = constant(count=2, tick_s=10.0, read_iops=5_600, write_iops=2_400, read_mbps=140, write_mbps=60)
    vols = tuple(VolumeSpec(f"v{i}", SSD, 100e9, 4 * HOUR_S, 4 * HOUR_S) for i in range(2))
    tiers = (TierSpec("ssd", "ssd", 1500.0, 1200.0, 4, 1e14, 0.08, 0),)
    spec = SimSpec(vols, tiers, duration_s=8 * HOUR_S, impact_threshold=THRESHOLD)
    fixed = Simulation(spec, load, schedulers.SCHEDULERS.create("fixed")).run()
    reactive_policy = schedulers.SCHEDULERS.create("reactive")
    reactive = Simulation(spec, load, reactive_policy).run()
    assert reactive.fleet["jobs_incremental"] > 0 and reactive.fleet["rpo_compliance_pct"] == 100.0
    assert reactive.fleet["impact_io_mean"] < 0.5 * fixed.fleet["impact_io_mean"]
    # what it reacted to: each throttle-down followed an observed excess over the threshold
    d = reactive.decisions
    downs = d[(d["action"] == "throttle") & d["reason"].str.startswith("observed impact")]
    assert len(downs) >= 1 and len(downs) == reactive_policy.summary()["throttle_downs"]

"""The SimPy model: bookkeeping that must hold whatever the policy."""

from __future__ import annotations

import numpy as np
import pytest

import schedulers
from sim.model import Simulation
from sim.spec import SimSpec, VolumeSpec
from sim.tiers import TierSpec
from sim.types import DEVICE_CLASSES, BackupKind, DecisionContext, JobState, Start, impact
from workloads.constant import constant

TIERS = (
    TierSpec("ssd", "ssd", 1500.0, 1200.0, 4, 1e14, 0.08, 0),
    TierSpec("hdd", "hdd", 600.0, 300.0, 8, 1e15, 0.015, 1),
)


def make_spec(n=3, hours=12.0, used_gb=50.0, rpo_h=6.0, **kw) -> SimSpec:
    vols = tuple(VolumeSpec(f"v{i}", DEVICE_CLASSES["ssd"], used_gb * 1e9, rpo_h * 3600, 4 * 3600) for i in range(n))
    return SimSpec(vols, TIERS, duration_s=hours * 3600, **kw)


class Scripted:
    """Starts the given backups at given times; records what it saw at every decision."""

    name = "scripted"

    def __init__(self, plan: dict[float, list[tuple[int, BackupKind]]], rate=None):
        self.plan = plan
        self.rate = rate
        self.seen: list[tuple[float, np.ndarray, np.ndarray, np.ndarray]] = []

    def decide(self, ctx: DecisionContext):
        since_backup, since_full = ctx.dirty_bytes()
        self.seen.append((ctx.t, ctx.rp_age_s.copy(), since_backup.copy(), ctx.job_state.copy()))
        return [Start(v, kind, 0, self.rate, reason="test") for v, kind in self.plan.get(ctx.t, [])]


class Never:
    name = "never"

    def decide(self, ctx):
        return []


def busy_load(n=3, **kw):
    params = dict(read_iops=3000, write_iops=1500, read_mbps=60, write_mbps=30)
    params.update(kw)
    return constant(count=n, tick_s=10.0, **params)


def test_bytes_moved_equal_dirty_bytes_captured():
    sched = Scripted({3600.0: [(0, BackupKind.INCREMENTAL), (1, BackupKind.DIFFERENTIAL)], 7200.0: [(2, BackupKind.FULL)]})
    r = Simulation(make_spec(), busy_load(), sched).run()
    seen = {t: d for t, _, d, _ in sched.seen}
    jobs = r.jobs.set_index("volume")
    # sizes are what changed-block tracking held at the snapshot
    assert jobs.loc["v0", "snapshot_t"] == 3600.0
    assert jobs.loc["v0", "size_bytes"] == pytest.approx(seen[3600.0][0])
    assert jobs.loc["v0", "size_bytes"] > 0
    assert jobs.loc["v2", "size_bytes"] == pytest.approx(50e9)
    # every completed job moved exactly its size, and the tier accounts hold the same bytes
    assert np.allclose(r.jobs["moved_bytes"], r.jobs["size_bytes"])
    assert r.backup["bytes"].sum() == pytest.approx(r.jobs["size_bytes"].sum())
    # a differential right after the same history holds at least the incremental's chunks
    assert jobs.loc["v1", "size_bytes"] >= jobs.loc["v0", "size_bytes"] * 0.9


def test_incremental_right_after_full_is_near_empty():
    load = dict(write_iops=50, write_mbps=3.2)
    spec = make_spec(n=1, hours=6)
    r = Simulation(spec, busy_load(1, **load), Scripted({3600.0: [(0, BackupKind.FULL)]})).run()
    full = r.jobs.iloc[0]
    assert full["kind"] == "full" and full["size_bytes"] == pytest.approx(50e9)
    # an incremental started right at the full's completion holds only writes made during the full
    t_next = np.ceil(full["complete_t"] / 10.0) * 10.0
    plan = {3600.0: [(0, BackupKind.FULL)], t_next: [(0, BackupKind.INCREMENTAL)]}
    r2 = Simulation(spec, busy_load(1, **load), Scripted(plan)).run()
    incr = r2.jobs[r2.jobs["kind"] == "incremental"].iloc[0]
    chunk_writes = 50 * (t_next - 3600.0)  # one write I/O dirties at most one 1 MiB chunk
    assert 0 < incr["size_bytes"] <= chunk_writes * (1 << 20)
    assert incr["size_bytes"] < 0.1 * full["size_bytes"]
    # without the full, the same incremental carries the whole time since t=0
    r3 = Simulation(spec, busy_load(1, **load), Scripted({t_next: [(0, BackupKind.INCREMENTAL)]})).run()
    assert incr["size_bytes"] < 0.25 * r3.jobs.iloc[0]["size_bytes"]


def test_impact_zero_without_backup_and_grows_with_rate():
    r = Simulation(make_spec(), busy_load(), Never()).run()
    assert r.fleet["impact_io_mean"] == 0.0
    assert r.fleet["impact_p99"] == 0.0
    assert r.fleet["added_latency_io_ms"] == 0.0
    impacts = []
    for rate in (20.0, 80.0, 200.0):
        sched = Scripted({600.0: [(v, BackupKind.FULL) for v in range(3)]}, rate=rate)
        impacts.append(Simulation(make_spec(), busy_load(), sched).run().fleet["impact_io_mean"])
    assert 0 < impacts[0] < impacts[1] < impacts[2]


def test_restore_point_age_resets_to_completion_minus_snapshot():
    sched = Scripted({3600.0: [(0, BackupKind.INCREMENTAL)]}, rate=30.0)
    r = Simulation(make_spec(n=1, hours=4), busy_load(1, write_iops=3000), sched).run()
    job = r.jobs.iloc[0]
    assert job["complete_t"] > job["snapshot_t"] + 60
    after = [(t, age[0]) for t, age, _, _ in sched.seen if t >= job["complete_t"]]
    t, age = after[0]
    assert age == pytest.approx(t - job["snapshot_t"])
    before = [(t, age[0]) for t, age, _, _ in sched.seen if t < job["complete_t"]]
    assert before[-1][1] == pytest.approx(before[-1][0] - 0.0)  # still the initial full at t=0
    series = r.series[r.series["volume"] == "v0"]
    at_done = series[series["t"] <= job["complete_t"]].iloc[-1]
    assert at_done["rp_age_s"] >= job["complete_t"] - job["snapshot_t"]


def test_fixed_policy_meets_rpo_on_idle_fleet():
    spec = make_spec(n=5, hours=48, rpo_h=4)
    r = Simulation(spec, constant(count=5, tick_s=10.0), schedulers.SCHEDULERS.create("fixed", incremental_every_h=1)).run()
    assert r.fleet["rpo_compliance_pct"] == 100.0
    assert r.fleet["rpo_violations"] == 0
    assert r.fleet["worst_rp_age_h"] <= 1.0 + 1 / 360 + 1e-9
    assert r.fleet["jobs_incremental"] >= 5 * 47


def test_fixed_policy_with_interval_beyond_rpo_violates():
    spec = make_spec(n=2, hours=24, rpo_h=2)
    r = Simulation(spec, constant(count=2, tick_s=10.0), schedulers.SCHEDULERS.create("fixed", incremental_every_h=6)).run()
    assert r.fleet["rpo_compliance_pct"] < 60.0
    assert r.fleet["rpo_violations"] >= 2


def test_pause_and_resume_hold_progress():
    class PauseOnce:
        name = "pause"

        def decide(self, ctx):
            if ctx.t == 600.0:
                return [Start(0, BackupKind.FULL, 0, 10.0)]
            if ctx.t == 1200.0 and ctx.job_state[0] == JobState.RUNNING:
                from sim.types import Pause

                return [Pause(0)]
            if ctx.t == 4800.0:
                from sim.types import Resume

                return [Resume(0)]
            return []

    r = Simulation(make_spec(n=1, hours=6), busy_load(1), PauseOnce()).run()
    job = r.jobs.iloc[0]
    # 50 GB at 10 MB/s is 5,000 s of transfer, plus the 3,600 s pause
    assert job["pauses"] == 1
    assert job["complete_t"] == pytest.approx(600 + 10 + 3600 + 5000, abs=30)


def test_tier_slots_queue_jobs():
    spec = make_spec(n=6, hours=3)
    tiers = (TierSpec("one", "ssd", 1000.0, 1000.0, 1, 1e14, 0.1, 0),)
    spec = SimSpec(spec.volumes, tiers, duration_s=spec.duration_s)
    sched = Scripted({600.0: [(v, BackupKind.FULL) for v in range(3)]})
    r = Simulation(spec, constant(count=6, tick_s=10.0), sched).run()
    j = r.jobs.sort_values("complete_t")
    # one slot: each job snapshots when the previous one is done
    assert (j["snapshot_t"].to_numpy()[1:] >= j["complete_t"].to_numpy()[:-1] - 10).all()


def test_same_seed_same_metrics_different_seed_differs():
    def run(seed):
        spec = make_spec(n=3, hours=12, seed=seed)
        return Simulation(spec, busy_load(write_iops=50), schedulers.SCHEDULERS.create("fixed", incremental_every_h=1)).run()

    a, b, c = run(1), run(1), run(2)
    assert a.fleet == {
        **b.fleet,
        "sim_wall_s": a.fleet["sim_wall_s"],
        "decide_wall_s": a.fleet["decide_wall_s"],
        "forecast_wall_s": a.fleet["forecast_wall_s"],
    }
    assert a.jobs["size_bytes"].tolist() == b.jobs["size_bytes"].tolist()
    assert a.jobs["size_bytes"].tolist() != c.jobs["size_bytes"].tolist()


def test_rto_estimate_grows_with_chain_and_resets_with_full():
    plan = {float(3600 * h): [(0, BackupKind.INCREMENTAL)] for h in range(1, 5)}
    plan[5 * 3600.0] = [(0, BackupKind.FULL)]
    sched = Scripted(plan)
    r = Simulation(make_spec(n=1, hours=7), busy_load(1), sched).run()
    s = r.series[r.series["volume"] == "v0"].set_index("t")["rto_estimate_s"]
    full_restore = 50e9 / 1200e6 + 60
    assert s.iloc[0] == pytest.approx(full_restore, rel=1e-6)
    assert s.loc[4.5 * 3600] > s.iloc[0] + 4 * 60  # four incrementals added
    assert s.iloc[-1] == pytest.approx(full_restore, rel=1e-6)


def test_spread_initial_fulls_are_in_the_past_and_no_point_is_stale():
    n, spread_h = 4, 96.0
    seen = []

    class Look(Never):
        def decide(self, ctx):
            if not seen:
                seen.append((ctx.last_full_t.copy(), ctx.rp_age_s.copy(), ctx.chain_len.copy(), ctx.rto_estimate_s.copy()))
            return []

    spec = make_spec(n=n, hours=1, initial_full_spread_s=spread_h * 3600)
    r = Simulation(spec, constant(count=n, tick_s=10.0), Look()).run()
    last_full, age, chain, rto = seen[0]
    np.testing.assert_allclose(last_full, -spread_h * 3600 * np.arange(n) / n)
    assert np.all(age <= spec.tick_s)  # the empty incremental at t=0 is the newest point
    assert chain.tolist() == [1, 2, 2, 2]  # full alone where it was taken at t=0
    assert np.all(rto[1:] == rto[1]) and rto[1] > rto[0]  # one more restore point, one more overhead
    assert r.fleet["rpo_compliance_pct"] == 100.0
    # a policy whose fulls come due a week after the last one takes them spread out, not together
    spec = make_spec(n=n, hours=100, rpo_h=8, initial_full_spread_s=spread_h * 3600)
    r = Simulation(
        spec, constant(count=n, tick_s=10.0), schedulers.SCHEDULERS.create("predictive", full_every_h=96.0, full_early_h=0.0)
    ).run()
    fulls = r.jobs[r.jobs["kind"] == "full"].sort_values("volume")
    assert len(fulls) == n
    assert fulls["snapshot_t"].max() - fulls["snapshot_t"].min() >= 0.5 * spread_h * 3600


def test_context_carries_the_run_settings_a_policy_needs():
    seen = []

    class Look(Never):
        def decide(self, ctx):
            seen.append((ctx.backup_max_util, ctx.restore_overhead_s, ctx.history_step_s))
            return []

    spec = make_spec(n=1, hours=1, backup_max_util=0.8, restore_overhead_s=42.0, history_step_s=600.0)
    Simulation(spec, constant(count=1, tick_s=10.0), Look()).run()
    assert seen and set(seen) == {(0.8, 42.0, 600.0)}


def test_scheduler_reset_first_and_summary_in_result():
    calls = []

    class Hooked(Never):
        def reset(self):
            calls.append("reset")

        def decide(self, ctx):
            calls.append("decide")
            return []

        def summary(self):
            return {"decisions": calls.count("decide")}

    r = Simulation(make_spec(n=2, hours=1), constant(count=2, tick_s=10.0), Hooked()).run()
    assert calls[0] == "reset" and calls.count("reset") == 1
    assert r.meta["policy_summary"] == {"decisions": 360}
    # a scheduler without the hooks runs as before, with no summary
    assert "policy_summary" not in Simulation(make_spec(n=2, hours=1), constant(count=2, tick_s=10.0), Never()).run().meta


def test_events_per_tick_do_not_grow_with_the_fleet():
    counts = []
    for n in (1, 40):
        sim = Simulation(make_spec(n=n, hours=2), constant(count=n, tick_s=10.0), Never())
        sim.run()
        counts.append(sim.env.processed)
    # one tick timeout each tick, plus the fleet process's start and end
    assert counts == [720 + 2, 720 + 2]
    sched = Scripted({600.0: [(v, BackupKind.FULL) for v in range(3)]})
    sim = Simulation(make_spec(n=3, hours=2), busy_load(), sched)
    r = sim.run()
    # each job adds its own few events (start, slot, done, end), not one per tick
    assert len(r.jobs) == 3 and 722 < sim.env.processed <= 722 + 3 * 6


def test_scored_impact_is_the_device_model():
    sched = Scripted({600.0: [(v, BackupKind.FULL) for v in range(3)]}, rate=150.0)
    r = Simulation(make_spec(hours=2, record_s=10.0), busy_load(), sched).run()
    s = r.series
    dev = DEVICE_CLASSES["ssd"]
    want = impact(
        s["prod_iops"].to_numpy(float), s["prod_mbps"].to_numpy(float), s["backup_mbps"].to_numpy(float), dev.max_iops, dev.max_mbps
    )
    assert (s["impact"] > 0).sum() > 100
    np.testing.assert_allclose(s["impact"], want, rtol=1e-4, atol=1e-7)

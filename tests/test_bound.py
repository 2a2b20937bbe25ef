"""The impact bound: its parts against the simulator's model, exactness on tiny instances,
and that it sits below every policy run by the real simulator."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import yaml

from experiments.bound import BoundResult, Instance, brute_force, impact_bound, instance_bound, lp, volume_input
from experiments.bound.costs import TickCosts
from experiments.bound.demand import MeanChangedBytes, releases, releases_from_chunks, window_sums
from experiments.bound.gaps import gap_rows, gap_table, seed_bounds
from experiments.bound.instance import exact_volume_input, load_arrays
from experiments.bound.report import main as report_main
from experiments.bound.tangents import segments, slope_grid, step_caps, step_lines, step_slope_range, touch_slope
from experiments.config import parse_config
from experiments.runner import RunPlan, simulate
from sim.cbt import zipf_zones
from sim.devices import DEVICE_CLASSES, DeviceClass, impact
from sim.model import Simulation
from sim.spec import SimSpec, VolumeSpec
from sim.tiers import TierSpec
from sim.types import BackupKind, JobState, Start
from workloads.base import Extents, LoadBlock, VolumeMeta
from workloads.constant import constant

DT = 10.0
TINY = DeviceClass("tiny", 1000.0, 4.0, 1.0)  # 4 MB/s: a few ticks move a few MB


def curve(chunks: int, used_bytes: float, zipf_s: float = 1.7) -> MeanChangedBytes:
    n, w = zipf_zones(chunks, zipf_s)
    return MeanChangedBytes(n, w, 1.0, float(1 << 20), used_bytes)


def tiny_volume(name, iops, mbps, writes, rpo_ticks, used_bytes):
    return volume_input(name, DT, iops, mbps, writes, TINY, rpo_ticks * DT, used_bytes, curve(100, used_bytes))


def numerator(b: BoundResult) -> float:
    return b.impact_io_mean * b.total_io


# ----------------------------------------------------------------------------- model parts


def test_tick_cost_is_the_simulators_impact_times_io():
    rng = np.random.default_rng(1)
    dev = DEVICE_CLASSES["san"]
    iops, mbps = rng.uniform(0, 19_000, 500), rng.uniform(0, 780, 500)
    c = TickCosts.from_load(DT, iops, mbps, dev.max_iops, dev.max_mbps, 0.95)
    r = rng.uniform(0, 1, 500) * c.cap
    want = iops * DT * impact(iops, mbps, r, dev.max_iops, dev.max_mbps)
    np.testing.assert_allclose(c.cost(r), want, rtol=1e-12, atol=1e-9)
    assert (c.cost(np.zeros(500)) == 0).all()
    busy = np.maximum(iops / dev.max_iops, mbps / dev.max_mbps) >= 0.95
    assert busy.any() and (c.cap[busy] == 0).all()


def test_best_rate_minimises_the_lagrangian():
    rng = np.random.default_rng(2)
    dev = DEVICE_CLASSES["ssd"]
    c = TickCosts.from_load(DT, rng.uniform(0, 60_000, 200), rng.uniform(0, 400, 200), dev.max_iops, dev.max_mbps, 0.95)
    grid = np.linspace(0, 1, 4001)[:, None] * c.cap[None, :]
    for lam in (1e-3, 0.1, 3.0, 50.0):
        value, _ = c.lagrangian(lam)
        dense = (c.io * ((1 - c.u_p) / (1 - c.util(grid)) - 1) - lam * grid * DT).min(axis=0)
        assert (value <= dense + 1e-9 * np.maximum(1, np.abs(dense))).all()
        r = c.best_rate(lam)  # and no nearby rate does better (convex: so none does)
        for step in (-1e-5, 1e-5):
            near = np.clip(r + step * c.cap, 0, c.cap)
            assert (value <= c.cost(near) - lam * near * DT + 1e-9 * np.maximum(1, np.abs(value))).all()


def test_step_minorant_is_below_every_way_to_move_the_bytes_and_touches_the_cheapest():
    rng = np.random.default_rng(3)
    dev = DEVICE_CLASSES["ssd"]
    c = TickCosts.from_load(DT, rng.uniform(0, 60_000, 90), rng.uniform(0, 400, 90), dev.max_iops, dev.max_mbps, 0.95)
    starts = np.arange(0, 90, 30)
    lo, hi = step_slope_range(c, starts)
    lam = slope_grid(lo, hi, 24)
    L, _ = step_lines(c, starts, lam)
    slopes, widths = segments(lam, L, step_caps(c, starts))

    def phi(s, y):  # the LP's price of moving y MB in step s (cheapest segments first)
        fill = np.clip(y - np.concatenate([[0], np.cumsum(widths[s])[:-1]]), 0, widths[s])
        return float((slopes[s] * fill).sum())

    for s in range(starts.size):
        ticks = np.arange(starts[s], starts[s] + 30)
        one = c.take(ticks)
        for _ in range(200):  # random spreads of random amounts
            y = rng.uniform(0, 1, 30) ** 3 * one.cap * DT
            assert phi(s, y.sum()) <= one.cost(y / DT).sum() * (1 + 1e-9) + 1e-9
        for mu in np.geomspace(lo[s], hi[s], 40):  # the cheapest spread of each amount
            y = one.best_rate(mu) * DT
            best = one.cost(y / DT).sum()
            assert phi(s, y.sum()) <= best * (1 + 1e-9) + 1e-9
    # refinement: a line touching where an amount lands makes the minorant exact there
    target = step_caps(c, starts) * 0.01
    mu, cost = touch_slope(c, starts, target, lo, hi)
    L2, Y2 = step_lines(c, starts, mu[:, None])
    np.testing.assert_allclose(L2[:, 0] + mu * Y2[:, 0], cost, rtol=1e-9)


def test_releases_never_exceed_the_bytes_of_a_job_covering_them():
    rng = np.random.default_rng(4)
    used = 2e9
    f = curve(4000, used)
    w = rng.exponential(200, 300) * (rng.uniform(size=300) < 0.6)
    window = 12
    b = releases(w, window, f)
    assert b.sum() > 0
    for a in range(300):
        for length in range(1, window + 1):
            if a + length > 300:
                break
            assert b[a : a + length].sum() <= float(f.mb(w[a : a + length].sum())) * (1 + 1e-12)
    # a single burst releases exactly its job's bytes
    burst = np.r_[500.0, np.zeros(30)]
    assert releases(burst, window, f)[0] == pytest.approx(float(f.mb(500.0)))


def test_exact_chunk_releases_never_exceed_the_union():
    rng = np.random.default_rng(5)
    n, window = 80, 9
    ticks = rng.integers(0, n, 3000)
    chunks = rng.zipf(1.6, 3000) % 500
    b = releases_from_chunks(ticks, chunks, n, window, chunk_bytes=1e6, used_bytes=1e12)
    for a in range(n):
        for length in range(1, window + 1):
            sel = (ticks >= a) & (ticks < a + length)
            assert b[a : a + length].sum() <= np.unique(chunks[sel]).size + 1e-9
    # capped by a full: no interval exceeds the used bytes
    capped = releases_from_chunks(ticks, chunks, n, window, chunk_bytes=1e6, used_bytes=50e6)
    assert window_sums(capped, window).max() <= 50 + 1e-9


def test_lp_dual_bound_matches_its_optimum():
    v = tiny_volume("a", np.full(40, 300.0), np.full(40, 0.5), np.full(40, 20.0), 8, 500e6)
    inst = Instance(DT, [v], 1e9)
    from experiments.bound.relaxation import step_problem

    p, _, _ = step_problem(v, 5, fulls=1)
    sl, wd = segments(p.lam, p.intercept, p.cap_mb)
    sol = lp.solve([p], [sl], [wd])
    assert sol.ok and sol.bound <= sol.value
    assert sol.bound == pytest.approx(sol.value, rel=1e-7)
    assert instance_bound(inst, step_s=50.0).feasible


# ----------------------------------------------------------------------------- timing and exactness


class BackToBack:
    """Start an unthrottled incremental whenever a volume has no job."""

    def decide(self, ctx):
        return [Start(v, BackupKind.INCREMENTAL, 0) for v in range(ctx.volumes.n) if ctx.job_state[v] == JobState.NONE]


@pytest.mark.parametrize("rpo_ticks, feasible", [(2, False), (3, True)])
def test_job_timing_is_the_simulators(rpo_ticks, feasible):
    """Snapshot at a tick, bytes from the next, next job after completion: 3 ticks is the shortest RPO met."""
    load = constant(count=1, tick_s=DT, read_iops=100, write_iops=50, read_mbps=1, write_mbps=1)
    spec = SimSpec(
        volumes=(VolumeSpec("v", DEVICE_CLASSES["ssd"], 1e9, rpo_ticks * DT, 3600.0),),
        tiers=(TierSpec("t", "ssd", 1000.0, 1000.0, 1, 1e12, 0.0),),
        duration_s=200.0,
        record_s=DT,
    )
    run = Simulation(spec, load, BackToBack()).run()
    assert bool(run.fleet["rpo_compliance_pct"] == 100.0) == feasible
    v = volume_input(
        "v", DT, np.full(20, 150.0), np.full(20, 2.0), np.full(20, 500.0), DEVICE_CLASSES["ssd"], rpo_ticks * DT, 1e9, curve(1000, 1e9)
    )
    assert bool(np.isfinite(brute_force(Instance(DT, [v], 1000.0), levels=1))) == feasible


def test_bound_equals_the_brute_force_optimum_for_one_burst():
    """One burst of writes, constant load: the relaxation is exact, and the optimum spreads evenly on the grid."""
    n = 6  # the burst's job snapshots at tick 1 and must finish by tick 5: 4 ticks of 9.5 MB at 0.95 MB/s
    v = tiny_volume("a", np.full(n, 100.0), np.zeros(n), np.r_[1e6, np.zeros(n - 1)], 5, 38e6)
    inst = Instance(DT, [v], 1e9)
    best = brute_force(inst, levels=4)
    assert best == pytest.approx(4 * v.costs.cost(np.array([0.95]))[0], rel=1e-12)
    b = instance_bound(inst, step_s=DT, rel_tol=1e-9, max_rounds=30)
    assert numerator(b) == pytest.approx(best, rel=1e-6)
    assert numerator(b) <= best


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_bound_is_below_the_brute_force_optimum(seed):
    rng = np.random.default_rng(seed)
    n = 9
    vols = [tiny_volume(f"v{i}", rng.uniform(50, 400, n), rng.uniform(0, 1.5, n), rng.uniform(0, 30, n), 6, 60e6) for i in range(2)]
    inst = Instance(DT, vols, 4.0)
    b = instance_bound(inst, step_s=DT, rel_tol=1e-6)
    best = brute_force(inst, levels=4)
    assert 0 < numerator(b) <= best
    coupled = instance_bound(inst, step_s=DT, coupled=True, rel_tol=1e-6)
    assert numerator(coupled) <= brute_force(inst, levels=4, ingest_mbps=4.0)
    coarse = instance_bound(inst, step_s=3 * DT, rel_tol=1e-6)  # deadlines checked every 3 ticks: weaker, still a bound
    assert numerator(coarse) <= numerator(b) * (1 + 1e-6)


def test_coupled_bound_rises_when_the_ingest_binds():
    """Two volumes cheap in the same ticks: a tight shared ingest forces one of them into dearer ticks."""
    n = 6
    iops = np.array([100.0, 100.0, 100.0, 100.0, 600.0, 600.0])
    vols = [tiny_volume(f"v{i}", iops, np.zeros(n), np.r_[1e6, np.zeros(n - 1)], 5, 30e6) for i in range(2)]
    inst = Instance(DT, vols, 2.0)
    free = instance_bound(inst, step_s=DT, rel_tol=1e-7)
    tied = instance_bound(inst, step_s=DT, coupled=True, rel_tol=1e-7)
    assert tied.ingest_binds is True
    assert numerator(free) < numerator(tied) * (1 - 1e-3)
    assert numerator(tied) <= brute_force(inst, levels=4, ingest_mbps=2.0)


def test_an_rpo_shorter_than_a_jobs_turnaround_is_reported_infeasible():
    v = tiny_volume("a", np.full(10, 100.0), np.zeros(10), np.full(10, 10.0), 1, 10e6)
    b = instance_bound(Instance(DT, [v], 1e9), step_s=DT)
    assert not b.feasible and b.impact_io_mean == float("inf") and "RPO" in b.message


# ----------------------------------------------------------------------------- against the simulator's policies


def small_config() -> dict:
    return {
        "name": "bound-small",
        "seed": 3,
        "duration_h": 24,
        "history_h": 48,
        "rpo_h": 4,
        "rto_h": 8,
        "fleet": [
            {"workload": "database", "name": "db-", "count": 1, "device": "ssd", "used_gb": 200, "rpo_h": 3},
            {"workload": "vm", "name": "vm-", "count": 1, "device": "san", "used_gb": 150},
            {"workload": "fileserver", "name": "fs-", "count": 1, "device": "san", "used_gb": 300, "rpo_h": 6},
        ],
        "tiers": [{"name": "ssd", "media": "ssd", "ingest_mbps": 1500, "restore_mbps": 1200, "slots": 4}],
        "policies": [
            {"policy": "fixed"},
            {"policy": "reactive"},
            {"policy": "predictive", "forecaster": "seasonal_naive"},
            {"policy": "oracle", "retrain": {"min_history_hours": 0}},
            {"policy": "fixed", "name": "fixed-daily-full", "params": {"full_every_h": 24}},
        ],
    }


@pytest.fixture(scope="module")
def small_runs():
    cfg = parse_config(small_config())
    return cfg, {p.label: simulate(RunPlan(cfg, p, cfg.seed))[0] for p in cfg.policies}


def test_bound_is_below_every_policy_and_above_zero(small_runs):
    cfg, runs = small_runs
    b = impact_bound(cfg)
    assert b.feasible and b.changed_bytes == "expected" and b.tangent_gap < 1e-3
    assert b.impact_io_mean > 0 and all(v.impact_io_mean > 0 for v in b.volumes)  # production runs while backups must
    for label, run in runs.items():
        assert run.fleet["rpo_compliance_pct"] == 100.0, label
        assert b.impact_io_mean < run.fleet["impact_io_mean"], label
        per_volume = run.volumes.set_index("volume")["impact_io_mean"]
        for v in b.volumes:
            assert v.impact_io_mean < per_volume[v.volume_id], (label, v.volume_id)
    # a full a day per volume: the policy that takes them stays above the bound that requires them
    daily = runs["fixed-daily-full"]
    assert daily.fleet["jobs_full"] >= 3
    with_fulls = impact_bound(cfg, fulls=1)
    assert b.impact_io_mean < with_fulls.impact_io_mean < daily.fleet["impact_io_mean"]
    assert all(v.full_extra_gb > 0 for v in with_fulls.volumes)


def test_bound_is_deterministic():
    cfg = parse_config(small_config())
    a, b = impact_bound(cfg), impact_bound(cfg)
    assert a.impact_io_mean == b.impact_io_mean
    assert [v.bound_io for v in a.volumes] == [v.bound_io for v in b.volumes]


def test_report_prints_the_bound_beside_the_runs(tmp_path, capsys):
    cfg = small_config() | {"duration_h": 6, "history_h": 0}
    path = tmp_path / "small.yaml"
    path.write_text(yaml.safe_dump(cfg))
    runs = tmp_path / "runs"
    for name, value in (("oracle", 0.002), ("predictive-seasonal_naive", 0.003)):
        (runs / f"{name}-s3").mkdir(parents=True)
        (runs / f"{name}-s3" / "summary.json").write_text(
            json.dumps({"meta": {"policy": name, "seed": 3}, "fleet": {"impact_io_mean": value}})
        )
    assert report_main([str(path), "--runs", str(runs), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    bound = out[0]["bounds"][0]["impact_io_mean"]
    rows = {r["policy"]: r for r in out[0]["policies"]}
    assert rows["oracle"]["x_bound"] == pytest.approx(0.002 / bound)
    assert rows["predictive-seasonal_naive"]["x_oracle"] == pytest.approx(1.5)
    assert report_main([str(path), "--runs", str(tmp_path / "nowhere")]) == 2
    assert "--runs" in capsys.readouterr().err


def test_gap_table_and_cached_seed_bounds(small_runs, tmp_path):
    cfg, runs = small_runs
    table = pd.DataFrame([{"policy": label, "seed": cfg.seed, "impact_io_mean": r.fleet["impact_io_mean"]} for label, r in runs.items()])
    bounds = seed_bounds(cfg, [cfg.seed], tmp_path)
    saved = tmp_path / f"bound-s{cfg.seed}.json"
    assert saved.is_file()
    stamp = saved.stat().st_mtime_ns
    assert seed_bounds(cfg, [cfg.seed], tmp_path) == bounds and saved.stat().st_mtime_ns == stamp  # reused, not re-solved
    seed_bounds(cfg, [cfg.seed], tmp_path, fulls=1)
    assert saved.stat().st_mtime_ns != stamp  # other options: solved again
    gaps = gap_table(cfg, table, bounds).set_index("policy")
    b = bounds[cfg.seed]
    assert gaps.loc["bound", "impact_io_mean"] == b
    for label, r in runs.items():
        assert gaps.loc[label, "x_bound"] == pytest.approx(r.fleet["impact_io_mean"] / b)
    want = runs["predictive-seasonal_naive"].fleet["impact_io_mean"] / runs["oracle"].fleet["impact_io_mean"]
    assert gaps.loc["predictive-seasonal_naive", "x_oracle"] == pytest.approx(want)
    assert np.isnan(gaps.loc["fixed", "x_oracle"]) and np.isnan(gaps.loc["oracle", "x_oracle"])
    rows, cols = gap_rows(gap_table(cfg, table, bounds))
    assert rows[0]["policy"] == "bound" and rows[0]["x_bound"] is None and len(cols) == 5


class ExtentSource:
    """A load source with exact write extents (as request-level traces give): steady load, random writes."""

    tick_s = DT

    def __init__(self, n_ticks: int, seed: int):
        rng = np.random.default_rng(seed)
        self.volumes = [VolumeMeta("x", "trace")]
        self.tick = np.repeat(np.arange(n_ticks), 40)
        self.offset = (rng.zipf(1.5, self.tick.size) % 300) * (1 << 20) + rng.integers(0, 1 << 20, self.tick.size)
        self.length = rng.integers(4096, 3 << 20, self.tick.size)

    def block(self, start_tick: int, n_ticks: int) -> LoadBlock:
        blk = LoadBlock.zeros(start_tick, n_ticks, 1)
        blk.read_iops[:] = 400.0
        blk.write_iops[:] = 40.0 / DT
        blk.read_mbps[:] = 4.0
        sel = (self.tick >= start_tick) & (self.tick < start_tick + n_ticks)
        blk.extents = {0: Extents(self.tick[sel] - start_tick, self.offset[sel], self.length[sel])}
        return blk

    def describe(self) -> dict:
        return {}


def test_exact_extents_bound_the_simulators_job_sizes_and_its_impact():
    n, rho = 60, 3
    source = ExtentSource(n, 7)
    iops, mbps, _, exact = load_arrays(source, n, 1, DT, 1 << 20)
    t, c = (np.concatenate(x) for x in zip(*exact[0]))
    dev = DEVICE_CLASSES["san"]
    v = exact_volume_input("x", DT, iops[:, 0], mbps[:, 0], t, c, dev, rho * DT, 1e9, 1 << 20)
    spec = SimSpec(
        volumes=(VolumeSpec("x", dev, 1e9, rho * DT, 3600.0),),
        tiers=(TierSpec("t", "ssd", 1000.0, 1000.0, 1, 1e12, 0.0),),
        duration_s=n * DT,
        record_s=DT,
    )
    run = Simulation(spec, source, BackToBack()).run()
    assert run.fleet["rpo_compliance_pct"] == 100.0
    jobs = run.jobs.sort_values("snapshot_t")
    snaps = np.round(jobs["snapshot_t"].to_numpy() / DT).astype(int)
    for a, b, size in zip(snaps[:-1], snaps[1:], jobs["size_bytes"].to_numpy()[1:]):
        assert v.release_mb[a:b].sum() <= size / 1e6 + 1e-9  # each job moves at least its interval's releases
        assert size > 0
    b = instance_bound(Instance(DT, [v], 1000.0), step_s=DT)
    assert b.changed_bytes == "exact"
    assert 0 < b.impact_io_mean < run.fleet["impact_io_mean"]

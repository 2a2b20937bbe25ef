"""`piop bench`: simulator throughput in volume-ticks per second.

The vectorised fleet model (fixed policy, a synthetic workload, default tiers) against
the one-process-per-volume baseline of `sim.naive`, on the same load source. Figures
are printed, not asserted: speed targets live here, not in tests.
"""

from __future__ import annotations

import math
import resource
import time
from collections.abc import Callable

import schedulers
import workloads
from common.errors import UserError
from experiments.config import default_tiers
from experiments.sizing import RunSize, check_size
from sim.devices import DEVICE_CLASSES
from sim.model import Simulation
from sim.naive import NaiveFleet
from sim.spec import SimSpec, VolumeSpec
from sim.tiers import TierSpec


def _spec(n: int, seconds: float) -> SimSpec:
    tiers = tuple(
        TierSpec(
            t.name,
            t.media,
            t.ingest_mbps * max(1, n // 25),
            t.restore_mbps,
            t.slots * max(1, n // 25),
            t.capacity_gb * 1e9,
            t.cost_per_gb_month,
            t.priority,
        )
        for t in default_tiers()
    )
    vols = tuple(VolumeSpec(f"v{i}", DEVICE_CLASSES["ssd"], 200e9, 6 * 3600.0, 4 * 3600.0) for i in range(n))
    return SimSpec(vols, tiers, duration_s=seconds, record_series=False)


def _events(env) -> int:
    """Events the run processed (the simulator's environment counts them)."""
    return env.processed


def check_bench(sizes: list[int], days: float, naive_hours: float, workload: str) -> None:
    """Every option in range and every fleet within memory, before the first simulation."""
    if not sizes:
        raise UserError("--volumes: give at least one fleet size, e.g. 10,100,1000")
    for n in sizes:
        if n < 1:
            raise UserError(f"--volumes: fleet sizes must be at least 1 volume, not {n}")
    for value, option in ((days, "--days"), (naive_hours, "--naive-hours")):
        if not (math.isfinite(value) and value > 0):
            raise UserError(f"{option}: must be a positive number, not {value:g}")
    if workload not in workloads.SYNTHETIC:
        raise UserError(f"--workload: unknown workload {workload!r}; known: {', '.join(workloads.SYNTHETIC.names())}")
    for n in sizes:
        hint = "give smaller --volumes / --days / --naive-hours"
        check_size(RunSize(n, days * 86400.0, 10.0, 300.0, 60.0, record_series=False), f"--volumes {n} --days {days:g}", hint)
        check_size(
            RunSize(n, naive_hours * 3600.0, 10.0, 300.0, 60.0, record_series=False), f"--volumes {n} --naive-hours {naive_hours:g}", hint
        )


def run_bench(sizes: list[int], days: float, naive_hours: float, workload: str, log: Callable | None = None) -> list[dict]:
    check_bench(sizes, days, naive_hours, workload)
    rows = []
    for n in sizes:
        load = workloads.SYNTHETIC.create(workload, count=n, tick_s=10.0, seed=1, id_prefix="v")
        spec = _spec(n, days * 86400.0)
        sim = Simulation(spec, load, schedulers.SCHEDULERS.create("fixed"))
        t0 = time.perf_counter()
        result = sim.run()
        wall = time.perf_counter() - t0
        vt = n * spec.n_ticks / wall
        events = _events(sim.env) / spec.n_ticks
        nspec = _spec(n, naive_hours * 3600.0)
        naive = NaiveFleet(nspec, workloads.SYNTHETIC.create(workload, count=n, tick_s=10.0, seed=1, id_prefix="v"), 3 * 3600.0)
        t0 = time.perf_counter()
        nev = naive.run()
        nwall = time.perf_counter() - t0
        nvt = n * nspec.n_ticks / nwall
        row = {
            "volumes": n,
            "days": days,
            "ticks": spec.n_ticks,
            "wall_s": wall,
            "vol_ticks_per_s": vt,
            "events_per_tick": events,
            "naive_hours": naive_hours,
            "naive_wall_s": nwall,
            "naive_vol_ticks_per_s": nvt,
            "naive_events_per_tick": nev / nspec.n_ticks,
            "speedup": vt / nvt,
            "jobs": len(result.jobs),
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        }
        rows.append(row)
        if log:
            log(f"{n} volumes: {vt:,.0f} vol-ticks/s vectorised, {nvt:,.0f} naive ({vt / nvt:.1f}x)")
    return rows

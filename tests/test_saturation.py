"""RPO first on undersized backup tiers: the EDF feasibility test and the predictive policy on it.

The earliest-deadline-first fluid test (`schedulers.feasibility`) is checked on jobs whose
schedule is known by hand; then on a small mixed fleet (write-heavy databases with a 2 h
RPO, file servers whose calendar fulls come due) whose tiers the test, fed the fleet's
measured changes, calls just sufficient: the predictive policy must then meet every RPO
(it used to start the calendar fulls, hold every slot for hours and miss). On the same
fleet with too little capacity, the policy's saturation report must name the volumes
that miss, and the capacity it says would suffice must, rerun, meet every RPO.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from test_predictive import assert_reasons_agree

import schedulers
from experiments.config import load_config
from experiments.saturation import saturation_line
from schedulers.feasibility import Jobs, Pool, check_fleet, check_jobs, edf
from sim.model import Simulation
from sim.spec import SimSpec, VolumeSpec
from sim.tiers import TierSpec
from sim.types import DEVICE_CLASSES
from workloads.base import FleetLoad
from workloads.constant import constant

HOUR = 3600.0
SSD, SAN = DEVICE_CLASSES["ssd"], DEVICE_CLASSES["san"]


def tier(slots: int, ingest_mbps: float) -> TierSpec:
    return TierSpec("t", "hdd", ingest_mbps, 300.0, slots, 1e15, 0.015, 0)


# ----------------------------------------------------------------------------- the EDF fluid test


def test_edf_serves_deadlines_in_order_and_says_what_would_suffice():
    # one slot, ample ingest: four 100 s jobs due at 100, 200, 200 and 300 s
    pool = Pool(("t",), np.array([1.0]), np.array([1e6]))
    jobs = Jobs(np.arange(4), np.array([100.0, 300.0, 200.0, 200.0]), np.full(4, 1e6), np.full(4, 100.0))
    v = edf(jobs, pool)
    assert np.allclose(v.finish_s, [100.0, 400.0, 200.0, 300.0])
    assert not v.feasible and v.misses() == {1: 100.0, 3: 100.0}
    # by 200 s it needs 300 slot-seconds: 1.5 slots; two slots meet every deadline
    assert v.need_slots == pytest.approx(1.5)
    assert edf(jobs, Pool(("t",), np.array([2.0]), np.array([1e6]))).feasible
    # a slot held by a running job for 50 s more delays everything behind it
    held = edf(jobs, Pool(("t",), np.array([2.0]), np.array([1e6])), busy_s=np.array([50.0]))
    assert held.finish_s.max() == pytest.approx(225.0)
    # ingest: 400 MB due by 200 s through 1 MB/s is late; 2 MB/s would do
    slow = edf(
        Jobs(np.arange(2), np.array([200.0, 200.0]), np.full(2, 200e6), np.full(2, 10.0)), Pool(("t",), np.array([4.0]), np.array([1.0]))
    )
    assert not slow.feasible and slow.need_mbps == pytest.approx(2.0)


def test_edf_admits_work_only_where_every_deadline_keeps_room():
    pool = Pool(("t",), np.array([2.0]), np.array([1e6]))
    v = edf(Jobs(np.arange(2), np.array([300.0, 300.0]), np.full(2, 1e6), np.full(2, 200.0)), pool)
    assert v.admits(150.0, 1e6, 100.0)  # 600 slot-seconds by 300 s, 400 taken
    v.take(150.0, 1e6, 100.0)
    assert not v.admits(100.0, 1e6, 100.0)  # only 50 left


def test_check_fleet_names_the_latest_deadlines_and_its_capacity_suffices():
    # 4 volumes with a 1 h RPO and 4 with a 2 h RPO, 80 GB each per period, at most 200 MB/s each:
    # the first hour's 320 GB fit through 100 MB/s, the 960 GB due by the second hour do not
    ids = [f"a{i}" for i in range(4)] + [f"b{i}" for i in range(4)]
    rpo = np.array([HOUR] * 4 + [2 * HOUR] * 4)
    tight = [tier(2, 100.0)]
    v = check_fleet(ids, np.full(8, 80e9), rpo, np.full(8, 200.0), tight)
    assert not v.feasible
    assert set(v.misses()) >= {"b0", "b1", "b2", "b3"}  # the later deadlines give way first
    assert "cannot meet every RPO" in v.warning() and "needs" in v.warning()
    need = v.verdict.tiers_needed()["t"]
    assert need["slots"] > 2 and need["ingest_mbps"] > 100
    assert check_fleet(ids, np.full(8, 80e9), rpo, np.full(8, 200.0), [tier(int(need["slots"]), need["ingest_mbps"])]).feasible
    assert check_fleet(ids, np.full(8, 1e9), rpo, np.full(8, 200.0), tight).warning() == ""


# ----------------------------------------------------------------------------- the policy on a saturating fleet


def mixed_spec(tiers, hours: float, spread_h: float = 24.0) -> SimSpec:
    """16 databases (100 GB, RPO 2 h) and 8 file servers (1 TB, RPO 12 h), last fulls spread over a day."""
    vols = tuple(VolumeSpec(f"db{i:02d}", SSD, 100e9, 2 * HOUR, 2 * HOUR) for i in range(16))
    vols += tuple(VolumeSpec(f"fs{i:02d}", SAN, 1000e9, 12 * HOUR, 8 * HOUR) for i in range(8))
    return SimSpec(vols, tuple(tiers), duration_s=hours * HOUR, initial_full_spread_s=spread_h * HOUR)


def mixed_load(db_writes: float) -> FleetLoad:
    return FleetLoad(
        [
            constant(count=16, tick_s=10.0, id_prefix="db", read_iops=3000, write_iops=db_writes, read_mbps=30, write_mbps=db_writes / 100),
            constant(count=8, tick_s=10.0, id_prefix="fs", read_iops=500, write_iops=200, read_mbps=20, write_mbps=5),
        ]
    )


def measured_check(db_writes: float, tiers) -> object:
    """The EDF verdict on `tiers` for the fleet's changes, measured on ample tiers by the fixed schedule."""
    r = Simulation(mixed_spec([tier(64, 5000.0)], 8, 0.0), mixed_load(db_writes), schedulers.SCHEDULERS.create("fixed")).run()
    return check_jobs(r.volumes, r.jobs, tiers)


def run_predictive(tiers, hours: float, db_writes: float):
    sched = schedulers.SCHEDULERS.create("predictive", full_every_h=24.0)
    return Simulation(mixed_spec(tiers, hours), mixed_load(db_writes), sched).run(), sched


def test_predictive_meets_every_rpo_when_an_edf_schedule_does():
    tiers = [tier(4, 300.0)]
    verdict = measured_check(3000.0, tiers)
    assert verdict.feasible, verdict.warning()
    assert verdict.verdict.need_slots > 3.5  # just: the four slots are (nearly) all needed
    r, sched = run_predictive(tiers, 12, 3000.0)
    # every full is due within the run; taking them all (1 TB fulls for hours on the slots the
    # databases' incrementals need) misses the databases' RPO: RPO first defers them
    assert r.fleet["rpo_compliance_pct"] == 100.0
    assert r.fleet["rpo_violations"] == 0
    s = sched.summary()["saturation"]
    assert not s["saturated"] and s["fulls_deferred"] > 0
    starts = r.decisions[r.decisions["action"] == "start"]
    deferred = starts[starts["reason"].str.contains("deferred")]
    assert len(deferred) and (deferred["kind"] == "incremental").all()
    assert assert_reasons_agree(r.decisions) > 0


def test_saturation_report_names_the_volumes_that_miss_and_what_would_suffice():
    tiers = [tier(2, 100.0)]
    assert not measured_check(16000.0, tiers).feasible
    r, sched = run_predictive(tiers, 14, 16000.0)
    s = sched.summary()["saturation"]
    assert s["saturated"]
    missed = set(r.volumes.loc[r.volumes["rpo_violations"] > 0, "volume"])
    assert missed and s["volumes_missing"] == len(missed)
    named = set(s["misses_h"])  # the 20 worst: the databases, the heaviest changes, first
    assert named <= missed and {f"db{i:02d}" for i in range(16)} <= named
    assert not s["source_limited"]  # every source could go faster: the tiers are short
    line = saturation_line("mixed/predictive-s1", s)  # what `piop run` / `compare` print from summary.json
    assert line and f"{len(missed)} volume(s) miss their RPO" in line and "would suffice" in line, line
    assert saturation_line("x", sched.summary()["saturation"] | {"saturated": False}) is None
    starts = r.decisions[r.decisions["action"] == "start"]
    assert starts["reason"].str.contains("tiers saturated: no schedule meets every RPO").any()
    assert starts["reason"].str.startswith("RPO first").any()
    assert_reasons_agree(r.decisions)
    # the capacity it says would have sufficed does
    need = s["needs"]["tiers"]["t"]
    assert need["slots"] > 2 and need["ingest_mbps"] > 100
    r2, s2 = run_predictive([tier(int(need["slots"]), need["ingest_mbps"])], 14, 16000.0)
    assert r2.fleet["rpo_violations"] == 0
    assert not s2.summary()["saturation"]["saturated"]


# ----------------------------------------------------------------------------- the scale configs


@pytest.mark.parametrize("path", sorted((Path(__file__).parents[1] / "experiments" / "configs" / "scale").glob("*.yaml")))
def test_scale_configs_load(path):
    cfg = load_config(path, {})
    n = sum(g.count for g in cfg.fleet)
    assert n in (100, 500, 1000)
    # the default tiers (4 + 8 slots), or those scaled with the fleet (x n / 12)
    assert sum(t.slots for t in cfg.tiers) == (n if "scaled" in path.name else 12)

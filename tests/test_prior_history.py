"""Load observed before the simulated span (`history_h`): what forecasters may learn from.

The simulation starts `history_h` into the fleet's load; forecasters see those hours
followed by the run's own history, on the run's clock; every policy runs on the same span.
"""

from __future__ import annotations

import numpy as np
import pytest
from cli_helpers import MONDAY, assert_one_line_error, piop
from test_cli import tiny_config

import workloads.synthetic  # noqa: F401  (registration)
from experiments.config import load_config
from experiments.runner import build_fleet, plans, simulate, split_history
from forecasters.service import ForecastService
from sim.history import HistoryRecorder, history_from_source
from workloads.base import FleetLoad, Offset
from workloads.registry import SYNTHETIC

STEP = 300.0
TICK = 10.0


def fleet(seed: int = 3) -> FleetLoad:
    return FleetLoad([SYNTHETIC.create("database", count=2, tick_s=TICK, seed=seed, id_prefix="db-", start_epoch=MONDAY)])


def test_offset_source_reads_later_ticks():
    load = fleet()
    off = Offset(load, 4321)
    a, b = off.block(7, 500), load.block(4321 + 7, 500)
    assert a.start_tick == 7 and b.start_tick == 4321 + 7
    for s in ("read_iops", "write_iops", "read_mbps", "write_mbps", "cpu_pct", "mem_pct", "net_mbps"):
        assert np.array_equal(getattr(a, s), getattr(b, s))
    assert off.describe()["offset_ticks"] == 4321
    with pytest.raises(ValueError):
        Offset(load, -1)


def test_service_sees_prior_then_run_history_on_the_run_clock():
    load = fleet()
    prior_steps, run_steps = 2 * 288, 40
    per = int(STEP / TICK)
    prior = history_from_source(load, STEP, prior_steps, start_epoch=MONDAY)
    whole = history_from_source(load, STEP, prior_steps + run_steps, start_epoch=MONDAY)
    seen = []

    class Spy:
        name = "spy"

        def fit(self, history):
            seen.append(("fit", history.n_steps))

        def predict(self, history, horizon_steps):
            seen.append(("predict", history))
            from forecasters.base import FORECASTERS

            return FORECASTERS.create("seasonal_naive").predict(history, horizon_steps)

    svc = ForecastService(Spy(), horizon_steps=12, prior=prior, retrain={"every_hours": None, "min_history_hours": 24})
    run_start = MONDAY + prior_steps * STEP
    rec = HistoryRecorder(2, TICK, per, 8, ["database"] * 2, run_start)  # starts small: the join must grow
    sim_load = Offset(load, prior_steps * per)
    served = []
    for k in range(run_steps):
        blk = sim_load.block(k * per, per)
        rec.add_ticks(blk, 0, per)
        served.append(svc.update(rec.history()))
    # the first update already fits (a day of history exists) and serves the model, not the fallback
    assert seen[0] == ("fit", prior_steps + 1)
    assert served[0].model == "seasonal_naive"
    last = [h for tag, h in seen if tag == "predict"][-1]
    assert last.n_steps == prior_steps + run_steps
    assert last.end_t == run_steps * STEP  # the run's clock
    assert last.start_epoch == run_start and last.times[0] == -prior_steps * STEP
    for f in ("iops", "mbps", "cpu_pct", "mem_pct", "net_mbps"):
        np.testing.assert_allclose(getattr(last, f), getattr(whole, f), rtol=1e-6)
    # so a forecast equals one made from the whole load read in one go
    from forecasters.base import FORECASTERS

    ref = FORECASTERS.create("seasonal_naive").predict(whole, 12)
    np.testing.assert_allclose(served[-1].mean, ref.mean, rtol=1e-6)


def test_runs_start_after_the_history_and_every_policy_sees_the_same_span(tmp_path):
    path = tiny_config(tmp_path, history_h=24, duration_h=1)
    cfg = load_config(path)
    fleet_load, _, fleet_start = build_fleet(cfg, 1)
    load, start, prior = split_history(cfg, fleet_load, fleet_start)
    assert start == fleet_start + 24 * 3600 and prior.n_steps == 288
    np.testing.assert_array_equal(load.block(0, 30).iops, fleet_load.block(24 * 360, 30).iops)
    metas = {p.policy.label: simulate(p)[1] for p in plans(cfg)}
    assert {m["start_epoch"] for m in metas.values()} == {start}
    fc = metas["predictive-seasonal_naive"]["forecast"]
    assert fc["events"][0]["event"] == "fit" and fc["events"][0]["t"] == STEP  # fitted at the first update


def test_history_h_must_be_whole_steps(tmp_path):
    assert_one_line_error(piop("run", tiny_config(tmp_path, history_h=0.01)), "history_h", "whole number of history steps")
    assert_one_line_error(piop("run", tiny_config(tmp_path, history_h=-2)), "history_h")

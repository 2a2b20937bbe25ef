"""The predictive (PIOP) policy and the oracle bound: behaviour that must hold.

Small fleets, hours to two days, a tiny periodic load defined here, and a forecast
provider that hands the scheduler the true future (so behaviour is tested apart from
forecast error), or no forecast at all. The run's own settings (device headroom, restore
overhead) are checked end to end from an experiment config.
"""

from __future__ import annotations

import dataclasses
import re
import warnings

import numpy as np
import pytest

import schedulers
from experiments.config import parse_config
from experiments.runner import plans, simulate
from schedulers.predictive import PredictiveParams, PredictiveScheduler
from sim.model import Simulation
from sim.spec import SimSpec, VolumeSpec
from sim.tiers import TierSpec
from sim.types import DEVICE_CLASSES, BackupKind, Forecast, LoadLabel, Start, impact, rate_for_impact, rate_for_utilisation
from workloads.base import LoadBlock, VolumeMeta, WorkingSet
from workloads.constant import constant

VDISK = DEVICE_CLASSES["vdisk"]  # 1,500 IOPS, 60 MB/s: a QoS-capped virtual disk

TIERS = (
    TierSpec("ssd", "ssd", 1500.0, 1200.0, 4, 1e14, 0.08, 0),
    TierSpec("hdd", "hdd", 600.0, 300.0, 8, 1e15, 0.015, 1),
)
SSD = DEVICE_CLASSES["ssd"]  # 80,000 IOPS, 500 MB/s
STEP = 300.0
THRESHOLD = 0.2


def make_spec(n=2, hours=48.0, used_gb=50.0, rpo_h=8.0, rto_h=4.0, **kw) -> SimSpec:
    vols = tuple(VolumeSpec(f"v{i}", SSD, used_gb * 1e9, rpo_h * 3600, rto_h * 3600) for i in range(n))
    return SimSpec(vols, TIERS, duration_s=hours * 3600, impact_threshold=THRESHOLD, **kw)


@dataclasses.dataclass
class Segment:
    """From `start_h` (phase within the period) on: this load, until the next segment."""

    start_h: float
    iops: float
    mbps: float
    write_frac: float = 0.3


class PeriodicLoad:
    """Every volume repeats the same piecewise-constant load with period `period_h`."""

    def __init__(self, n: int, segments: list[Segment], period_h: float, tick_s: float = 10.0, zipf_s: float = 1.7):
        self.tick_s = tick_s
        self.period_s = period_h * 3600.0
        self.segments = sorted(segments, key=lambda s: s.start_h)
        self.volumes = [VolumeMeta(f"v{i}", "periodic", {}, WorkingSet(zipf_s)) for i in range(n)]

    def at(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        phase = np.mod(t, self.period_s) / 3600.0
        starts = np.array([s.start_h for s in self.segments])
        idx = np.searchsorted(starts, phase, side="right") - 1  # phase before the first start: last segment
        iops = np.array([s.iops for s in self.segments])[idx]
        mbps = np.array([s.mbps for s in self.segments])[idx]
        wf = np.array([s.write_frac for s in self.segments])[idx]
        return iops, mbps, wf

    def block(self, start_tick: int, n_ticks: int) -> LoadBlock:
        t = (start_tick + np.arange(n_ticks)) * self.tick_s
        iops, mbps, wf = self.at(t)
        v = len(self.volumes)

        def col(x):
            return np.repeat(x.astype(np.float32)[:, None], v, axis=1)

        z = np.zeros((n_ticks, v), np.float32)
        return LoadBlock(
            start_tick=start_tick,
            read_iops=col(iops * (1 - wf)),
            write_iops=col(iops * wf),
            read_mbps=col(mbps * (1 - wf)),
            write_mbps=col(mbps * wf),
            cpu_pct=z + 10,
            mem_pct=z + 50,
            net_mbps=z,
        )

    def describe(self) -> dict:
        return {"workload": "periodic-test"}

    def phase_h(self, t: float) -> float:
        return (t % self.period_s) / 3600.0


class TrueFuture:
    """A forecast provider that returns the true step means (upper = mean x `upper`)."""

    def __init__(self, load, horizon_h: float = 6.0, upper: float = 1.1, burst: tuple[float, float] | None = None):
        self.load = load
        self.h = int(round(horizon_h * 3600 / STEP))
        self.upper = upper
        self.burst = burst  # (start_h, end_h) within the period labelled BURST
        self.updates = 0

    def update(self, history) -> Forecast:
        self.updates += 1
        origin = history.end_t
        per = int(round(STEP / self.load.tick_s))
        blk = self.load.block(int(round(origin / self.load.tick_s)), self.h * per)
        iops = blk.iops.reshape(self.h, per, -1).mean(axis=1).T  # [V, H]
        mbps = blk.mbps.reshape(self.h, per, -1).mean(axis=1).T
        mean = np.stack([iops, mbps], -1).astype(float)
        labels = np.zeros(iops.shape, np.int8)
        if self.burst is not None:
            mid = origin + (np.arange(self.h) + 0.5) * STEP
            ph = np.array([self.load.phase_h(x) for x in mid])
            labels[:, (ph >= self.burst[0]) & (ph < self.burst[1])] = LoadLabel.BURST
        return Forecast(origin, STEP, mean, mean * self.upper, labels, 0.9, "truth")


class Recorder:
    """Wraps a scheduler; keeps every action with the restore-point age when it was taken."""

    name = "recorder"

    def __init__(self, inner):
        self.inner = inner
        self.log: list[tuple[float, object, float, float]] = []

    def decide(self, ctx):
        acts = self.inner.decide(ctx)
        for a in acts:
            self.log.append((ctx.t, a, float(ctx.rp_age_s[a.volume]), float(ctx.volumes.rpo_s[a.volume])))
        return acts


# a 6-hour cycle: busy (50 % utilisation by IOPS) except a 1.5 h quiet window at 4.0-5.5 h
QUIET = (4.0, 5.5)
CYCLE = [Segment(0.0, 40_000, 100), Segment(QUIET[0], 800, 4), Segment(QUIET[1], 40_000, 100)]


def run(spec, load, policy="predictive", forecasts=None, **params):
    sched = Recorder(schedulers.SCHEDULERS.create(policy, **params))
    result = Simulation(spec, load, sched, forecasts=forecasts).run()
    return result, sched


def starts(sched) -> list[tuple[float, Start, float, float]]:
    return [(t, a, age, rpo) for t, a, age, rpo in sched.log if isinstance(a, Start)]


# ----------------------------------------------------------------------------- registry & params


def test_registered_and_params_validated():
    assert {"predictive", "oracle"} <= set(schedulers.SCHEDULERS.names())
    oracle = schedulers.SCHEDULERS.create("oracle")
    assert isinstance(oracle, PredictiveScheduler) and oracle.name == "oracle"
    with pytest.raises(TypeError, match="bogus"):
        schedulers.SCHEDULERS.create("predictive", bogus=1)
    with pytest.raises(ValueError):
        PredictiveParams(impact_target=0.0)
    # the run's settings are the run's: the policy reads them from the context, never keeps copies
    for name in ("max_util", "backup_max_util", "restore_overhead_s", "history_step_s"):
        with pytest.raises(TypeError):
            PredictiveParams(**{name: 1.0})
    # every field has a documented default
    doc = PredictiveParams.__doc__
    for f in dataclasses.fields(PredictiveParams):
        assert f.name in doc, f"{f.name} is not documented"


# ----------------------------------------------------------------------------- when


def test_starts_backups_inside_the_known_quiet_window():
    load = PeriodicLoad(2, CYCLE, period_h=6.0)
    spec = make_spec(n=2, hours=36, rpo_h=8.0)
    r, sched = run(spec, load, forecasts=TrueFuture(load))
    st = starts(sched)
    assert len(st) >= 2 * 4  # at least one backup every RPO interval
    for t, a, _, _ in st:
        assert QUIET[0] <= load.phase_h(t) < QUIET[1], f"backup of v{a.volume} started at phase {load.phase_h(t):.2f} h"
        assert not a.forced
    assert r.fleet["rpo_compliance_pct"] == 100.0
    # the same load, backed up on a fixed schedule, hurts production far more
    fixed, _ = run(spec, load, "fixed", incremental_every_h=4)
    assert r.fleet["impact_io_mean"] < 0.2 * fixed.fleet["impact_io_mean"]


def test_backs_up_more_often_when_quiet():
    """12 h cycles: 3 quiet hours, then 9 busy ones (longer than the 4 h RPO)."""
    load = PeriodicLoad(1, [Segment(0.0, 800, 4), Segment(3.0, 40_000, 100)], period_h=12.0)
    r, sched = run(make_spec(n=1, hours=36, rpo_h=4.0), load, forecasts=TrueFuture(load))
    assert r.fleet["rpo_compliance_pct"] == 100.0
    phases = np.array([load.phase_h(t) for t, *_ in starts(sched)])
    quiet_rate = np.sum(phases < 3.0) / (3 * 3.0)  # backups per quiet hour
    busy_rate = np.sum(phases >= 3.0) / (3 * 9.0)
    assert quiet_rate > 2.0 * busy_rate
    assert quiet_rate > 1.0 / 4.0  # more often than the RPO requires
    # the last quiet backup comes late in the window, so the busy stretch starts covered
    assert any(2.5 <= ph < 3.0 for ph in phases)


def test_quiet_window_found_with_the_seasonal_naive_forecaster():
    """The real forecasting service: once a day of history exists, seasonal naive knows the window."""
    service = pytest.importorskip("forecasters.service")
    load = PeriodicLoad(1, [Segment(0.0, 30_000, 80), Segment(2.0, 600, 3), Segment(6.0, 30_000, 80)], period_h=24.0)
    spec = make_spec(n=1, hours=48, rpo_h=30.0, rto_h=8.0)
    forecasts = service.ForecastService("seasonal_naive", horizon_steps=72)
    r, sched = run(spec, load, forecasts=forecasts)
    assert r.fleet["rpo_compliance_pct"] == 100.0
    later = [(t, a) for t, a, _, _ in starts(sched) if t >= 24 * 3600]
    assert later
    for t, a in later:
        assert 2.0 <= load.phase_h(t) < 6.0, f"started at {load.phase_h(t):.2f} h"
        assert "seasonal_naive" in a.reason


@pytest.mark.parametrize("provider", ["none", "truth"])
def test_never_misses_rpo_when_capacity_suffices(provider):
    load = constant(count=3, tick_s=10.0, read_iops=20_000, write_iops=10_000, read_mbps=120, write_mbps=60)
    spec = make_spec(n=3, hours=24, rpo_h=2.0)
    r, sched = run(spec, load, forecasts=None if provider == "none" else TrueFuture(load))
    assert r.fleet["rpo_compliance_pct"] == 100.0
    assert r.fleet["rpo_violations"] == 0
    assert r.fleet["worst_rp_age_h"] <= 2.0
    assert r.fleet["jobs_incremental"] >= 3 * 11
    if provider == "none":
        assert all("no forecast" in a.reason for _, a, _, _ in starts(sched))


def test_planned_backups_keep_the_minimum_spacing():
    # light load alternating every 30 min: a near-free backup is always close, and a plan that
    # must end late in the horizon would chain tiny ones (every few ticks, each one growing
    # the restore chain) unless the spacing rule stops it
    segs = [Segment(k * 0.5, 10 if k % 2 == 0 else 400, 0.1 if k % 2 == 0 else 4.0) for k in range(48)]
    load = PeriodicLoad(2, segs, period_h=24.0)
    spec = make_spec(n=2, hours=30, rpo_h=6.0)
    p = PredictiveParams()
    r, sched = run(spec, load, forecasts=TrueFuture(load))
    planned = [
        (age, rpo, a)
        for _, a, age, rpo in starts(sched)
        if not a.forced and not a.reason.startswith(("quiet", "RPO first", "last moment", "incremental first"))
    ]
    assert planned
    for age, rpo, a in planned:
        assert age >= p.min_interval_frac * rpo - 1e-6, (age / 3600, a.reason)
    assert r.fleet["rpo_compliance_pct"] == 100.0


# ----------------------------------------------------------------------------- how hard


def test_throttles_to_keep_predicted_impact_under_threshold():
    # 40 % utilisation (by MB/s): an unthrottled backup would push latency far past +20 %
    prod_iops, prod_mbps = 8_000.0, 200.0
    load = constant(
        count=1, tick_s=10.0, read_iops=prod_iops * 0.7, write_iops=prod_iops * 0.3, read_mbps=prod_mbps * 0.7, write_mbps=prod_mbps * 0.3
    )
    spec = make_spec(n=1, hours=8, used_gb=100.0, rpo_h=4.0)
    r, sched = run(spec, load, forecasts=TrueFuture(load, upper=1.0), full_every_h=1.0, full_early_h=0.0)
    rated = [(t, a) for t, a, _, _ in sched.log if getattr(a, "rate_mbps", None) is not None]
    assert any(isinstance(a, Start) and a.kind == BackupKind.FULL for _, a in rated)
    for _, a in rated:
        predicted = float(impact(prod_iops, prod_mbps, a.rate_mbps, SSD.max_iops, SSD.max_mbps))
        assert predicted <= THRESHOLD + 1e-9
        assert "impact" in a.reason
    assert r.fleet["impact_p99"] <= THRESHOLD * 1.05  # the histogram's bin edge is at most 5 % high
    assert r.fleet["io_over_threshold_pct"] == 0.0
    assert r.fleet["rpo_compliance_pct"] == 100.0
    # the full moved at about the threshold-limited rate, not at the device's limit
    limit = float(rate_for_impact(prod_iops, prod_mbps, SSD.max_iops, SSD.max_mbps, THRESHOLD))
    full = r.jobs[r.jobs["kind"] == "full"].iloc[0]
    assert (full["complete_t"] - full["snapshot_t"]) >= 100e9 / (limit * 1e6) * 0.95


def test_nowcast_rethrottles_within_a_tick_of_a_surprise():
    # the forecast knows the busy period from 2.5 h but not the 2.0-2.5 h surge; a full that
    # started in the calm runs across the surge
    known = [Segment(0.0, 1_000, 10), Segment(2.5, 16_000, 100)]
    surge = PeriodicLoad(1, known + [Segment(2.0, 30_000, 200)], period_h=24.0)
    spec = make_spec(n=1, hours=4, used_gb=700.0, rpo_h=8.0)
    window = (2.0 * 3600 + 10.0, 2.0 * 3600 + STEP)  # after the first observed tick, before the next forecast step
    during = {}
    for nowcast in (False, True):
        r, sched = run(spec, surge, forecasts=TrueFuture(PeriodicLoad(1, known, period_h=24.0)), full_every_h=24.0, nowcast=nowcast)
        assert next(t for t, a, _, _ in sched.log if isinstance(a, Start)) < 2.0 * 3600
        inside = [(t, a) for t, a, _, _ in sched.log if type(a).__name__ == "Throttle" and window[0] <= t < window[1]]
        s = r.series
        during[nowcast] = float(s[(s["t"] >= 2.0 * 3600) & (s["t"] < 2.5 * 3600)]["impact"].mean())
        if not nowcast:
            assert inside == []  # it waits for the next forecast step
            continue
        assert len(inside) == 1, inside
        t, a = inside[0]
        assert t == window[0]
        assert "observed load above the forecast" in a.reason
        # the new rate keeps the impact of the observed surge under the threshold
        assert float(impact(30_000, 200, a.rate_mbps, SSD.max_iops, SSD.max_mbps)) <= THRESHOLD + 1e-9
    assert during[True] < during[False]


def test_rethrottles_as_the_forecast_changes_and_pauses_through_bursts():
    # quiet, then a 30-minute burst (the device nearly saturated), then moderate load, then
    # quiet again; a long full runs across all of it
    segs = [Segment(0.0, 1_000, 10), Segment(2.0, 60_000, 480), Segment(2.5, 16_000, 100), Segment(4.5, 1_000, 10)]
    load = PeriodicLoad(1, segs, period_h=24.0)
    spec = make_spec(n=1, hours=7, used_gb=700.0, rpo_h=8.0)
    provider = TrueFuture(load, burst=(2.0, 2.5))
    r, sched = run(spec, load, forecasts=provider, full_every_h=1.0, full_early_h=0.0, lookahead=False)
    log = [(t, a) for t, a, _, _ in sched.log]
    kinds = [type(a).__name__ for _, a in log]
    assert "Pause" in kinds and "Resume" in kinds and "Throttle" in kinds
    t_pause = next(t for t, a in log if type(a).__name__ == "Pause")
    t_resume = next(t for t, a in log if type(a).__name__ == "Resume")
    assert 2.0 * 3600 <= t_pause < 2.0 * 3600 + STEP  # paused when the predicted burst starts
    assert 2.5 * 3600 <= t_resume < 2.5 * 3600 + STEP  # and resumed when it is over
    assert "burst" in next(a.reason for _, a in log if type(a).__name__ == "Pause")
    # after the burst the rate is what the moderate load allows (under the threshold there),
    # and it goes up again when the forecast shows the load falling at 4.5 h
    resumed = next(a for t, a in log if type(a).__name__ == "Resume")
    assert float(impact(16_000, 100, resumed.rate_mbps, SSD.max_iops, SSD.max_mbps)) <= THRESHOLD + 1e-9
    up = next(a for t, a in log if type(a).__name__ == "Throttle" and 4.5 * 3600 <= t < 4.5 * 3600 + STEP)
    assert up.rate_mbps > resumed.rate_mbps
    assert float(impact(1_000, 10, up.rate_mbps, SSD.max_iops, SSD.max_mbps)) <= THRESHOLD + 1e-9
    assert r.jobs.iloc[0]["pauses"] >= 1
    s = r.series
    during = s[(s["t"] >= 2.0 * 3600 + 60) & (s["t"] < 2.5 * 3600)]
    assert during["backup_mbps"].max() == 0.0


# ----------------------------------------------------------------------------- what


def test_differential_when_the_chain_would_break_the_rto():
    # a 50 GB volume restores in ~100 s from SSD; every incremental adds 60 s: an RTO of
    # 10 minutes allows a handful of incrementals, then a differential resets the chain
    load = constant(count=1, tick_s=10.0, read_iops=2_000, write_iops=2_000, read_mbps=20, write_mbps=20)
    spec = make_spec(n=1, hours=24, used_gb=50.0, rpo_h=1.0, rto_h=10 / 60)
    r, sched = run(spec, load, forecasts=TrueFuture(load))
    assert r.fleet["jobs_differential"] >= 1
    assert r.fleet["rto_compliance_pct"] == 100.0
    assert r.fleet["rpo_compliance_pct"] == 100.0
    diffs = [a for _, a, _, _ in starts(sched) if a.kind == BackupKind.DIFFERENTIAL]
    assert all("RTO" in a.reason for a in diffs)
    # no chain ever grew past what the RTO allows
    assert r.series["rto_estimate_s"].max() <= 600.0


def test_full_when_the_differential_would_be_as_large():
    # a small, write-heavy volume: soon most of it has changed since the full
    load = constant(count=1, tick_s=10.0, read_iops=500, write_iops=4_000, read_mbps=10, write_mbps=60)
    spec = make_spec(n=1, hours=24, used_gb=4.0, rpo_h=1.0, rto_h=6 / 60)
    r, sched = run(spec, load, forecasts=TrueFuture(load))
    assert r.fleet["jobs_full"] >= 1
    assert r.fleet["rto_compliance_pct"] == 100.0
    fulls = [a for _, a, _, _ in starts(sched) if a.kind == BackupKind.FULL]
    assert all("differential too large" in a.reason or "RTO" in a.reason for a in fulls)


def test_a_calendar_full_no_window_fits_is_taken_once_overdue_not_skipped():
    # steady load that holds a backup to 50 MB/s at the threshold: a 100 GB full needs 33 min, 50 with the
    # planning's safety factor, and the 1 h RPO leaves no window that long (less its margin and the next
    # incremental), so a full due by the calendar never "fits"; once overdue it is forced (the RPO's rate)
    load = constant(count=1, tick_s=10.0, read_iops=5_600, write_iops=2_400, read_mbps=140, write_mbps=60)
    spec = make_spec(n=1, hours=8, used_gb=100.0, rpo_h=1.0, rto_h=48.0)
    fulls = {}
    for late in (None, 1.0):
        r, sched = run(spec, load, forecasts=TrueFuture(load, upper=1.0), full_every_h=2.0, full_early_h=0.0, full_late_h=late)
        fulls[late] = [(t, a) for t, a, _, _ in starts(sched) if a.kind == BackupKind.FULL]
        assert r.fleet["rpo_compliance_pct"] == 100.0
    assert fulls[None] == []  # without the rule the due full waits for a window for ever
    assert fulls[1.0], "an overdue calendar full must be taken"
    t, a = fulls[1.0][0]
    assert 3.0 * 3600 <= t < 3.0 * 3600 + 2 * STEP  # due at 2 h, overdue 1 h later: taken then
    assert "full overdue" in a.reason and "1.0 h past due" in a.reason and a.forced
    with pytest.raises(ValueError, match="full_late_h"):
        PredictiveParams(full_late_h=-1.0)


@pytest.mark.parametrize("late_h", [0.25, 0.75])
def test_an_overdue_full_never_costs_the_rpo(late_h):
    # a virtual disk (60 MB/s) whose 1.5 h RPO a 100 GB full fits only from a fresh restore point, at the
    # device's rate: the overdue full follows an incremental started for it; where the device cannot
    # move the full within any RPO (heavier load), it is not taken at all: RPO first
    vols = (VolumeSpec("v0", VDISK, 100e9, 1.5 * 3600, 48 * 3600),)
    spec = SimSpec(vols, TIERS, duration_s=8 * 3600, impact_threshold=THRESHOLD)
    for mbps, taken in ((20.0, True), (40.0, False)):
        load = constant(
            count=1, tick_s=10.0, read_iops=350 * mbps / 20, write_iops=150 * mbps / 20, read_mbps=0.7 * mbps, write_mbps=0.3 * mbps
        )
        r, sched = run(spec, load, forecasts=TrueFuture(load, upper=1.0), full_every_h=2.0, full_early_h=0.0, full_late_h=late_h)
        assert r.fleet["rpo_compliance_pct"] == 100.0
        fulls = [(t, age) for t, a, age, _ in starts(sched) if a.kind == BackupKind.FULL]
        assert bool(fulls) == taken
        if taken:
            assert all(age < 0.1 * 3600 for _, age in fulls)  # right after a fresh restore point
            assert fulls[0][0] >= (2.0 + late_h) * 3600 - STEP


# ----------------------------------------------------------------------------- safety


def test_forced_decisions_happen_only_near_the_deadline():
    # quiet, then 6 h of load (85 % of the device's MB/s) under which the threshold rate is
    # too slow for the volume's changes within its 2 h RPO: then, and only then, RPO wins
    heavy_iops, heavy_mbps = 20_000.0, 425.0
    segs = [Segment(0.0, 1_000, 10), Segment(4.0, heavy_iops, heavy_mbps, write_frac=0.6), Segment(10.0, 1_000, 10)]
    load = PeriodicLoad(1, segs, period_h=24.0)
    spec = make_spec(n=1, hours=16, used_gb=1000.0, rpo_h=2.0, rto_h=12.0)
    r, sched = run(spec, load, forecasts=TrueFuture(load, upper=1.0))
    forced = [(t, a, age, rpo) for t, a, age, rpo in starts(sched) if a.forced]
    assert len(forced) >= 2, "the heavy period should force backups"
    acceptable = float(rate_for_impact(heavy_iops, heavy_mbps, SSD.max_iops, SSD.max_mbps, THRESHOLD))
    headroom = 0.95 * SSD.max_mbps - heavy_mbps
    p = PredictiveParams()
    jobs = r.jobs.set_index("queued_t")
    for t, a, age, rpo in forced:
        assert 4.0 <= load.phase_h(t) < 10.0
        size = jobs.loc[t, "size_bytes"]
        left = rpo - age - max(p.deadline_margin_s, p.deadline_margin_frac * rpo)
        # at the acceptable rate it would not finish in time (the policy's size and duration margins)
        assert size * (1 + p.size_margin) * p.duration_safety / (acceptable * 1e6) > left
        assert acceptable < a.rate_mbps < headroom  # over the threshold, but the least harmful rate, not flat out
        assert "forced" in a.reason and "deadline" in a.reason
    assert r.fleet["forced_decisions"] == len(forced)
    assert r.fleet["rpo_compliance_pct"] == 100.0
    # with load the threshold can live with, nothing is forced
    calm = PeriodicLoad(2, CYCLE, period_h=6.0)
    r2, _ = run(make_spec(n=2, hours=24, rpo_h=2.0), calm, forecasts=TrueFuture(calm))
    assert r2.fleet["forced_decisions"] == 0
    assert r2.fleet["rpo_compliance_pct"] == 100.0


class WrongForecast:
    """A forecaster out of touch with an idle disk: upper load at the device's limits (no
    rate keeps the impact under the threshold), or no numbers at all (NaN)."""

    def __init__(self, mode: str, horizon: int = 72):
        self.mode = mode
        self.h = horizon

    def update(self, history) -> Forecast:
        n = history.iops.shape[1]
        mean = np.zeros((n, self.h, 2))
        if self.mode == "nan":
            mean[:] = np.nan
            upper = mean.copy()
        else:
            upper = np.broadcast_to(np.array([SSD.max_iops, SSD.max_mbps]), (n, self.h, 2)).copy()
        return Forecast(history.end_t, STEP, mean, upper, np.zeros((n, self.h), np.int8), 0.9, "wrong")


@pytest.mark.parametrize("mode", ["saturated", "nan"])
def test_an_idle_volume_gets_no_repeated_starts(mode):
    # nothing is written, so every backup is empty; a plan that finds no window under the
    # threshold used to force one every decision (a zero-byte job ends at once): thousands
    # of starts, each "needs 0 MB/s > 0 MB/s". And an all-NaN forecast must not warn.
    spec = make_spec(n=1, hours=24, rpo_h=6.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        r, sched = run(spec, constant(count=1, tick_s=10.0), forecasts=WrongForecast(mode))
    st = starts(sched)
    p = PredictiveParams()
    assert 3 <= len(st) <= 5, [(t / 3600, a.reason[:60]) for t, a, _, _ in st]  # about one per RPO
    for t, a, age, rpo in st:
        assert not a.forced, a.reason
        assert age >= p.min_interval_frac * rpo, (t / 3600, a.reason)
        assert "nothing changed" in a.reason
    assert r.fleet["rpo_compliance_pct"] == 100.0


def numbers(pattern: str, text: str) -> list[tuple[float, ...]]:
    return [tuple(float(x) for x in (m if isinstance(m, tuple) else (m,))) for m in re.findall(pattern, text)]


def assert_reasons_agree(decisions, threshold: float = THRESHOLD) -> int:
    """Every reason agrees with itself and with the action; returns how many were checked."""
    for _, row in decisions.iterrows():
        why = row["reason"]
        assert "nan" not in why.split() and "nan " not in why and " inf h" not in why, why
        for need, have in numbers(r"needs ([0-9.e+-]+) MB/s > ([0-9.e+-]+) MB/s", why):
            assert need > have, why
        for imp, thr in numbers(r"impact ([0-9.]+) <= ([0-9.]+)", why):
            assert imp <= thr + 1e-9, why
        for imp, thr in numbers(r"impact ([0-9.]+) > ([0-9.]+)", why):
            assert imp > thr, why
        for need, avail in numbers(r"need ([0-9.e+-]+) (?:slot-hours|TB of ingest), ([0-9.e+-]+) available", why):
            assert need > avail, why
        if row["action"] == "start":
            assert row["forced"] == why.startswith("forced"), why
            if row["forced"]:
                (imp,) = numbers(r"predicted p\d+ impact ([0-9.]+);", why)[0]
                assert imp > threshold, why
    return len(decisions)


def test_reasons_never_contradict_themselves():
    """A property check over runs that force, throttle, pause, idle and plan on no forecast."""
    heavy = PeriodicLoad(1, [Segment(0.0, 1_000, 10), Segment(4.0, 20_000, 425, 0.6), Segment(10.0, 1_000, 10)], period_h=24.0)
    bursty = PeriodicLoad(1, [Segment(0.0, 1_000, 10), Segment(2.0, 60_000, 480), Segment(2.5, 16_000, 100), Segment(4.5, 1_000, 10)], 24.0)
    runs = [
        run(make_spec(n=1, hours=16, used_gb=1000.0, rpo_h=2.0, rto_h=12.0), heavy, forecasts=TrueFuture(heavy, upper=1.0)),
        run(
            make_spec(n=1, hours=7, used_gb=700.0, rpo_h=8.0),
            bursty,
            forecasts=TrueFuture(bursty, burst=(2.0, 2.5)),
            full_every_h=1.0,
            full_early_h=0.0,
        ),
        run(make_spec(n=1, hours=24, rpo_h=6.0), constant(count=1, tick_s=10.0), forecasts=WrongForecast("saturated")),
        run(
            make_spec(n=3, hours=12, rpo_h=2.0),
            constant(count=3, tick_s=10.0, read_iops=20_000, write_iops=10_000, read_mbps=120, write_mbps=60),
        ),
    ]
    assert runs[0][0].fleet["forced_decisions"] > 0  # the check covers forced starts too
    checked = sum(assert_reasons_agree(r.decisions) for r, _ in runs)
    assert checked > 50


def test_oracle_never_misses_through_pauses_before_a_busy_stretch():
    """Perfect information, ample tiers: no miss. A mostly idle QoS-capped virtual disk whose
    forecast labels small blips as bursts, then a long stretch of load near its cap. A 50 GB
    full fits before that stretch at the rate the threshold allows; pausing through every blip
    (judging the slack on the step after a blip alone) used to push the full into the busy
    stretch, where it crawled on until the restore point was 8 h old. A pause must now leave
    the rest of the job cheaper steps than the burst, and time for it before the deadline."""
    segs = [Segment(0.0, 2.0, 0.05)]
    for k in range(3):
        segs += [Segment(k + 0.5, 6.0, 0.2), Segment(k + 0.95, 2.0, 0.05)]
    segs += [Segment(3.0, 20.0, 56.5), Segment(8.0, 2.0, 0.05)]
    load = PeriodicLoad(1, segs, period_h=24.0)

    class Blips(TrueFuture):
        def update(self, history) -> Forecast:
            fc = super().update(history)
            ph = np.mod((fc.origin_t + (np.arange(fc.horizon) + 0.5) * STEP) / 3600.0, 24.0)
            fc.labels[:, (ph < 3.0) & (np.mod(ph, 1.0) >= 0.5) & (np.mod(ph, 1.0) < 0.95)] = LoadLabel.BURST
            return fc

    spec = SimSpec((VolumeSpec("vm", VDISK, 50e9, 6 * 3600, 4 * 3600),), TIERS, duration_s=10 * 3600, impact_threshold=THRESHOLD)
    r, sched = run(spec, load, "oracle", forecasts=Blips(load, upper=1.0), full_every_h=1.0, full_early_h=0.0)
    assert r.fleet["rpo_compliance_pct"] == 100.0
    assert r.fleet["worst_rp_age_h"] <= 6.0
    full = r.jobs[r.jobs["kind"] == "full"]
    assert len(full) == 1 and full.iloc[0]["complete_t"] <= 3.0 * 3600  # done before the busy stretch


# ----------------------------------------------------------------------------- where & logging


def test_tier_choice_follows_rto_pressure_and_cost():
    load = PeriodicLoad(1, CYCLE, period_h=6.0)
    # relaxed RTO: the cheap HDD tier; tight RTO for a big volume: the fast-restore SSD tier
    r, sched = run(make_spec(n=1, hours=12, rpo_h=8.0, rto_h=8.0), load, forecasts=TrueFuture(load))
    assert {a.tier for _, a, _, _ in starts(sched)} == {1}
    load2 = PeriodicLoad(1, CYCLE, period_h=6.0)
    r2, sched2 = run(
        make_spec(n=1, hours=12, used_gb=600.0, rpo_h=8.0, rto_h=0.35),
        load2,
        forecasts=TrueFuture(load2),
        full_every_h=1.0,
        full_early_h=0.0,
    )
    fulls = [a for _, a, _, _ in starts(sched2) if a.kind == BackupKind.FULL]
    assert fulls and all(a.tier == 0 for a in fulls)
    assert "RTO pressure" in fulls[0].reason


def test_every_decision_names_its_forecast_facts():
    load = PeriodicLoad(1, CYCLE, period_h=6.0)
    r, _ = run(make_spec(n=1, hours=12), load, forecasts=TrueFuture(load))
    d = r.decisions
    assert len(d) >= 1
    for reason in d["reason"]:
        assert "forecast truth" in reason and "deadline in" in reason and "impact" in reason


def test_oracle_is_the_same_policy():
    load = PeriodicLoad(2, CYCLE, period_h=6.0)
    spec = make_spec(n=2, hours=12)
    a, _ = run(spec, load, "predictive", forecasts=TrueFuture(load))
    b, _ = run(spec, load, "oracle", forecasts=TrueFuture(load))
    assert a.jobs[["volume", "kind", "snapshot_t", "complete_t"]].equals(b.jobs[["volume", "kind", "snapshot_t", "complete_t"]])


def test_summary_counts_what_the_policy_did_and_reset_clears_it():
    load = PeriodicLoad(2, CYCLE, period_h=6.0)
    r, sched = run(make_spec(n=2, hours=12), load, forecasts=TrueFuture(load))
    s = sched.inner.summary()
    planned = sum(v for k, v in s.items() if k.startswith("starts_"))
    assert planned == len(starts(sched)) == len(r.jobs) > 0
    assert s["plans"] > 0 and s["planned_volumes"] >= s["plans"]
    assert s["fallback_plans"] <= 1 and s["fallback_starts"] == 0  # the truth comes with the first history step
    assert s["throttles"] + s["pauses"] + s["resumes"] == sum(1 for _, a, _, _ in sched.log if not isinstance(a, Start))
    sched.inner.reset()
    assert set(sched.inner.summary().values()) == {0}
    # without a forecast every plan is a fallback on observed load
    _, blind = run(make_spec(n=2, hours=6), load)
    sb = blind.inner.summary()
    assert sb["fallback_plans"] == sb["plans"] > 0 and sb["fallback_starts"] == len(starts(blind))


# ----------------------------------------------------------------------------- the run's settings


def settings_config(**top) -> object:
    """One SSD volume under constant light load, one tier, the predictive policy with no forecaster."""
    data = {
        "name": "run-settings",
        "duration_h": 2.0,
        "rpo_h": 1.0,
        "rto_h": 1200 / 3600,  # 20 min; a full of 50 GB restores in 100 s at 500 MB/s
        "fleet": [
            {
                "workload": "constant",
                "device": "ssd",
                "used_gb": 50,
                "params": {"read_iops": 2000, "write_iops": 1000, "read_mbps": 20, "write_mbps": 10},
            }
        ],
        "tiers": [{"name": "ssd", "media": "ssd", "ingest_mbps": 2000, "restore_mbps": 500, "slots": 4}],
        "policies": [{"policy": "predictive"}],
        **top,
    }
    return parse_config(data, "run-settings.yaml")


def first_start(cfg):
    result, _ = simulate(plans(cfg)[0])
    d = result.decisions
    return d[d["action"] == "start"].iloc[0]


def test_the_configs_restore_overhead_shapes_the_kind_choice():
    # the chain holds one full: its RTO estimate is 100 s + overhead. An incremental adds one
    # more overhead: with 60 s the estimate stays far under 90 % of the 20 min RTO, with 600 s
    # it would pass it (700 + 600 s > 1080 s), so the policy must take a full instead
    cheap = first_start(settings_config(restore_overhead_s=60.0))
    assert cheap["kind"] == "incremental", cheap["reason"]
    dear = first_start(settings_config(restore_overhead_s=600.0))
    assert dear["kind"] == "full", dear["reason"]
    est = re.search(r"RTO est ([0-9.]+) h > 0\.30 h", dear["reason"])  # against 90 % of 1200 s
    assert est and float(est.group(1)) >= round(1300 / 3600, 2), dear["reason"]  # 700 s + the incremental's 600 s


def test_the_configs_backup_max_util_bounds_forced_rates():
    # no restore point yet: the first full is forced, at the most the device headroom allows
    at = {u: first_start(settings_config(initial_full=False, backup_max_util=u)) for u in (0.95, 0.6)}
    ssd = DEVICE_CLASSES["ssd"]
    for u, st in at.items():
        assert st["forced"] and st["kind"] == "full", st["reason"]
        assert st["rate_mbps"] <= u * ssd.max_mbps + 1e-9
        assert st["rate_mbps"] >= float(rate_for_utilisation(3000.0, 30.0, ssd.max_iops, ssd.max_mbps, u)) - 1e-9
    assert at[0.6]["rate_mbps"] < at[0.95]["rate_mbps"]

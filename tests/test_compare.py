"""`piop compare`: CIs, paired differences, parallel and resumable sweeps, one-line errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from cli_helpers import assert_one_line_error, piop
from scipy import stats as st

from common.errors import UserError
from experiments.compare import compare, parse_seeds
from experiments.config import parse_config
from experiments.stats import paired_differences, summarise, t_ci

ROOT = Path(__file__).resolve().parents[1]


def small_config(**changes) -> dict:
    cfg = {
        "name": "small",
        "seeds": [1, 2],
        "duration_h": 3,
        "fleet": [{"workload": "database", "count": 2, "used_gb": 100, "name": "db-"}],
        "policies": [{"policy": "fixed"}, {"policy": "reactive"}],
    }
    cfg.update(changes)
    return cfg


def write(tmp_path: Path, cfg: dict, name: str = "small.yaml") -> Path:
    p = tmp_path / name
    p.write_text(yaml.safe_dump(cfg))
    return p


# ----------------------------------------------------------------------------- statistics


def test_t_ci_matches_scipy():
    x = [1.0, 2.5, 2.0, 4.0, 3.1]
    ci = t_ci(x, 0.95)
    lo, hi = st.t.interval(0.95, len(x) - 1, loc=np.mean(x), scale=st.sem(x))
    assert ci.mean == pytest.approx(np.mean(x))
    assert (ci.lo, ci.hi) == pytest.approx((lo, hi))
    one = t_ci([3.0])
    assert one.mean == 3.0 and np.isnan(one.lo) and one.n == 1
    flat = t_ci([2.0, 2.0, 2.0])
    assert flat.lo == flat.hi == 2.0


def test_paired_differences_are_paired_by_seed():
    # seeds vary a lot, the policy difference is a constant -1: the paired CI is a point
    runs = pd.DataFrame(
        {
            "policy": ["a"] * 4 + ["b"] * 4,
            "seed": [1, 2, 3, 4, 4, 3, 2, 1],  # b listed in another order
            "m": [10.0, 20.0, 30.0, 40.0, 39.0, 29.0, 19.0, 9.0],
        }
    )
    d = paired_differences(runs, ["m"], "a")
    assert d.loc[0, "diff"] == pytest.approx(-1.0)
    assert d.loc[0, "lo"] == pytest.approx(-1.0) and d.loc[0, "hi"] == pytest.approx(-1.0)
    assert d.loc[0, "n"] == 4
    s = summarise(runs, ["m"]).set_index("policy")
    assert s.loc["a", "m_hi"] - s.loc["a", "m_lo"] > 10  # unpaired intervals are wide


def test_parse_seeds():
    assert parse_seeds("1,2,3") == [1, 2, 3]
    assert parse_seeds("1-4,7") == [1, 2, 3, 4, 7]
    assert parse_seeds(None) is None
    with pytest.raises(UserError, match="--seeds"):
        parse_seeds("1,x")
    with pytest.raises(UserError, match="start after its end"):
        parse_seeds("5-2")


# ----------------------------------------------------------------------------- sweeps


def _mtimes(exp: Path) -> dict[str, int]:
    return {
        d.name: (d / "summary.json").stat().st_mtime_ns
        for d in exp.iterdir()
        if d.is_dir() and not d.name.startswith(".") and (d / "summary.json").exists()
    }


def test_killed_sweep_resumes_without_rerunning_finished(tmp_path):
    """Kill a sweep mid-way: finished runs are complete and a resumed sweep re-runs none of them."""
    cfg_path = write(tmp_path, small_config(seeds=[1, 2, 3], duration_h=4))
    out = tmp_path / "res"
    exp = out / "small"
    proc = subprocess.Popen(
        [sys.executable, "-m", "experiments", "compare", str(cfg_path), "--out", str(out), "-q"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.time() + 60
        while time.time() < deadline and len(_mtimes(exp) if exp.exists() else {}) < 2:
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    before = _mtimes(exp)
    assert 2 <= len(before) < 6, before
    for d in exp.iterdir():  # what is visible is whole
        if d.is_dir() and not d.name.startswith("."):
            assert (d / "summary.json").is_file() and (d / "series.parquet").is_file(), d

    # resume with 2 worker processes through the CLI
    res = piop("compare", cfg_path, "--out", out, "--jobs", 2, "--json", "-q")
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    assert sorted(data["sweep"]["skipped"]) == sorted(before)
    assert len(data["sweep"]["ran"]) == 6 - len(before)
    after = _mtimes(exp)
    assert {k: after[k] for k in before} == before, "a finished run was re-run"
    assert len(after) == 6

    # the tables: every policy, mean within its CI, paired rows against the first policy
    assert [r["policy"] for r in data["summary"]] == ["fixed", "reactive"]
    for r in data["summary"]:
        assert r["n"] == 3
        assert r["impact_io_mean_lo"] <= r["impact_io_mean"] <= r["impact_io_mean_hi"]
    assert data["baseline"] == "fixed"
    assert {r["policy"] for r in data["paired"]} == {"reactive"}
    runs = pd.read_parquet(exp / "compare.parquet")
    assert len(runs) == 6 and set(runs["seed"]) == {1, 2, 3}
    wl = pd.read_parquet(exp / "compare_workloads.parquet")
    assert set(wl["workload"]) == {"database"}

    # a third pass runs nothing
    again = compare(parse_config(yaml.safe_load(cfg_path.read_text())), out)
    assert again.outcome.ran == [] and len(again.outcome.skipped) == 6


def test_changed_settings_rerun_and_baseline(tmp_path):
    out = tmp_path / "res"
    cfg = parse_config(small_config(seeds=[1, 2], duration_h=2, policies=[{"policy": "fixed"}]))
    first = compare(cfg, out)
    assert sorted(first.outcome.ran) == ["fixed-s1", "fixed-s2"]
    # another policy added: the finished fixed runs stay valid
    cfg2 = parse_config(small_config(seeds=[1, 2], duration_h=2))
    second = compare(cfg2, out, baseline="reactive")
    assert sorted(second.outcome.skipped) == ["fixed-s1", "fixed-s2"]
    assert sorted(second.outcome.ran) == ["reactive-s1", "reactive-s2"]
    assert second.baseline == "reactive" and set(second.paired["policy"]) == {"fixed"}
    # a changed duration invalidates them
    third = compare(parse_config(small_config(seeds=[1], duration_h=1, policies=[{"policy": "fixed"}])), out)
    assert third.outcome.ran == ["fixed-s1"] and third.outcome.stale == ["fixed-s1"]


def test_compare_bad_input(tmp_path):
    assert_one_line_error(piop("compare", write(tmp_path, small_config(policies=[]))), "small.yaml", "policies", "at least 1")
    with pytest.raises(UserError, match="--baseline: 'nope' is not one of the compared policies: fixed, reactive"):
        compare(parse_config(small_config()), tmp_path / "r", baseline="nope")
    with pytest.raises(UserError, match="--jobs"):
        compare(parse_config(small_config()), tmp_path / "r", jobs=0)


# ----------------------------------------------------------------------------- pairing


class _PlainPolicy:
    """A third-party policy that subclasses nothing and declares nothing."""

    name = "plain-test-policy"

    def decide(self, ctx):
        return []


def test_forecaster_pairing_follows_scheduler_declarations():
    import schedulers
    from experiments.config import PolicyConfig
    from experiments.runner import forecaster_name, needs_future, reads_forecasts

    schedulers.SCHEDULERS.register("plain-test-policy")(_PlainPolicy)
    try:
        oracle = PolicyConfig(policy="oracle")
        assert forecaster_name(oracle) == "oracle" and reads_forecasts(oracle)  # `default_forecaster` of the class
        assert forecaster_name(PolicyConfig(policy="oracle", forecaster="naive")) == "naive"  # the config's own wins
        predictive = PolicyConfig(policy="predictive")
        assert forecaster_name(predictive) is None and reads_forecasts(predictive)  # `uses_forecasts`, no pairing
        for plain in (PolicyConfig(policy="fixed"), PolicyConfig(policy="plain-test-policy")):
            assert forecaster_name(plain) is None and not reads_forecasts(plain)
    finally:
        schedulers.SCHEDULERS.unregister("plain-test-policy")
    assert needs_future("oracle") and not needs_future("naive")


def test_true_future_is_the_load_the_simulator_records():
    """The oracle's future is the run's own load after the origin, aggregated like the recorder."""
    import workloads
    from experiments.runner import true_future
    from sim.history import history_from_source
    from workloads.base import Offset

    src = workloads.SYNTHETIC.create("database", count=2, tick_s=10.0, seed=3, id_prefix="db-")
    got = true_future(src, 300.0)(3600.0, 12)  # 12 steps of 5 min after 1 h
    h = history_from_source(Offset(src, 360), 300.0, 12)
    want = np.stack([h.iops, h.mbps], axis=-1).astype(np.float64).transpose(1, 0, 2)
    assert got.shape == (2, 12, 2)
    np.testing.assert_array_equal(got, want)
    assert not np.array_equal(got, true_future(src, 300.0)(7200.0, 12))  # another origin, other load

"""`piop tune`: resumable Optuna studies, parallel workers on one SQLite file, the exported
config reproducing its trial, and one-line errors for bad search spaces and storage URLs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import optuna
import pytest
import yaml
from cli_helpers import assert_one_line_error, piop

from common.errors import UserError
from experiments.config import load_config
from experiments.runner import plans, simulate
from experiments.tune import load_tuning, open_storage, pareto_mask, tune

ROOT = Path(__file__).resolve().parents[1]


def make_spec(tmp_path: Path, **changes) -> Path:
    base = {
        "name": "tunetiny",
        "seed": 1,
        "duration_h": 6,
        "fleet": [{"workload": "database", "count": 2, "used_gb": 100, "name": "db-"}],
        "policies": [{"policy": "fixed"}, {"policy": "reactive", "params": {"full_tier": "hdd"}}],
    }
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(base))
    spec = {
        "base": "base.yaml",
        "policy": "reactive",
        "n_trials": 3,
        "sampler": "random",
        "params": {
            "params.backoff": {"low": 0.1, "high": 0.9},
            "params.throttle_impact": {"low": 0.01, "high": 0.5, "log": True},
            "params.incremental_every_h": {"low": 1, "high": 3, "type": "int"},
        },
        "constraints": [{"metric": "rto_compliance_pct", "min": 50}],
    }
    spec.update(changes)
    p = tmp_path / "tune.yaml"
    p.write_text(yaml.safe_dump(spec, sort_keys=False))
    return p


def completed(url: str, study: str) -> list:
    s = optuna.load_study(study_name=study, storage=url)
    return s.get_trials(states=(optuna.trial.TrialState.COMPLETE,))


def test_resumed_study_continues_and_best_config_reproduces(tmp_path):
    spec = make_spec(tmp_path)
    out = tmp_path / "res"
    first = tune(spec, out_root=out)
    url = first.url
    assert url.startswith("sqlite:///") and url.endswith("tunetiny/tune/tunetiny-reactive.db")
    assert [t.number for t in completed(url, "tunetiny-reactive")] == [0, 1, 2]
    assert first.new_trials == 3

    second = tune(spec, trials=5, out_root=out)  # n_trials is the study's total: 2 more
    assert [t.number for t in completed(url, "tunetiny-reactive")] == [0, 1, 2, 3, 4]
    assert second.new_trials == 2
    assert tune(spec, trials=5, out_root=out).new_trials == 0  # nothing left to do

    # the front is non-dominated and feasible; the chosen trial is on it
    front = second.front
    assert not front.empty and front["feasible"].all()
    assert second.chosen["number"] in set(front["number"])
    d = tmp_path / "res" / "tunetiny" / "tune" / "tunetiny-reactive"
    for name in ("trials.parquet", "pareto.parquet", "pareto.png", "best.yaml", "best.json", "summary.json"):
        assert (d / name).is_file(), name
    assert (d / "pareto.png").read_bytes()[:4] == b"\x89PNG"
    summary = json.loads((d / "summary.json").read_text())
    assert summary["n_trials"] == 5 and summary["untuned"]["impact_io_mean"] > 0
    assert {i["metric"] for i in summary["improvement"]} == {"impact_io_mean", "rpo_violation_pct"}

    # the exported config runs and reproduces the chosen trial's objectives
    best = load_config(d / "best.yaml")
    assert [p.label for p in best.policies] == ["reactive", "reactive-tuned"]
    assert best.duration_h == 6 and best.seed_list == [1]
    (plan,) = plans(best, ["reactive-tuned"])
    result, _ = simulate(plan)
    chosen = second.chosen["objectives"]
    assert result.fleet["impact_io_mean"] == pytest.approx(chosen["impact_io_mean"], rel=1e-9, abs=1e-12)
    assert 100.0 - result.fleet["rpo_compliance_pct"] == pytest.approx(chosen["rpo_violation_pct"], abs=1e-9)


def test_two_processes_on_one_sqlite_study_both_record_trials(tmp_path):
    spec = make_spec(tmp_path)
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    proc = piop("tune", spec, "--trials", 6, "--jobs", 2, "--storage", url, "--study", "shared", "--out", tmp_path / "res", "--json", "-q")
    assert proc.returncode == 0, proc.stderr
    trials = completed(url, "shared")
    assert len(trials) == 6
    workers = {t.user_attrs["worker"] for t in trials}
    assert len(workers) == 2, workers  # two processes, each recorded its own trials
    data = json.loads(proc.stdout)
    assert data["n_trials"] == 6 and data["chosen"] is not None


def test_pareto_mask():
    v = np.array([[1.0, 5.0], [2.0, 2.0], [3.0, 3.0], [5.0, 1.0], [1.0, 5.0]])
    assert pareto_mask(v, ["minimize", "minimize"]).tolist() == [True, True, False, True, True]
    assert pareto_mask(v, ["minimize", "maximize"]).tolist() == [True, False, False, False, True]


def test_bad_search_space(tmp_path):
    spec = make_spec(tmp_path, params={"params.backoff": {"low": 0.9, "high": 0.1}})
    with pytest.raises(UserError, match=r"params\.backoff.*low \(0\.9\) is above high \(0\.1\)"):
        load_tuning(spec)
    assert_one_line_error(piop("tune", spec), "tune.yaml", "params.backoff", "above high")
    # unknown setting of the policy: named, before any trial
    spec = make_spec(tmp_path, params={"params.speed": {"low": 1, "high": 2}})
    with pytest.raises(UserError, match="speed"):
        load_tuning(spec)
    spec = make_spec(tmp_path, params={"colour": {"low": 1, "high": 2}})
    with pytest.raises(UserError, match="colour"):
        load_tuning(spec)
    spec = make_spec(tmp_path, params={"params.backoff": {"low": 0, "high": 1, "log": True}})
    with pytest.raises(UserError, match="log"):
        load_tuning(spec)
    spec = make_spec(tmp_path, policy="oracle")
    with pytest.raises(UserError, match="'oracle' is not in"):
        load_tuning(spec)


def test_unreachable_storage(tmp_path):
    spec = make_spec(tmp_path)
    assert_one_line_error(
        piop("tune", spec, "--storage", "postgresql://piop:s3cret@127.0.0.1:9/nope", "--out", tmp_path / "r"),
        "storage",
        "postgresql://piop:***@127.0.0.1:9/nope",
    )
    with pytest.raises(UserError, match="no/such/folder"):
        open_storage(f"sqlite:///{tmp_path}/no/such/folder/x.db")
    with pytest.raises(UserError, match="not a storage URL"):
        open_storage("results/x.db")
    with pytest.raises(UserError, match="unreachable|driver"):
        open_storage("mysql://u@127.0.0.1:9/x")
    # a scheme no storage takes, and a driver that is not installed: one line each, before any trial
    assert_one_line_error(
        piop("tune", spec, "--storage", "mongodb://h/db", "--out", tmp_path / "r"), "unknown kind 'mongodb'", "journal:PATH"
    )
    assert_one_line_error(
        piop("tune", spec, "--storage", "postgresql+nosuchdriver://u@127.0.0.1:9/x", "--out", tmp_path / "r"),
        "knows no 'postgresql+nosuchdriver'",
    )
    with pytest.raises(UserError, match=r"driver is not installed.*pip install pg8000"):
        open_storage("postgresql+pg8000://u@127.0.0.1:9/x")  # pg8000 is not a dependency
    with pytest.raises(UserError, match="journal.*no/such/folder"):
        open_storage(f"journal:{tmp_path}/no/such/folder/x.log")

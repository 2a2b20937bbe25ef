"""Bad input is refused when it is read, as one line naming the file and the field, exit 2:
every part of a config (forecaster and retraining settings, tuning objectives included),
YAML keys given twice, impossible RPOs, binary files, runs too short or too large."""

from __future__ import annotations

import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from cli_helpers import ROOT, assert_one_line_error, piop

CONSTANT = {"read_iops": 500, "write_iops": 100, "read_mbps": 10, "write_mbps": 5}


def write_config(tmp_path: Path, name: str = "cfg", **changes) -> Path:
    cfg = {
        "name": "hard",
        "duration_h": 2,
        "seed": 1,
        "fleet": [{"workload": "constant", "count": 2, "params": CONSTANT}],
        "policies": [{"policy": "fixed"}, {"policy": "predictive", "forecaster": "seasonal_naive"}],
    }
    cfg.update(changes)
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def piop_capped(*args, gib: int = 6):
    """`piop ARGS` with its address space capped: a run that does try to allocate hundreds
    of GiB fails in the child instead of taking the machine's memory."""

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (gib << 30, gib << 30))

    return subprocess.run(
        [sys.executable, "-m", "experiments", *map(str, args)], capture_output=True, text=True, cwd=ROOT, preexec_fn=cap, timeout=300
    )


def no_runs_written(out: Path) -> bool:
    return not (out / "hard").exists() or not any((out / "hard").iterdir())


@pytest.mark.parametrize(
    "policy, field, needle",
    [
        (
            {"policy": "predictive", "forecaster": "seasonal_naive", "forecaster_params": {"sesaon": "weekly"}},
            "forecaster_params",
            "sesaon",
        ),
        ({"policy": "predictive", "forecaster": "seasonal_naive", "retrain": {"evry_hours": 3}}, "retrain", "evry_hours"),
        ({"policy": "predictive", "forecaster": "seasonal_naive", "retrain": {"every_hours": "daily"}}, "retrain.every_hours", "daily"),
    ],
)
def test_forecasting_settings_are_checked_when_the_config_is_read(tmp_path, policy, field, needle):
    cfg = write_config(tmp_path, policies=[{"policy": "fixed"}, policy])
    out = tmp_path / "r"
    proc = piop("compare", cfg, "--out", out, "-q")
    assert_one_line_error(proc, "cfg.yaml", f"policies.1.{field}", needle)
    assert no_runs_written(out), "the first policy's runs must not be written before the mistake is found"


def test_unknown_tuning_objective_fails_before_the_study_exists(tmp_path):
    base = write_config(tmp_path, policies=[{"policy": "fixed"}])
    spec = tmp_path / "tune.yaml"
    spec.write_text(
        yaml.safe_dump(
            {
                "base": str(base),
                "policy": "fixed",
                "n_trials": 2,
                "params": {"params.stagger_s": {"low": 0, "high": 60}},
                "objectives": [{"metric": "impact_io_meen"}],
            }
        )
    )
    out = tmp_path / "r"
    proc = piop("tune", spec, "--out", out, "-q")
    assert_one_line_error(proc, "tune.yaml", "objectives.0.metric", "impact_io_meen", "impact_io_mean")
    assert not list(out.rglob("*.db")), "no study may be stored with a mistaken objective"


def test_duplicate_yaml_key_names_its_line(tmp_path):
    path = tmp_path / "dup.yaml"
    path.write_text("name: hard\nduration_h: 2\nfleet:\n  - {workload: constant, count: 2}\npolicies:\n  - policy: fixed\nduration_h: 4\n")
    assert_one_line_error(piop("run", path), "dup.yaml", "line 7", "duplicate key 'duration_h'", "line 2")


def test_rpo_shorter_than_a_full_backup_is_refused(tmp_path):
    fleet = [{"workload": "fileserver", "count": 1, "used_gb": 1000, "device": "san", "rpo_h": 0.01}]
    assert_one_line_error(piop("run", write_config(tmp_path, fleet=fleet)), "cfg.yaml", "fleet.0.rpo_h", "impossible", "full backup")


def test_binary_config(tmp_path):
    path = tmp_path / "bin.yaml"
    path.write_bytes(bytes(range(256)) * 4)
    assert_one_line_error(piop("run", path), "bin.yaml", "not a text file")


def test_duration_under_one_tick(tmp_path):
    assert_one_line_error(piop("run", write_config(tmp_path, duration_h=0.001)), "cfg.yaml", "duration_h", "shorter than")


@pytest.mark.parametrize(
    "changes",
    [
        {"fleet": [{"workload": "constant", "count": 10_000_000, "params": CONSTANT}]},
        {"duration_h": 1e9},
    ],
)
def test_runs_too_large_for_memory_are_refused_at_once(tmp_path, changes):
    t0 = time.perf_counter()
    proc = piop_capped("run", write_config(tmp_path, **changes), "--out", tmp_path / "r")
    assert_one_line_error(proc, "cfg.yaml", "GiB of memory")
    assert time.perf_counter() - t0 < 60


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--volumes", "0"], "--volumes"),
        (["--days", "-1"], "--days"),
        (["--volumes", "10000000"], "GiB of memory"),
    ],
)
def test_bench_options(args, needle):
    assert_one_line_error(piop_capped("bench", *args), needle)

"""Ctrl-C: one line saying what was kept and how to resume, exit 130, no worker left, nothing
half-written; a tuning trial interrupted or killed with its process ends up FAIL, never
RUNNING in a study that goes on."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import yaml
from cli_helpers import ROOT


def write_config(tmp_path: Path, duration_h: float, seeds: list[int]) -> Path:
    cfg = {
        "name": "intr",
        "duration_h": duration_h,
        "seeds": seeds,
        "fleet": [{"workload": "constant", "count": 2, "params": {"read_iops": 500, "write_iops": 100, "read_mbps": 10, "write_mbps": 5}}],
        "policies": [{"policy": "fixed"}, {"policy": "reactive"}],
    }
    path = tmp_path / "intr.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def interrupt(args: list, after_s: float, sig: int = signal.SIGINT) -> tuple[subprocess.CompletedProcess, list[psutil.Process]]:
    """Start `piop ARGS`, send `sig` to it (the parent only) after `after_s`, wait for it."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "experiments", *map(str, args)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    time.sleep(after_s)
    children = psutil.Process(proc.pid).children(recursive=True)
    os.kill(proc.pid, sig)
    try:
        out, err = proc.communicate(timeout=90)
    finally:
        proc.kill()
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err), children


def assert_interrupted(proc: subprocess.CompletedProcess, *needles: str) -> str:
    assert proc.returncode == 130, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("interrupted: "), proc.stderr
    for n in needles:
        assert n in lines[0], lines[0]
    return lines[0]


def leftovers(folder: Path) -> list[str]:
    return sorted(str(p) for p in folder.rglob(".*"))


def finished_runs(folder: Path) -> int:
    return sum(1 for d in folder.glob("*-s*") if (d / "summary.json").is_file())


@pytest.mark.parametrize("jobs", [1, 2])
def test_compare_interrupted(tmp_path, jobs):
    out = tmp_path / "r"
    proc, children = interrupt(["compare", write_config(tmp_path, 600, [1, 2]), "--jobs", jobs, "--out", out, "-q"], after_s=10)
    line = assert_interrupted(proc, "of 4 runs kept in", str(out / "intr"), "run the same command to resume")
    kept = int(re.search(r"(\d+) of 4 runs kept", line).group(1))
    assert kept == finished_runs(out / "intr")
    _, alive = psutil.wait_procs(children, timeout=10)
    assert not alive, "workers outlived the interrupted command"
    assert leftovers(out) == []


def test_run_interrupted(tmp_path):
    out = tmp_path / "r"
    proc, _ = interrupt(["run", write_config(tmp_path, 1200, [1]), "--out", out, "-q"], after_s=8)
    line = assert_interrupted(proc, "of 2 runs kept in", "discarded")
    kept = int(re.search(r"(\d+) of 2 runs kept", line).group(1))
    # how far it got depends on the machine; what it says it kept is what is on disk, and the run in progress is not
    assert kept < 2 and kept == finished_runs(out / "intr")
    assert leftovers(out) == []


def trial_states(db: Path) -> list[str]:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.load_study(study_name="intr-fixed", storage=f"sqlite:///{db}")
    return [t.state.name for t in study.trials]


def tune_spec(tmp_path: Path, n_trials: int) -> Path:
    spec = tmp_path / "tune.yaml"
    spec.write_text(
        yaml.safe_dump(
            {
                "base": str(write_config(tmp_path, 300, [1])),
                "policy": "fixed",
                "n_trials": n_trials,
                "params": {"params.stagger_s": {"low": 0, "high": 60}},
            }
        )
    )
    return spec


def test_tune_interrupted_fails_the_trial_in_flight(tmp_path):
    out = tmp_path / "r"
    proc, _ = interrupt(["tune", tune_spec(tmp_path, 40), "--out", out, "-q"], after_s=15)
    assert_interrupted(proc, "trials complete in study 'intr-fixed'", "run the same command to resume")
    states = trial_states(out / "intr" / "tune" / "intr-fixed.db")
    assert states and states[-1] == "FAIL" and "RUNNING" not in states, states


def test_tune_resumed_after_a_kill_fails_the_stale_trial(tmp_path):
    out = tmp_path / "r"
    spec = tune_spec(tmp_path, 40)
    interrupt(["tune", spec, "--out", out, "-q"], after_s=15, sig=signal.SIGKILL)
    db = out / "intr" / "tune" / "intr-fixed.db"
    before = trial_states(db)
    assert before[-1] == "RUNNING", before  # killed mid-trial
    done = before.count("COMPLETE")
    proc = subprocess.run(
        [sys.executable, "-m", "experiments", "tune", str(spec), "--out", str(out), "-q", "--trials", str(done + 1)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    after = trial_states(db)
    assert after[len(before) - 1] == "FAIL" and "RUNNING" not in after, after


def test_an_interrupt_clears_what_a_killed_worker_left_but_not_a_run_held_elsewhere(tmp_path):
    """A worker killed after `stop_workers`' grace leaves its run's lock file and temporary folder:
    the interrupted sweep removes them, but never those of a run another process holds."""
    from common.locks import try_lock
    from experiments.config import load_config
    from experiments.results import temp_folders
    from experiments.runner import lock_path, plans
    from experiments.sweep import clear_leftovers, run_dir

    out = tmp_path / "r"
    todo = plans(load_config(write_config(tmp_path, 1, [1])))
    dirs = [run_dir(out, p) for p in todo]
    for d in dirs:
        d.parent.mkdir(parents=True, exist_ok=True)
        lock_path(d).touch()
        (d.parent / f".{d.name}.tmp-x1").mkdir()
        (d.parent / f".{d.name}.tmp-x1" / "jobs.parquet").write_bytes(b"half")
    held = try_lock(lock_path(dirs[1]))
    assert held is not None
    try:
        clear_leftovers(todo, out)
        assert not lock_path(dirs[0]).exists() and temp_folders(dirs[0]) == []
        assert lock_path(dirs[1]).exists() and len(temp_folders(dirs[1])) == 1
    finally:
        held.release()
    clear_leftovers(todo, out)
    assert leftovers(out) == []

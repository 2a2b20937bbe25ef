"""Two `piop compare` on one results folder share the work: each run is simulated and
written by exactly one of them, the other reports it "running elsewhere" or finds it
finished, and `compare.json` is whole and lists every run once both are done."""

from __future__ import annotations

import json
import subprocess
import sys

import yaml
from cli_helpers import ROOT


def test_two_compares_on_one_folder_never_redo_a_run(tmp_path):
    cfg = {
        "name": "shared",
        "duration_h": 24,
        "seeds": [1, 2, 3],
        "fleet": [{"workload": "constant", "count": 2, "params": {"read_iops": 500, "write_iops": 100, "read_mbps": 10, "write_mbps": 5}}],
        "policies": [{"policy": "fixed"}, {"policy": "reactive"}],
    }
    path = tmp_path / "shared.yaml"
    path.write_text(yaml.safe_dump(cfg))
    out = tmp_path / "r"
    cmd = [sys.executable, "-m", "experiments", "compare", str(path), "--out", str(out), "--json", "-q"]
    procs = [subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [p.communicate(timeout=600) for p in procs]
    for p, (_, err) in zip(procs, results, strict=True):
        assert p.returncode == 0, err
    sweeps = [json.loads(stdout)["sweep"] for stdout, _ in results]
    ran = [set(s["ran"]) for s in sweeps]
    everything = {f"{p}-s{s}" for p in ("fixed", "reactive") for s in (1, 2, 3)}
    assert not (ran[0] & ran[1]), f"runs simulated twice: {sorted(ran[0] & ran[1])}"
    assert ran[0] | ran[1] == everything
    for mine, s in zip(ran, sweeps, strict=True):  # what one did not run, it found running elsewhere or finished
        assert set(s["elsewhere"]) | set(s["skipped"]) == everything - mine
    final = json.loads((out / "shared" / "compare.json").read_text())
    assert {r["run"] for r in final["runs"]} == everything
    assert not list((out / "shared").glob(".*")), "no lock or temporary file left behind"


def test_run_lock_is_exclusive_and_a_killed_holders_file_is_removed(tmp_path):
    from common.locks import remove_stale, try_lock

    path = tmp_path / ".run.lock"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from common.locks import try_lock; "
            f"lock = try_lock({str(path)!r}); print(lock is not None, flush=True); time.sleep(60)",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "True"
        assert try_lock(path) is None  # held by the other process
        assert not remove_stale(path) and path.exists()
    finally:
        holder.kill()
        holder.wait()
    assert remove_stale(path) and not path.exists()  # the killed holder's file
    with try_lock(path) as lock:
        assert lock is not None and path.exists()
    assert not path.exists()

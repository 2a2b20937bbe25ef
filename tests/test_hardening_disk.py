"""A read-only or full output disk: one line naming the path and the reason, exit 2, found
before the work (or at the first write), and nothing half-written left behind.

The disks are real: a read-only tmpfs and a 64 KiB tmpfs mounted for the test (root
ignores file permissions, so chmod cannot make a read-only folder). Where mounting is
not allowed the tests are skipped with the reason.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest
import yaml
from cli_helpers import assert_one_line_error, piop


def tiny_config(tmp_path: Path, name: str = "tiny", duration_h: float = 2.0) -> Path:
    cfg = {
        "name": name,
        "duration_h": duration_h,
        "seed": 1,
        "fleet": [{"workload": "constant", "count": 2, "params": {"read_iops": 500, "write_iops": 100, "read_mbps": 10, "write_mbps": 5}}],
        "policies": [{"policy": "fixed"}, {"policy": "reactive"}],
    }
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.fixture
def tmpfs(tmp_path):
    """`tmpfs(name, options)`: a tmpfs mounted at tmp_path/name (unmounted afterwards)."""
    mounted: list[Path] = []

    def mount(name: str, options: str) -> Path:
        where = tmp_path / name
        where.mkdir()
        proc = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], capture_output=True, text=True)
        if proc.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here ({proc.stderr.strip() or proc.returncode})")
        mounted.append(where)
        return where

    yield mount
    for where in mounted:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


def leftovers(folder: Path) -> list[str]:
    """Temporary or half-written things under `folder`: hidden names and empty files."""
    return sorted(str(p) for p in folder.rglob("*") if p.name.startswith(".") or (p.is_file() and p.stat().st_size == 0))


def test_run_on_read_only_disk(tmp_path, tmpfs):
    ro = tmpfs("ro", "ro")
    proc = piop("run", tiny_config(tmp_path), "--out", ro)
    assert_one_line_error(proc, str(ro / "tiny"), "read-only")
    assert not list(ro.iterdir())


def test_run_on_full_disk_names_the_run(tmp_path, tmpfs):
    full = tmpfs("full", "size=64k")
    proc = piop("run", tiny_config(tmp_path), "--out", full, "-q")
    assert_one_line_error(proc, str(full / "tiny" / "fixed-s1"), "No space left on device")
    assert leftovers(full) == []


def test_compare_on_read_only_disk_fails_before_any_run(tmp_path, tmpfs):
    ro = tmpfs("ro", "ro")
    t0 = time.perf_counter()
    proc = piop("compare", tiny_config(tmp_path), "--out", ro, "--seeds", "1-3")  # progress on: no run may start
    assert_one_line_error(proc, str(ro / "tiny"), "read-only")
    assert time.perf_counter() - t0 < 60


def test_compare_on_full_disk_stops_at_the_first_write(tmp_path, tmpfs):
    full = tmpfs("full", "size=64k")
    proc = piop("compare", tiny_config(tmp_path), "--out", full, "--seeds", "1-3", "--jobs", "2", "-q")
    # one line: not a "failed" line per run after every run was simulated
    assert_one_line_error(proc, str(full / "tiny"), "No space left on device")
    assert leftovers(full) == []


def test_tune_on_read_only_disk(tmp_path, tmpfs):
    ro = tmpfs("ro", "ro")
    base = tiny_config(tmp_path)
    spec = tmp_path / "tune.yaml"
    spec.write_text(
        yaml.safe_dump({"base": str(base), "policy": "fixed", "n_trials": 2, "params": {"params.stagger_s": {"low": 0, "high": 60}}})
    )
    proc = piop("tune", spec, "--out", ro, "-q")
    assert_one_line_error(proc, str(ro / "tiny" / "tune"), "read-only")


def test_tune_on_full_disk_leaves_no_half_written_study(tmp_path, tmpfs):
    full = tmpfs("full", "size=64k")
    base = tiny_config(tmp_path)
    spec = tmp_path / "tune.yaml"
    spec.write_text(
        yaml.safe_dump({"base": str(base), "policy": "fixed", "n_trials": 2, "params": {"params.stagger_s": {"low": 0, "high": 60}}})
    )
    proc = piop("tune", spec, "--out", full, "-q")
    assert_one_line_error(proc, "tiny-fixed.db", "disk is full")
    assert not list(full.rglob("*.db")) and leftovers(full) == []


def test_backtest_on_read_only_disk_fails_before_the_work(tmp_path, tmpfs):
    ro = tmpfs("ro", "ro")
    proc = piop("forecast", "backtest", "--synthetic", "vm", "--count", "2", "-f", "naive", "--out", ro, "-q")
    # found by the check before the backtest (which says "cannot write there"), not by the first write after it
    assert_one_line_error(proc, str(ro), "cannot write there", "read-only")

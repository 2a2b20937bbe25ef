"""`piop calibrate` on this machine's own disk (short rungs), and its bad input.

The calibration test runs fio for real on a file of a real block device and prints the
figures; it skips with the reason where fio or such a folder is missing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from cli_helpers import ROOT

from host.blockdev import device_of_path
from sim.curve import LatencyCurve
from sim.devices import DeviceClass


def host_cli(*args, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "host", *map(str, args)], capture_output=True, text=True, cwd=ROOT, env=env)


def assert_one_line_error(proc, *needles):
    assert proc.returncode == 2, proc.stderr + proc.stdout
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    for n in needles:
        assert n in lines[0], lines[0]


def block_folder(tmp_path: Path) -> Path:
    for folder in (tmp_path, ROOT / ".cache"):
        folder.mkdir(parents=True, exist_ok=True)
        if device_of_path(folder)[0]:
            return folder
    pytest.skip(f"no folder on a real block device: {device_of_path(tmp_path)[1]}")


@pytest.mark.slow
def test_calibrate_this_machines_disk_with_short_rungs(tmp_path):
    if not shutil.which("fio"):
        pytest.skip("fio is not installed (.ci/run installs it)")
    folder = block_folder(tmp_path)
    target = folder / "piop-calibrate.dat"
    out = tmp_path / "out"
    proc = host_cli("calibrate", target, "--size", "256MiB", "--rungs", 6, "--rung-s", 2, "--ramp-s", 1, "--name", "this-disk",
                    "--out", out, "--json")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert not target.exists()  # the laid-out test file is removed
    data = json.loads(proc.stdout)
    entry = yaml.safe_load((out / "device.yaml").read_text())
    assert entry["name"] == "this-disk" and entry["max_iops"] > 0 and entry["max_mbps"] > 0 and entry["base_latency_ms"] > 0
    dev = DeviceClass(**{k: entry[k] for k in ("name", "max_iops", "max_mbps", "base_latency_ms")})
    curve = LatencyCurve.from_dict(entry["curve"], dev.max_iops, dev.max_mbps)
    cal = entry["calibration"]
    rungs = cal["rungs"]
    assert len(rungs) == 6 and rungs[0]["bg_mbps"] == 0 and rungs[-1]["bg_target_mbps"] is None
    assert all(r["fg_mean_ms"] > 0 and r["fg_p99_ms"] >= r["fg_mean_ms"] * 0.5 for r in rungs)
    # the limited rungs ran at the rate asked (fio's own throttle), the last one took what it could
    for r in rungs[1:-1]:
        assert r["bg_mbps"] <= r["bg_target_mbps"] * 1.1
    fe = cal["fit_error"]
    for model in ("mm1", "curve"):
        assert len(fe[model]["leave_one_out"]["per_rung_pct"]) == 6 and fe[model]["leave_one_out"]["mape_pct"] >= 0
    assert curve.latency_of_utilisation(0.0) > 0 and (out / "latency.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in (out / "fio").iterdir())[:2] == ["probe_iops.json", "probe_mbps.json"]
    print(
        f"\n{cal['device']} (direct I/O {cal['direct_io']}): max {entry['max_mbps']:.0f} MB/s, {entry['max_iops']:,.0f} IOPS, "
        f"base {entry['base_latency_ms']:.3f} ms; LOO MAPE M/M/1 {fe['mm1']['leave_one_out']['mape_pct']:.0f} %, "
        f"curve {fe['curve']['leave_one_out']['mape_pct']:.0f} %"
    )
    for r in rungs:
        print(f"  bg {r['bg_mbps']:8.1f} MB/s  fg mean {r['fg_mean_ms']:8.3f} ms  p99 {r['fg_p99_ms']:8.3f} ms  u {r['u']:.3f}")
    assert data["name"] == "this-disk" and Path(data["files"]["png"]) == out / "latency.png"


def test_fio_missing_is_one_line_and_leaves_nothing(tmp_path):
    folder = block_folder(tmp_path)
    target = folder / "never.dat"
    env = {**os.environ, "PATH": str(tmp_path / "empty-bin")}
    proc = host_cli("calibrate", target, "--out", tmp_path / "out", env=env)
    assert_one_line_error(proc, "fio", "not found")
    assert not target.exists() and not (tmp_path / "out").exists()


def test_target_not_on_a_block_device_or_read_only(tmp_path):
    assert_one_line_error(host_cli("calibrate", "/proc/piop-test.dat", "--out", tmp_path / "o"), "/proc/piop-test.dat", "proc")
    assert not (tmp_path / "o").exists()
    src, ro = tmp_path / "src", tmp_path / "ro"
    src.mkdir()
    ro.mkdir()
    mounted = subprocess.run(["mount", "--bind", "-o", "ro", str(src), str(ro)], capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot make a read-only bind mount here (needs root): {mounted.stderr.strip()}")
    try:
        if device_of_path(ro)[0] is None:
            pytest.skip(f"{ro} is not on a block device: {device_of_path(ro)[1]}")
        assert_one_line_error(host_cli("calibrate", ro / "x.dat", "--out", tmp_path / "o"), "read-only file system")
        assert list(ro.iterdir()) == [] and not (tmp_path / "o").exists()
    finally:
        subprocess.run(["umount", str(ro)], check=False)


def test_other_bad_calibrate_input(tmp_path):
    folder = block_folder(tmp_path)
    dev = device_of_path(folder)[0]
    if Path(f"/dev/{dev}").exists():
        assert_one_line_error(host_cli("calibrate", f"/dev/{dev}"), "block device", "--block-device")
    assert_one_line_error(host_cli("calibrate", folder / "x.dat", "--block-device"), "no such block device")
    assert_one_line_error(host_cli("calibrate", folder, "--out", tmp_path / "o"), "is a folder")
    assert_one_line_error(host_cli("calibrate", folder / "x.dat", "--fg-rw", "randwrite"), "--fg-rw", "never writes")
    assert_one_line_error(host_cli("calibrate", folder / "x.dat", "--size", "lots"), "--size", "not a size")
    assert_one_line_error(host_cli("calibrate", folder / "x.dat", "--rungs", 2), "--rungs")
    assert_one_line_error(host_cli("calibrate", tmp_path / "nope" / "x.dat"), "does not exist")
    assert not (folder / "x.dat").exists()

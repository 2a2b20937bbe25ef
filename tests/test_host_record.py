"""`piop record` on this host: a known fio write rate, kill -9 and restart, bad input.

Real-host tests: they read this machine's /proc/diskstats and run fio on a file of a
real block device; each skips with its reason where that is impossible here.
"""

from __future__ import annotations

import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cli_helpers import ROOT

from host.blockdev import device_of_path

MIB = 1 << 20


def host_cli(*args, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "host", *map(str, args)], capture_output=True, text=True, cwd=ROOT, **kw)


def start_recorder(*args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "host", "record", *map(str, args)], cwd=ROOT, stderr=subprocess.PIPE, text=True)


def assert_one_line_error(proc, *needles):
    assert proc.returncode == 2, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    for n in needles:
        assert n in lines[0], lines[0]


def block_folder(tmp_path: Path) -> tuple[Path, str]:
    """A folder on a real block device (pytest's tmp, else under the repository) and its device."""
    if not Path("/proc/diskstats").exists():
        pytest.skip("no /proc/diskstats (not Linux)")
    reasons = []
    for folder in (tmp_path, ROOT / ".cache"):
        folder.mkdir(parents=True, exist_ok=True)
        dev, how = device_of_path(folder)
        if dev:
            return folder, dev
        reasons.append(how)
    pytest.skip("no folder on a real block device: " + "; ".join(reasons))


def rows(store: Path, device: str) -> list[tuple[float, float, float]]:
    with sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=10) as con:
        return con.execute("SELECT t, dt, write_mbps FROM samples WHERE device = ? ORDER BY t", (device,)).fetchall()


def wait_rows(store: Path, device: str, n: int, timeout: float = 30.0) -> None:
    end = time.time() + timeout
    while time.time() < end:
        try:
            if store.exists() and len(rows(store, device)) >= n:
                return
        except sqlite3.OperationalError:
            pass  # not created yet
        time.sleep(0.05)
    raise AssertionError(f"{store}: fewer than {n} samples after {timeout} s")


@pytest.mark.slow
def test_record_measures_a_known_fio_write_rate_within_10_percent(tmp_path):
    fio = shutil.which("fio")
    if not fio:
        pytest.skip("fio is not installed (.ci/run installs it)")
    folder, dev = block_folder(tmp_path)
    store = tmp_path / "rate.piop"
    data = folder / "piop-record-test.dat"
    rec = start_recorder(store, "--device", dev, "--interval", 1.0)
    try:
        wait_rows(store, dev, 1)
        t0 = time.time()
        run = subprocess.run(
            [fio, "--name=w", f"--filename={data}", "--rw=write", "--bs=1M", "--direct=1", "--ioengine=libaio", "--iodepth=4",
             "--size=512M", f"--rate={20 * MIB}", "--runtime=9", "--time_based", "--output-format=json"],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        t1 = time.time()
        assert run.returncode == 0, run.stderr
        wait_rows(store, dev, len(rows(store, dev)) + 1)
    finally:
        rec.send_signal(signal.SIGTERM)
        rec.wait(timeout=30)
        data.unlink(missing_ok=True)
    inside = [w for t, dt, w in rows(store, dev) if t - dt >= t0 + 1.0 and t <= t1 - 0.5]
    assert len(inside) >= 4, inside
    inside.sort()
    median = inside[len(inside) // 2]
    expected = 20 * MIB / 1e6  # fio's rate is bytes/s; the store's MB/s are 10**6 bytes
    print(f"\n{dev}: fio writes {expected:.2f} MB/s; recorded per 1 s interval {[round(x, 2) for x in inside]} (median {median:.2f})")
    assert median == pytest.approx(expected, rel=0.10)


@pytest.mark.slow
def test_sigkill_then_restart_leaves_no_gap_and_no_duplicate(tmp_path):
    folder, dev = block_folder(tmp_path)
    store = tmp_path / "kill.piop"
    iv = 0.2
    first = start_recorder(store, "--device", dev, "--interval", iv)
    wait_rows(store, dev, 8)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    killed_at = time.time()
    before = rows(store, dev)
    launched = time.time()
    second = start_recorder(store, "--device", dev, "--interval", iv)
    try:
        wait_rows(store, dev, len(before) + 8)
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(timeout=30)
    after = rows(store, dev)
    with sqlite3.connect(store) as con:
        started = [t for (t,) in con.execute("SELECT t FROM events WHERE kind = 'start' ORDER BY t")]
        host_t = [t for (t,) in con.execute("SELECT t FROM host ORDER BY t")]
    t = [r[0] for r in after]
    assert after[: len(before)] == before  # nothing committed before the kill was lost or changed
    assert len(set(t)) == len(t) and t == sorted(t) and len(set(host_t)) == len(host_t)
    # every interval starts where the previous one ended: no time is uncovered, even across the kill
    for (t_prev, _, _), (t_i, dt_i, _) in zip(after, after[1:]):
        assert t_i - dt_i == pytest.approx(t_prev, abs=1e-5)
    # the kill lost at most the sample in flight
    assert killed_at - before[-1][0] <= 2 * iv + 0.1
    gaps = [b - a for a, b in zip(t, t[1:])]
    restart_gap = t[len(before)] - t[len(before) - 1]
    startup = started[-1] - launched  # interpreter and imports of the restarted process
    first_after = t[len(before)] - started[-1]
    print(f"\nspacing: max {max(gaps[: len(before) - 1]):.3f} s before the kill; across the kill {restart_gap:.3f} s "
          f"(restarted process ready {startup:.3f} s after launch, first sample {first_after:.3f} s later)")  # fmt: skip
    assert max(g for i, g in enumerate(gaps) if i != len(before) - 1) <= 2 * iv
    assert first_after <= iv + 0.1  # once running, the restarted recorder samples within one interval
    assert restart_gap <= 2 * iv + startup


def test_record_bad_input_one_line_and_nothing_left(tmp_path):
    store = tmp_path / "s.piop"
    assert_one_line_error(host_cli("record", store, "--device", "nosuchdisk0", "--duration", 0), "nosuchdisk0", "no such block device")
    assert_one_line_error(host_cli("record", store, "--interval", 0, "--duration", 0), "--interval")
    assert_one_line_error(host_cli("record", store, "--kind", "vda", "--duration", 0), "--kind", "DEVICE=VALUE")
    assert_one_line_error(host_cli("record", tmp_path / "no" / "such" / "s.piop", "--duration", 0), "does not exist")
    assert list(tmp_path.iterdir()) == []
    text = tmp_path / "notes.txt"
    text.write_text("hello\n")
    assert_one_line_error(host_cli("record", text, "--duration", 0), "not a piop store")
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as con:
        con.execute("CREATE TABLE t(x)")
    before = other.read_bytes()
    assert_one_line_error(host_cli("record", other, "--duration", 0), "not a piop store")
    assert other.read_bytes() == before and text.read_text() == "hello\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt", "other.db"]  # no -wal / -shm beside them

"""Cost of `piop record`: CPU % of one core and peak RSS at a 10 s interval on 4 devices.

Runs the recorder as a user would (`python -m host record STORE -d ... --interval 10`)
for `--minutes` (default 10), measures its CPU time from after start-up to the end (the
steady state a long-running recorder costs) and in total, its peak resident memory
(VmHWM) and the store's size, and prints them.

    .venv/bin/python benchmarks/bench_record.py [--minutes 10] [--interval 10] [--devices vda,sdb] [--json]
"""

from __future__ import annotations

import argparse
import json
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from host import diskstats  # noqa: E402


def pick_devices(n: int) -> list[str]:
    """`n` devices, real disks first, then pseudo-devices (loop, ram) to make up the count."""
    names = list(diskstats.read())
    real = [d for d in names if not d.startswith(("loop", "ram"))]
    return (real + [d for d in names if d not in real])[:n]


def peak_rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def samples(store: Path) -> int:
    try:
        with sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=10) as con:
            return int(con.execute("SELECT COUNT(*) FROM host").fetchone()[0])
    except sqlite3.OperationalError:
        return 0


def bench(minutes: float, interval: float, devices: list[str]) -> dict:
    with tempfile.TemporaryDirectory(prefix="piop-bench-record-") as tmp:
        store = Path(tmp) / "bench.piop"
        args = [sys.executable, "-m", "host", "record", str(store), "--interval", str(interval), "-q"]
        for d in devices:
            args += ["--device", d]
        launched = time.monotonic()
        proc = subprocess.Popen(args, cwd=ROOT)
        ps = psutil.Process(proc.pid)
        while not store.exists() and proc.poll() is None:  # start-up: imports, store creation
            time.sleep(0.05)
        if proc.poll() is not None:
            raise SystemExit(f"recorder exited with code {proc.returncode}")
        time.sleep(0.5)
        c0, t0 = ps.cpu_times(), time.monotonic()
        startup_s = t0 - launched
        time.sleep(minutes * 60.0)
        c1, t1 = ps.cpu_times(), time.monotonic()
        rss = peak_rss_mb(proc.pid)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        cpu = (c1.user + c1.system) - (c0.user + c0.system)
        n = samples(store)
        return {
            "devices": devices,
            "interval_s": interval,
            "minutes": minutes,
            "samples": n,
            "cpu_pct_of_one_core": 100.0 * cpu / (t1 - t0),
            "cpu_ms_per_sample": 1000.0 * cpu / max(1.0, (t1 - t0) / interval),
            "cpu_s_total_incl_startup": c1.user + c1.system,
            "startup_s": startup_s,
            "peak_rss_mb": rss,
            "store_bytes": store.stat().st_size + sum(p.stat().st_size for p in Path(tmp).glob("bench.piop-*")),
        }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--interval", type=float, default=10.0)
    ap.add_argument("--devices", default="", help="comma-separated (default: 4 from /proc/diskstats)")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    devices = [d for d in a.devices.split(",") if d] or pick_devices(4)
    r = bench(a.minutes, a.interval, devices)
    if a.json:
        print(json.dumps(r, indent=2))
        return
    print(f"piop record: {len(devices)} devices ({', '.join(devices)}), interval {a.interval:g} s, {a.minutes:g} min")
    print(f"  samples written       {r['samples']}")
    print(f"  CPU (steady state)    {r['cpu_pct_of_one_core']:.3f} % of one core ({r['cpu_ms_per_sample']:.1f} ms per sample)")
    print(f"  CPU incl. start-up    {r['cpu_s_total_incl_startup']:.2f} s (start-up {r['startup_s']:.2f} s wall)")
    print(f"  peak RSS              {r['peak_rss_mb']:.1f} MB")
    print(f"  store size            {r['store_bytes'] / 1024:.0f} KiB")


if __name__ == "__main__":
    main()

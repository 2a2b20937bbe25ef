"""Benchmark: aggregating a request-level CSV trace (records per second, peak memory).

Builds MSR-format files of 1 M and 10 M records (the real MSR Cambridge sample in
../shared/traces repeated with shifted timestamps) in a temporary folder, then, each in
a fresh process:

- runs the streaming aggregation pass alone (parse + checks + per-tick bincount + write
  extents and the aggregate): the records-per-second figure, with the process's peak
  RSS above its baseline after imports; again under tracemalloc for the peak of
  Python/NumPy allocations, plus pyarrow's own pool peak;
- builds the source end to end with an empty cache (content hash + aggregation +
  source), then again from the cache (the "second run starts at once" figure).

Run from the repository root: `python benchmarks/bench_traces.py` (add `--json` for
machine-readable output, `--records 1e6,1e7` to choose sizes).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SAMPLE = "format_samples/msr-cambridge1-sample.csv"


def traces_dir() -> Path:
    return Path(os.environ.get("PIOP_TRACES", ROOT.parent / "shared" / "traces"))


def build_file(out: Path, n_records: int) -> dict:
    """Write `n_records` MSR lines: the sample repeated, each copy shifted past the previous one."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pacsv

    lines = (traces_dir() / SAMPLE).read_text().split()
    rows = [ln.split(",") for ln in lines]
    ts = np.array([int(r[0]) for r in rows], np.int64)
    period = int(ts[-1] - ts[0]) + 10_000_000  # sample span + 1 s (FILETIME units)
    n = len(rows)
    typ = pa.array([r[3] for r in rows])
    off = np.array([int(r[4]) for r in rows], np.int64)
    size = np.array([int(r[5]) for r in rows], np.int64)
    resp = np.array([int(r[6]) for r in rows], np.int64)
    reps_per_batch = max(1, 200_000 // n)
    schema = pa.schema(
        [
            ("ts", pa.int64()),
            ("host", pa.string()),
            ("disk", pa.int64()),
            ("type", pa.string()),
            ("offset", pa.int64()),
            ("size", pa.int64()),
            ("resp", pa.int64()),
        ]
    )
    written = 0
    total_bytes = 0
    with pacsv.CSVWriter(out, schema, write_options=pacsv.WriteOptions(include_header=False, quoting_style="none")) as w:
        rep = 0
        while written < n_records:
            k = min(reps_per_batch, -(-(n_records - written) // n))
            shifts = (np.arange(rep, rep + k, dtype=np.int64) * period)[:, None]
            m = min(k * n, n_records - written)
            t = (ts[None, :] + shifts).reshape(-1)[:m]
            idx = np.tile(np.arange(n), k)[:m]
            w.write_table(
                pa.table(
                    [t, pa.array(["hm"] * m), np.zeros(m, np.int64), typ.take(pa.array(idx)), off[idx], size[idx], resp[idx]],
                    schema=schema,
                )
            )
            total_bytes += int(size[idx].sum())
            written += m
            rep += k
    return {"records": written, "bytes": total_bytes, "file_mb": out.stat().st_size / 1e6}


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


def child(file: str, mode: str) -> dict:
    import resource
    import tracemalloc

    import numpy as np  # noqa: F401  (imports before the baseline)
    import pandas  # noqa: F401  (pyarrow imports it on first use)
    import pyarrow as pa
    import pyarrow.parquet  # noqa: F401

    from workloads.traces import make
    from workloads.traces.aggregate import Grid, aggregate_file, peek_origin
    from workloads.traces.cache import file_digests
    from workloads.traces.formats import FORMATS

    if hasattr(os, "sched_setaffinity"):  # one core, as the target says
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    path = Path(file)
    out: dict = {"mode": mode}
    if mode in ("aggregate", "tracemalloc"):
        # the streaming pass alone: parse, check, bincount per tick, write extents and the aggregate
        fmt = FORMATS["msr"]
        grid = Grid(peek_origin(path, fmt), 10.0 / fmt.ts_unit_s, fmt.ts_int)
        folder = Path(tempfile.mkdtemp(prefix="piop-bench-agg-"))
        base = _rss_mb()
        if mode == "tracemalloc":
            tracemalloc.start()
        t = time.perf_counter()
        meta = aggregate_file(fmt, path, grid, folder, 0.0, 0.001)
        out["aggregate_s"] = time.perf_counter() - t
        if mode == "tracemalloc":
            out["tracemalloc_peak_mb"] = tracemalloc.get_traced_memory()[1] / 1e6
            tracemalloc.stop()
            out["arrow_pool_peak_mb"] = pa.default_memory_pool().max_memory() / 1e6
        out["rss_baseline_mb"] = base
        out["rss_peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        out["records"] = meta["records"]
        shutil.rmtree(folder, ignore_errors=True)
        return out
    t = time.perf_counter()
    if mode == "cold":  # end to end with an empty cache: content hash + aggregation + source
        file_digests([path])
        out["hash_s"] = time.perf_counter() - t
    src = make("msr", path=file, tick_s=10.0)
    out[f"{mode}_s"] = time.perf_counter() - t
    out["cache_hit"] = src.cache_hit
    out["records"] = src.records
    out["n_ticks"] = src.n_ticks
    out["bytes"] = float(src.volumes[0].app["read_bytes"] + src.volumes[0].app["write_bytes"])
    return out


def run_child(file: Path, mode: str, cache: Path) -> dict:
    env = {**os.environ, "PIOP_CACHE": str(cache)}
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--child", str(file), "--mode", mode],
        capture_output=True,
        text=True,
        env=env,
        cwd=str(ROOT),
    )
    if proc.returncode != 0:
        raise SystemExit(f"benchmark child failed ({mode}):\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", default="1e6,1e7", help="comma-separated file sizes in records (default 1e6,1e7)")
    ap.add_argument("--json", action="store_true", help="print JSON instead of text")
    ap.add_argument("--tmp", default=None, help="folder for the generated files (default: a temporary folder)")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--mode", default="cold", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.mode)))
        return 0
    if not (traces_dir() / SAMPLE).exists():
        print(f"error: {traces_dir() / SAMPLE} not found (set PIOP_TRACES)", file=sys.stderr)
        return 2
    sizes = [int(float(x)) for x in args.records.split(",") if x.strip()]
    work = Path(args.tmp) if args.tmp else Path(tempfile.mkdtemp(prefix="piop-bench-traces-"))
    work.mkdir(parents=True, exist_ok=True)
    results = []
    try:
        for n in sizes:
            f = work / f"msr_{n}.csv"
            t = time.perf_counter()
            made = build_file(f, n)
            gen_s = time.perf_counter() - t
            cache = work / f"cache_{n}"
            agg = run_child(f, "aggregate", cache)
            traced = run_child(f, "tracemalloc", cache)
            cold = run_child(f, "cold", cache)
            warm = run_child(f, "warm", cache)
            shutil.rmtree(cache, ignore_errors=True)
            assert agg["records"] == cold["records"] == made["records"], (agg["records"], cold["records"], made["records"])
            assert cold["bytes"] == made["bytes"], (cold["bytes"], made["bytes"])
            assert warm["cache_hit"] and not cold["cache_hit"]
            results.append(
                {
                    "records": made["records"],
                    "file_mb": round(made["file_mb"], 1),
                    "generate_s": round(gen_s, 2),
                    "aggregate_s": round(agg["aggregate_s"], 3),
                    "records_per_s": round(made["records"] / agg["aggregate_s"]),
                    "rss_baseline_mb": round(agg["rss_baseline_mb"], 1),
                    "rss_peak_mb": round(agg["rss_peak_mb"], 1),
                    "rss_peak_above_baseline_mb": round(agg["rss_peak_mb"] - agg["rss_baseline_mb"], 1),
                    "tracemalloc_peak_mb": round(traced["tracemalloc_peak_mb"], 1),
                    "arrow_pool_peak_mb": round(traced["arrow_pool_peak_mb"], 1),
                    "cold_end_to_end_s": round(cold["cold_s"], 3),
                    "cold_hash_s": round(cold["hash_s"], 3),
                    "cold_records_per_s": round(made["records"] / cold["cold_s"]),
                    "warm_load_s": round(warm["warm_s"], 3),
                    "n_ticks": cold["n_ticks"],
                    "totals_match": True,
                }
            )
            f.unlink(missing_ok=True)
    finally:
        if not args.tmp:
            shutil.rmtree(work, ignore_errors=True)
    info = {
        "benchmark": "request-level CSV aggregation (MSR format)",
        "cpu_count": os.cpu_count(),
        "single_core": True,
        "results": results,
    }
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print("request-level CSV aggregation (MSR format; pyarrow chunks + numpy bincount; pinned to one core)")
    for r in results:
        print(
            f"  {r['records']:>11,} records ({r['file_mb']:,.0f} MB): aggregate {r['records_per_s']:>10,} records/s "
            f"({r['aggregate_s']:.2f} s), "
            f"peak RSS {r['rss_peak_mb']:.0f} MB ({r['rss_peak_above_baseline_mb']:+.0f} MB over {r['rss_baseline_mb']:.0f} MB "
            "after imports), "
            f"tracemalloc peak {r['tracemalloc_peak_mb']:.1f} MB, arrow pool peak {r['arrow_pool_peak_mb']:.1f} MB"
        )
        print(
            f"  {'':>11}  end to end, empty cache {r['cold_end_to_end_s']:.2f} s (hash {r['cold_hash_s']:.2f} s; "
            f"{r['cold_records_per_s']:,} records/s); "
            f"second run from the cache {r['warm_load_s']:.3f} s"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

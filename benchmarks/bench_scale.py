"""Whole `piop run`s at fleet scale: the default fleet scaled to N volumes, timed and measured.

The default experiment (experiments/configs/default.yaml) is scaled by N / 12: each group's
count (largest remainder, so the counts sum to N) and each tier's ingest bandwidth, slots
and capacity. Each run is a fresh process (so its peak RSS is its own) that simulates one
policy and writes its results folder, and prints the wall time split into the policy's
decisions, forecasting, the rest of the simulation and the set-up and writing around it (the
fleet's load before the run, read for the forecasters; the results folder), the peak RSS and
the CPU time of the run (on a shared machine its wall time counts the other processes' load
too; its CPU time much less). With `--old ROOT` (a checkout of another version of the code)
every run is made by both, side by side, in the same invocation: the machine's noise hits both
alike. Figures are printed, not asserted.

    .venv/bin/python benchmarks/bench_scale.py [--volumes 100,500,1000] [--days 7] [--policies predictive,fixed]
        [--old /tmp/piop-old] [--out /tmp/piop-bench-scale] [--json]
    .venv/bin/python benchmarks/bench_scale.py --write-config 1000   # experiments/configs/scale/fleet1000-scaled.yaml
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = ROOT / "experiments" / "configs" / "default.yaml"
SCALE_DIR = ROOT / "experiments" / "configs" / "scale"
TIER_SCALED = ("ingest_mbps", "slots", "capacity_gb")


def scaled_counts(counts: list[int], n: int) -> list[int]:
    """`counts` scaled to sum to `n` (largest remainder; ties to the earlier group)."""
    total = sum(counts)
    exact = [c * n / total for c in counts]
    out = [math.floor(x) for x in exact]
    order = sorted(range(len(counts)), key=lambda i: (-(exact[i] - out[i]), i))
    for i in order[: n - sum(out)]:
        out[i] += 1
    return out


def scaled_config(n: int, days: float | None = None) -> dict:
    """default.yaml with its fleet scaled to `n` volumes and its tiers by the same factor."""
    cfg = yaml.safe_load(DEFAULT.read_text())
    factor = n / sum(g["count"] for g in cfg["fleet"])
    for g, c in zip(cfg["fleet"], scaled_counts([g["count"] for g in cfg["fleet"]], n), strict=True):
        g["count"] = c
    for t in cfg["tiers"]:
        for key in TIER_SCALED:
            t[key] = max(1, round(t[key] * factor))
    cfg["name"] = f"fleet{n}-scaled"
    cfg["description"] = f"The default mixed fleet scaled to {n} volumes, on the default tiers scaled with it (x {n} / 12)."
    cfg["seeds"] = [cfg["seed"]]
    if days is not None:
        cfg["duration_h"] = days * 24.0
    return cfg


def write_config(n: int, path: Path) -> Path:
    counts = ", ".join(str(g["count"]) for g in scaled_config(n)["fleet"])
    head = (
        f"# The default fleet (experiments/configs/default.yaml) scaled to {n} volumes ({counts} per group), its tiers'\n"
        f"# ingest bandwidth, slots and capacity by the same factor ({n} / 12). Generated, do not edit:\n"
        f"#   .venv/bin/python benchmarks/bench_scale.py --write-config {n}\n"
    )
    path.write_text(head + yaml.safe_dump(scaled_config(n), sort_keys=False, width=200))
    return path


# One run in a fresh process of the code under `root` (its own modules first on sys.path).
CHILD = r"""
import json, resource, sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from experiments.config import load_config
from experiments.runner import execute, plans
cfg = load_config(sys.argv[2])
plan = next(p for p in plans(cfg) if sys.argv[3] in (p.policy.policy, p.policy.label))
ru0 = resource.getrusage(resource.RUSAGE_SELF)
cpu0 = ru0.ru_utime + ru0.ru_stime
t0 = time.perf_counter()
execute(plan, Path(sys.argv[4]))
wall = time.perf_counter() - t0
summary = json.loads((Path(sys.argv[4]) / cfg.name / plan.run_id / "summary.json").read_text())
fleet = summary["fleet"]
ru = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"wall_s": wall, "sim_s": fleet["sim_wall_s"], "decide_s": fleet["decide_wall_s"],
    "forecast_s": fleet["forecast_wall_s"], "peak_rss_mb": ru.ru_maxrss / 1024.0, "cpu_s": ru.ru_utime + ru.ru_stime - cpu0}))
"""


def run_one(root: Path, config: Path, policy: str, out: Path, timeout: float) -> dict:
    args = [sys.executable, "-c", CHILD, str(root), str(config), policy, str(out)]
    done = subprocess.run(args, cwd=root, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def bench(sizes: list[int], days: float, policies: list[str], roots: dict[str, Path], out: Path, timeout: float) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="piop-bench-scale-") as tmp:
        for n in sizes:
            config = Path(tmp) / f"fleet{n}.yaml"
            config.write_text(yaml.safe_dump(scaled_config(n, days), sort_keys=False))
            for policy in policies:
                for label, root in roots.items():
                    fig = run_one(root, config, policy, out / label, timeout)
                    row = {"volumes": n, "policy": policy, "code": label, **fig}
                    rows.append(row)
                    print(_line(row), flush=True)
    return rows


def _line(row: dict) -> str:
    head = f"{row['volumes']:>6} {row['policy']:<11} {row['code']:<4}"
    if "error" in row:
        return f"{head} error: {row['error']}"
    other = row["sim_s"] - row["decide_s"] - row["forecast_s"]
    return (
        f"{head} wall {row['wall_s']:7.1f} s = decisions {row['decide_s']:7.1f} + forecasting {row['forecast_s']:6.1f} + "
        f"simulation {other:6.1f} + set-up/writing {row['wall_s'] - row['sim_s']:6.1f} s   peak RSS {row['peak_rss_mb']:6.0f} MB"
        + (f"   CPU {row['cpu_s']:7.1f} s" if "cpu_s" in row else "")
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--volumes", default="100,500,1000", help="fleet sizes, comma-separated")
    ap.add_argument("--days", type=float, default=7.0, help="simulated days per run")
    ap.add_argument("--policies", default="predictive,fixed", help="policies of default.yaml, comma-separated")
    ap.add_argument("--old", type=Path, help="another checkout of the code, run beside this one")
    ap.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "piop-bench-scale", help="results root")
    ap.add_argument("--timeout", type=float, default=1800.0, help="seconds per run")
    ap.add_argument("--json", action="store_true", help="print the rows as JSON at the end")
    ap.add_argument("--write-config", type=int, metavar="N", help="write experiments/configs/scale/fleetN-scaled.yaml and exit")
    a = ap.parse_args(argv)
    if a.write_config:
        print(write_config(a.write_config, SCALE_DIR / f"fleet{a.write_config}-scaled.yaml"))
        return 0
    roots = {"new": ROOT} if a.old is None else {"old": a.old.resolve(), "new": ROOT}
    sizes = [int(s) for s in a.volumes.split(",") if s]
    rows = bench(sizes, a.days, [p for p in a.policies.split(",") if p], roots, a.out, a.timeout)
    if a.json:
        print(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

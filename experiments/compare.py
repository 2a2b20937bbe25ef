"""`piop compare`: every policy x every seed of a config, in parallel, resumable, with CIs.

Each (policy, seed) is one run folder `results/<experiment>/<policy>-s<seed>/`, run by
`experiments.sweep` (in worker processes when `jobs > 1`; a finished folder of the same
settings is skipped, one of other settings re-run).

Every run simulates the whole fleet, so every workload of the config is in every run:
the fleet-level table gives each metric's mean and t-based CI over seeds per policy, the
paired table gives `policy - baseline` per seed (same seed = same production load), and
the per-workload table splits the volume metrics by workload kind.

Outputs beside the run folders: `compare.parquet` (one row per run, fleet metrics),
`compare_workloads.parquet` (one row per run and workload kind) and `compare.json`
(the tables, baseline, level, seeds).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from common.atomic import atomic_path, check_writable
from common.errors import UserError
from common.interrupts import Interrupted
from common.oserrors import naming
from experiments.config import ExperimentConfig
from experiments.metrics import METRICS, TABLE_METRICS, WORKLOAD_METRICS, format_ci, metric, paired_cells, short_name
from experiments.results import is_finished, provenance_or_none, read_summary, write_json
from experiments.runner import RunPlan, plans, preflight, print_warning
from experiments.sweep import SweepOutcome, run_dir, run_sweep


def parse_seeds(text: str | None) -> list[int] | None:
    """'1,2,3' or '1-5' (inclusive) or a mix ('1-3,7'); None/'' -> None (the config's)."""
    if not text:
        return None
    out: list[int] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        rng = re.fullmatch(r"(-?\d+)\s*(?:-|\.\.)\s*(-?\d+)", part)
        if rng:
            lo, hi = int(rng.group(1)), int(rng.group(2))
            if lo > hi:
                raise UserError(f"--seeds: range {part!r} has its start after its end")
            out.extend(range(lo, hi + 1))
        elif re.fullmatch(r"-?\d+", part):
            out.append(int(part))
        else:
            raise UserError(f"--seeds: expected integers like '1,2,3' or '1-5', got {text!r}")
    if not out:
        raise UserError(f"--seeds: no seeds in {text!r}")
    return list(dict.fromkeys(out))


# --------------------------------------------------------------------------- tables


def _fleet_row(summary: dict) -> dict:
    meta = summary.get("meta", {})
    row = {"policy": meta.get("policy"), "seed": meta.get("seed"), "run": meta.get("run"), "wall_s": meta.get("wall_s")}
    row.update(summary.get("fleet", {}))
    return row


def workload_rows(run_path: Path, policy: str, seed: int) -> list[dict]:
    """Per workload kind: RPO/RTO time shares averaged over volumes, impact IO-weighted."""
    f = Path(run_path) / "volumes.parquet"
    if not f.is_file():
        return []
    v = pd.read_parquet(f)
    rows = []
    for kind, g in v.groupby("kind", sort=True):
        io = g["prod_io"].astype(float) if "prod_io" in g else pd.Series(1.0, index=g.index)
        w = io / io.sum() if io.sum() > 0 else pd.Series(1.0 / len(g), index=g.index)
        rows.append(
            {
                "policy": policy,
                "seed": seed,
                "workload": str(kind),
                "volumes": int(len(g)),
                "rpo_compliance_pct": float(g["rpo_compliance_pct"].mean()),
                "rpo_violation_h": float(g["rpo_violation_s"].sum() / 3600.0) if "rpo_violation_s" in g else math.nan,
                "rto_compliance_pct": float(g["rto_compliance_pct"].mean()),
                "impact_io_mean": float((g["impact_io_mean"] * w).sum()),
                "io_over_threshold_pct": float((g["io_over_threshold_pct"] * w).sum()),
            }
        )
    return rows


def collect(out_root: Path, todo: Sequence[RunPlan]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Fleet rows and per-workload rows of the plans' finished folders (from disk)."""
    fleet, work = [], []
    for p in todo:
        d = run_dir(out_root, p)
        if not is_finished(d):
            continue
        row = _fleet_row(read_summary(d))
        row["policy"], row["seed"], row["run"] = p.policy.label, p.seed, p.run_id
        fleet.append(row)
        work.extend(workload_rows(d, p.policy.label, p.seed))
    return pd.DataFrame(fleet), pd.DataFrame(work)


@dataclass
class Comparison:
    experiment: str
    baseline: str
    level: float
    policies: list[str]
    seeds: list[int]
    metrics: list[str]
    runs: pd.DataFrame  # one row per run
    summary: pd.DataFrame  # per policy: mean, lo, hi per metric
    paired: pd.DataFrame  # per (policy, metric) vs baseline
    workloads: pd.DataFrame  # per run and workload kind
    by_workload: pd.DataFrame  # per (workload, policy): mean, lo, hi
    outcome: SweepOutcome | None = None
    warnings: list[str] | None = None  # what the runs replay that the traces did not measure
    gaps: pd.DataFrame | None = None  # each policy against the impact bound (`--bound`)

    def to_json(self) -> dict:
        def recs(df: pd.DataFrame) -> list[dict]:
            return df.to_dict(orient="records")

        prov = provenance_or_none()
        return {
            **({"provenance": prov} if prov is not None else {}),
            "experiment": self.experiment,
            "baseline": self.baseline,
            "level": self.level,
            "policies": self.policies,
            "seeds": self.seeds,
            "metrics": self.metrics,
            "summary": recs(self.summary),
            "paired": recs(self.paired),
            "by_workload": recs(self.by_workload),
            "runs": recs(self.runs),
            "sweep": None if self.outcome is None else self.outcome.to_json(),
            "warnings": self.warnings or [],
            "gaps": [] if self.gaps is None else recs(self.gaps),
        }


def analyse(
    runs: pd.DataFrame,
    workloads: pd.DataFrame,
    experiment: str,
    baseline: str | None = None,
    level: float = 0.95,
    policies: Sequence[str] | None = None,
    metrics: Sequence[str] | None = None,
) -> Comparison:
    """Tables from run rows (as `collect` or `compare.parquet` give them)."""
    from experiments.stats import paired_differences, summarise  # scipy: kept out of the workers

    if runs.empty:
        raise UserError(f"{experiment}: no finished runs to compare")
    pols = list(policies) if policies else list(dict.fromkeys(runs["policy"]))
    base = baseline or pols[0]
    if base not in pols:
        raise UserError(f"--baseline: {base!r} is not one of the compared policies: {', '.join(pols)}")
    if metrics is None:
        metrics = [m.key for m in METRICS if m.key in runs] + sorted(
            c for c in runs.columns if c.startswith("forecast_") and not c.endswith("wall_s") and pd.api.types.is_numeric_dtype(runs[c])
        )
    metrics = list(metrics)
    summary = summarise(runs, metrics, level=level, order=pols)
    paired = paired_differences(runs, metrics, base, level=level, order=pols)
    by_wl = []
    if not workloads.empty:
        for wl, g in workloads.groupby("workload", sort=True):
            s = summarise(g, [m for m in WORKLOAD_METRICS if m in g], level=level, order=[p for p in pols if p in set(g["policy"])])
            s.insert(0, "workload", wl)
            by_wl.append(s)
    return Comparison(
        experiment=experiment,
        baseline=base,
        level=level,
        policies=pols,
        seeds=sorted({int(s) for s in runs["seed"]}),
        metrics=metrics,
        runs=runs,
        summary=summary,
        paired=paired,
        workloads=workloads,
        by_workload=pd.concat(by_wl, ignore_index=True) if by_wl else pd.DataFrame(),
    )


def write_comparison(exp_dir: Path, comp: Comparison) -> None:
    """The comparison's files, each written atomically (an OS error names the file)."""
    exp_dir.mkdir(parents=True, exist_ok=True)
    for name, df in (("compare.parquet", comp.runs), ("compare_workloads.parquet", comp.workloads)):
        with naming(exp_dir / name), atomic_path(exp_dir / name) as tmp:
            df.to_parquet(tmp, index=False)
    with naming(exp_dir / "compare.json"):
        write_json(exp_dir / "compare.json", comp.to_json())


def _cluster(address: str | None, exp_dir: Path, cfg: ExperimentConfig, on_warning: Callable[[str], None]) -> AbstractContextManager:
    """The checked cluster at `address` (closed on leaving), or nothing: the local workers."""
    if not address:
        return nullcontext()
    from experiments.cluster import connect  # Dask: an optional extra, imported only when asked for

    return connect(address, exp_dir, cfg, on_warning)


def compare(
    cfg: ExperimentConfig,
    out_root: Path = Path("results"),
    jobs: int = 1,
    baseline: str | None = None,
    policies: Sequence[str] | None = None,
    seeds: Sequence[int] | None = None,
    level: float = 0.95,
    force: bool = False,
    on_start: Callable[[int], None] | None = None,
    on_done: Callable[[str, str | None], None] | None = None,
    on_warning: Callable[[str], None] = print_warning,
    bound: bool = False,
    bound_fulls: int = 0,
    cluster: str | None = None,
) -> Comparison:
    """Run what is missing, then tabulate every (policy, seed) of the config.

    Before any run: the results folder must be writable, the fleet must fit in memory and
    what the runs replay beyond the traces' own data is said (`on_warning`). The tables
    are built from the run folders on disk (runs finished by another process sharing
    the folder included). An interrupt keeps the finished runs and says so. With `cluster`
    (a Dask scheduler address) the runs go to its workers, once they are checked to see the
    results folder (`experiments.cluster`); `jobs` is then unused.
    """
    if jobs < 1:
        raise UserError(f"--jobs: must be at least 1, not {jobs}")
    if not 0.0 < level < 1.0:
        raise UserError(f"--level: confidence level must be in (0, 1), not {level}")
    todo = plans(cfg, list(policies) if policies else None, list(seeds) if seeds else None)
    if not todo:
        raise UserError("nothing to compare: the config names no policies")
    labels = list(dict.fromkeys(p.policy.label for p in todo))
    if baseline is not None and baseline not in labels:
        raise UserError(f"--baseline: {baseline!r} is not one of the compared policies: {', '.join(labels)}")
    exp_dir = Path(out_root) / cfg.name
    check_writable(exp_dir, "results folder")
    with _cluster(cluster, exp_dir, cfg, on_warning) as workers:
        warnings = preflight(cfg)
        for w in warnings:
            on_warning(w)
        try:
            outcome = run_sweep(todo, out_root, jobs, force, on_start, on_done, cluster=workers)
        except KeyboardInterrupt:
            kept = sum(is_finished(run_dir(out_root, p)) for p in todo)
            raise Interrupted(f"{kept} of {len(todo)} runs kept in {exp_dir}; run the same command to resume") from None
    runs, work = collect(out_root, todo)
    if runs.empty:
        if outcome.elsewhere and not outcome.failed:
            raise UserError(
                f"{cfg.name}: no finished runs yet; {len(outcome.elsewhere)} are running elsewhere (another process "
                f"writing {exp_dir}): run the same command again once it is done"
            )
        first = next(iter(outcome.failed.items()), None)
        raise UserError(f"{cfg.name}: every run failed" + (f"; {first[0]}: {first[1]}" if first else ""))
    comp = analyse(runs, work, cfg.name, baseline, level, labels)
    comp.outcome = outcome
    comp.warnings = warnings
    if bound:
        from experiments.bound.gaps import gap_table, seed_bounds

        comp.gaps = gap_table(cfg, comp.runs, seed_bounds(cfg, comp.seeds, exp_dir, fulls=bound_fulls), level)
    write_comparison(exp_dir, comp)
    return comp


def summary_table(comp: Comparison, metrics: Sequence[str] | None = None) -> tuple[list[dict], list[tuple[str, str, str]]]:
    """Rows and columns (for cli.print_table) of mean ± CI half-width per policy."""
    keys = [m for m in (metrics or TABLE_METRICS) if m in comp.summary]
    rows = []
    for r in comp.summary.to_dict(orient="records"):
        row = {"policy": r["policy"], "n": r["n"]}
        for k in keys:
            row[k] = format_ci(r[k], r[f"{k}_lo"], r[f"{k}_hi"], metric(k).fmt)
        rows.append(row)
    cols = [("policy", "policy", "{}"), ("n", "seeds", "{}")] + [(k, short_name(k), "{}") for k in keys]
    return rows, cols


def paired_table(comp: Comparison, metrics: Sequence[str] | None = None) -> tuple[list[dict], list[tuple[str, str, str]]]:
    keys = set(metrics or TABLE_METRICS)
    rows = []
    for r in comp.paired.to_dict(orient="records"):
        if r["metric"] not in keys:
            continue
        c = paired_cells(r)
        rows.append({"policy": r["policy"], "metric": short_name(r["metric"]), **{k: c[k] for k in ("diff", "ci", "rel", "p", "verdict")}})
    cols = [
        ("policy", "policy", "{}"),
        ("metric", "metric", "{}"),
        ("diff", "diff", "{}"),
        ("ci", f"{comp.level:.0%} CI", "{}"),
        ("rel", "rel.", "{}"),
        ("p", "p", "{}"),
        ("verdict", "signif.", "{}"),
    ]
    return rows, cols

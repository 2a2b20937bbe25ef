"""`piop compare`: every policy x every seed of a config, in parallel, resumable, with CIs.

Each (policy, seed) is one run folder `results/<experiment>/<policy>-s<seed>/`, written
atomically by `experiments.runner.execute` (in a worker process when `jobs > 1`). A
finished folder whose stored config matches the plan is skipped, so a killed sweep
loses at most the runs that were in flight; a folder left by a *different* config (other
duration, fleet, policy parameters) is re-run and replaced.

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
import os
import re
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path

import pandas as pd
import yaml

from experiments.config import ExperimentConfig, PolicyConfig
from common.errors import UserError
from experiments.results import is_finished, read_summary, write_json
from experiments.runner import RunPlan, plans


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    unit: str
    higher_is_better: bool
    fmt: str = "{:.2f}"
    scale: float = 1.0  # for plots: value x scale in `unit`


# fleet metrics compared by default (the order of tables and plots)
METRICS: list[Metric] = [
    Metric("rpo_compliance_pct", "RPO compliance", "% of volume-time", True),
    Metric("rpo_violation_h", "RPO violation time", "volume-hours", False, "{:.2f}"),
    Metric("worst_rp_age_h", "worst restore-point age", "h", False),
    Metric("rto_compliance_pct", "RTO compliance", "% of volume-time", True),
    Metric("impact_io_mean", "mean production impact", "% latency increase, IO-weighted", False, "{:.4f}", 100.0),
    Metric("impact_p99", "p99 production impact", "% latency increase", False, "{:.3f}", 100.0),
    Metric("io_over_threshold_pct", "I/O above impact threshold", "% of production I/O", False),
    Metric("backup_tb", "backup data moved", "TB", False, "{:.3f}"),
    Metric("storage_cost", "backup storage cost", "$ per month", False, "{:.1f}"),
]
METRIC_BY_KEY = {m.key: m for m in METRICS}
METRIC_BY_KEY.update({
    m.key: m for m in (
        Metric("rpo_violation_pct", "time outside RPO", "% of volume-time", False, "{:.3f}"),
        Metric("rto_violation_pct", "time outside RTO", "% of volume-time", False, "{:.3f}"),
    )
})
# the console tables (the JSON and parquet files have every metric)
TABLE_METRICS = ["rpo_compliance_pct", "rpo_violation_h", "rto_compliance_pct", "impact_io_mean", "impact_p99", "io_over_threshold_pct", "backup_tb", "storage_cost"]

# per-workload metrics, from volumes.parquet (weighted over the kind's volumes)
WORKLOAD_METRICS = ["rpo_compliance_pct", "rpo_violation_h", "rto_compliance_pct", "impact_io_mean", "io_over_threshold_pct"]


def metric(key: str) -> Metric:
    """The display metadata of a metric (a plain one for metrics not in METRICS)."""
    return METRIC_BY_KEY.get(key) or Metric(key, key.replace("_", " "), "", False, "{:.4g}")


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


# --------------------------------------------------------------------------- run folders


def _run_key(cfg_dump: dict, policy_label: str) -> dict | None:
    """What decides a run's outcome: the config minus bookkeeping, plus this policy only."""
    chosen = None
    for p in cfg_dump.get("policies") or []:
        try:
            if PolicyConfig.model_validate(p).label == policy_label:
                chosen = p
                break
        except (ValueError, TypeError):
            continue
    if chosen is None:
        return None
    key = {k: v for k, v in cfg_dump.items() if k not in ("description", "policies", "seeds", "seed")}
    key["policy"] = chosen
    return key


def _dump(cfg: ExperimentConfig) -> dict:
    return yaml.safe_load(yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False))


def run_dir(out_root: Path, plan: RunPlan) -> Path:
    return Path(out_root) / plan.config.name / plan.run_id


def up_to_date(out_root: Path, plan: RunPlan) -> bool:
    """The plan's folder is finished and was produced by the same settings."""
    d = run_dir(out_root, plan)
    if not is_finished(d):
        return False
    try:
        stored = yaml.safe_load((d / "config.yaml").read_text())
    except (OSError, yaml.YAMLError):
        return False
    if not isinstance(stored, dict):
        return False
    return _run_key(stored, plan.policy.label) == _run_key(_dump(plan.config), plan.policy.label)


# --------------------------------------------------------------------------- workers


def _worker_init() -> None:
    """One thread per worker: N workers on N cores must not each start N BLAS/torch threads."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = "1"
    limit_torch_threads()


def limit_torch_threads() -> None:
    torch = sys.modules.get("torch")
    if torch is not None:
        try:
            torch.set_num_threads(1)
        except RuntimeError:  # pragma: no cover - already running parallel work
            pass


def _execute(plan: RunPlan, out_root: str) -> tuple[str, float]:
    from experiments.runner import execute

    t0 = time.perf_counter()
    if plan.policy.forecaster is not None or plan.policy.policy in ("predictive", "oracle"):
        try:  # the forecaster imports torch inside the run: cap its threads first
            import torch

            torch.set_num_threads(1)
        except ImportError:  # pragma: no cover
            pass
    execute(plan, Path(out_root))
    return plan.run_id, time.perf_counter() - t0


@dataclass
class SweepOutcome:
    ran: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)  # finished, but by other settings: re-run
    failed: dict[str, str] = field(default_factory=dict)


def run_sweep(
    todo: Sequence[RunPlan],
    out_root: Path,
    jobs: int = 1,
    force: bool = False,
    on_start: Callable[[int], None] | None = None,
    on_done: Callable[[str, str | None], None] | None = None,
) -> SweepOutcome:
    """Run every plan not already finished; `jobs` worker processes (1: in this process).

    `on_start(n_to_run)` is called once, `on_done(run_id, error_or_None)` after each run.
    A failed run does not stop the others; its error is in `outcome.failed`.
    """
    out = SweepOutcome()
    pending: list[RunPlan] = []
    for p in todo:
        if not force and up_to_date(out_root, p):
            out.skipped.append(p.run_id)
        else:
            if is_finished(run_dir(out_root, p)) and not force:
                out.stale.append(p.run_id)
            pending.append(p)
    if on_start:
        on_start(len(pending))
    if not pending:
        return out

    def done(run_id: str, err: BaseException | None) -> None:
        if err is None:
            out.ran.append(run_id)
        else:
            out.failed[run_id] = f"{type(err).__name__}: {err}" if not isinstance(err, UserError) else str(err)
        if on_done:
            on_done(run_id, out.failed.get(run_id))

    if jobs <= 1 or len(pending) == 1:
        for p in pending:
            try:
                _execute(p, str(out_root))
            except KeyboardInterrupt:
                raise
            except Exception as err:  # noqa: BLE001 - reported per run
                done(p.run_id, err)
            else:
                done(p.run_id, None)
        return out

    # spawn: workers start clean (no forked torch/OpenMP state, no rich threads)
    with ProcessPoolExecutor(max_workers=min(jobs, len(pending)), mp_context=get_context("spawn"), initializer=_worker_init) as pool:
        futures: dict[Future, RunPlan] = {pool.submit(_execute, p, str(out_root)): p for p in pending}
        try:
            remaining = set(futures)
            while remaining:
                finished, remaining = wait(remaining, return_when=FIRST_COMPLETED)
                for f in finished:
                    err = f.exception()
                    done(futures[f].run_id, err)
        except KeyboardInterrupt:
            pool.shutdown(wait=False, cancel_futures=True)
            raise
    return out


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
        rows.append({
            "policy": policy, "seed": seed, "workload": str(kind), "volumes": int(len(g)),
            "rpo_compliance_pct": float(g["rpo_compliance_pct"].mean()),
            "rpo_violation_h": float(g["rpo_violation_s"].sum() / 3600.0) if "rpo_violation_s" in g else math.nan,
            "rto_compliance_pct": float(g["rto_compliance_pct"].mean()),
            "impact_io_mean": float((g["impact_io_mean"] * w).sum()),
            "io_over_threshold_pct": float((g["io_over_threshold_pct"] * w).sum()),
        })
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

    def to_json(self) -> dict:
        def recs(df: pd.DataFrame) -> list[dict]:
            return df.to_dict(orient="records")

        return {
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
            "sweep": None if self.outcome is None else {
                "ran": self.outcome.ran, "skipped": self.outcome.skipped, "stale": self.outcome.stale, "failed": self.outcome.failed,
            },
        }


def analyse(runs: pd.DataFrame, workloads: pd.DataFrame, experiment: str, baseline: str | None = None, level: float = 0.95,
            policies: Sequence[str] | None = None, metrics: Sequence[str] | None = None) -> Comparison:
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
        experiment=experiment, baseline=base, level=level, policies=pols,
        seeds=sorted({int(s) for s in runs["seed"]}), metrics=metrics, runs=runs, summary=summary, paired=paired,
        workloads=workloads, by_workload=pd.concat(by_wl, ignore_index=True) if by_wl else pd.DataFrame(),
    )


def write_comparison(exp_dir: Path, comp: Comparison) -> None:
    exp_dir.mkdir(parents=True, exist_ok=True)
    for name, df in (("compare.parquet", comp.runs), ("compare_workloads.parquet", comp.workloads)):
        tmp = exp_dir / f".{name}.tmp"
        df.to_parquet(tmp, index=False)
        os.replace(tmp, exp_dir / name)
    write_json(exp_dir / "compare.json", comp.to_json())


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
) -> Comparison:
    """Run what is missing, then tabulate every (policy, seed) of the config."""
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
    outcome = run_sweep(todo, out_root, jobs, force, on_start, on_done)
    runs, work = collect(out_root, todo)
    if runs.empty:
        first = next(iter(outcome.failed.items()), None)
        raise UserError(f"{cfg.name}: every run failed" + (f"; {first[0]}: {first[1]}" if first else ""))
    comp = analyse(runs, work, cfg.name, baseline, level, labels)
    comp.outcome = outcome
    write_comparison(Path(out_root) / cfg.name, comp)
    return comp


def format_ci(mean: float, lo: float, hi: float, fmt: str) -> str:
    if mean is None or not math.isfinite(mean):
        return "-"
    if lo is None or not (math.isfinite(lo) and math.isfinite(hi)):
        return fmt.format(mean)
    return f"{fmt.format(mean)} ± {fmt.format((hi - lo) / 2)}"


def summary_table(comp: Comparison, metrics: Sequence[str] | None = None) -> tuple[list[dict], list[tuple[str, str, str]]]:
    """Rows and columns (for cli.print_table) of mean ± CI half-width per policy."""
    keys = [m for m in (metrics or TABLE_METRICS) if m in comp.summary]
    rows = []
    for r in comp.summary.to_dict(orient="records"):
        row = {"policy": r["policy"], "n": r["n"]}
        for k in keys:
            row[k] = format_ci(r[k], r[f"{k}_lo"], r[f"{k}_hi"], metric(k).fmt)
        rows.append(row)
    cols = [("policy", "policy", "{}"), ("n", "seeds", "{}")] + [(k, _short(k), "{}") for k in keys]
    return rows, cols


def paired_table(comp: Comparison, metrics: Sequence[str] | None = None) -> tuple[list[dict], list[tuple[str, str, str]]]:
    keys = set(metrics or TABLE_METRICS)
    rows = []
    for r in comp.paired.to_dict(orient="records"):
        if r["metric"] not in keys:
            continue
        m = metric(r["metric"])
        lo_hi = f"[{r['lo']:+.3g}, {r['hi']:+.3g}]" if math.isfinite(r["lo"]) else "-"
        better = "-"
        if math.isfinite(r["lo"]) and (r["lo"] > 0 or r["hi"] < 0):
            better = "better" if (r["diff"] > 0) == m.higher_is_better else "worse"
        rows.append({
            "policy": r["policy"], "metric": _short(r["metric"]), "diff": f"{r['diff']:+.3g}" if math.isfinite(r["diff"]) else "-",
            "ci": lo_hi, "rel": f"{r['rel_pct']:+.1f}%" if math.isfinite(r["rel_pct"]) else "-",
            "p": f"{r['p']:.2g}" if math.isfinite(r["p"]) else "-", "verdict": better,
        })
    cols = [("policy", "policy", "{}"), ("metric", "metric", "{}"), ("diff", "diff", "{}"), ("ci", f"{comp.level:.0%} CI", "{}"),
            ("rel", "rel.", "{}"), ("p", "p", "{}"), ("verdict", "signif.", "{}")]
    return rows, cols


_SHORT = {
    "rpo_compliance_pct": "RPO %", "rpo_violation_h": "RPO viol. h", "worst_rp_age_h": "worst age h", "rto_compliance_pct": "RTO %",
    "impact_io_mean": "impact mean", "impact_p99": "impact p99", "io_over_threshold_pct": "IO > thr %", "backup_tb": "backup TB",
    "storage_cost": "cost $/mo",
}


def _short(key: str) -> str:
    return _SHORT.get(key, key)

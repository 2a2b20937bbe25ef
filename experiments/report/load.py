"""The finished runs of one experiment folder, and their comparison tables."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import yaml

from common.errors import UserError
from experiments.compare import Comparison, analyse, workload_rows
from experiments.results import is_finished, read_summary


@dataclass
class Run:
    path: Path
    policy: str
    seed: int
    summary: dict

    @property
    def name(self) -> str:
        return self.path.name


@dataclass
class ResultsSet:
    root: Path
    runs: list[Run]
    config: dict  # the first run's resolved config
    policies: list[str]  # in config order
    seeds: list[int]
    extra: dict = field(default_factory=dict)

    def run(self, policy: str, seed: int) -> Run | None:
        return next((r for r in self.runs if r.policy == policy and r.seed == seed), None)


def _finished_runs(root: Path) -> list[Run]:
    """Every finished run folder directly under `root` (hidden / temp folders skipped)."""
    runs = []
    for d in sorted(root.iterdir()):
        if d.name.startswith(".") or not d.is_dir() or not is_finished(d):
            continue
        try:
            s = read_summary(d)
        except (OSError, ValueError):
            continue
        meta = s.get("meta", {})
        m = re.match(r"^(.*)-s(-?\d+)$", d.name)
        policy = meta.get("policy") or (m.group(1) if m else d.name)
        seed = meta.get("seed", int(m.group(2)) if m else 0)
        runs.append(Run(d, str(policy), int(seed), s))
    return runs


def _policy_order(config: dict, runs: Sequence[Run]) -> list[str]:
    """The policies present, in the config's order (others after them)."""
    order = []
    for p in config.get("policies") or []:
        label = p.get("name") or (f"{p['policy']}-{p['forecaster']}" if p.get("forecaster") else p.get("policy"))
        order.append(label)
    present = list(dict.fromkeys(r.policy for r in runs))
    return [p for p in order if p in present] + [p for p in present if p not in order]


def load_runs(results_dir: str | Path) -> ResultsSet:
    """The finished runs of `results_dir` (those of its last `piop compare` when it has one)."""
    root = Path(results_dir)
    if not root.exists():
        raise UserError(f"{root}: no such folder")
    if not root.is_dir():
        raise UserError(f"{root}: is a file, expected a results folder (results/<experiment>)")
    runs = _finished_runs(root)
    if not runs:
        hint = " (pass results/<experiment>, not results/)" if any((c / "summary.json").exists() for c in root.glob("*/*")) else ""
        raise UserError(f"{root}: no finished runs here{hint}")
    source = "every finished run folder"
    listed = compared_runs(root)
    if listed:  # the last `piop compare` of this folder: keep its runs, not strays of other settings
        kept = [r for r in runs if r.name in listed]
        if kept:
            source = f"the {len(kept)} runs of the last `piop compare` (compare.json)"
            runs = kept
    config: dict = {}
    try:
        config = yaml.safe_load((runs[0].path / "config.yaml").read_text()) or {}
    except (OSError, yaml.YAMLError):
        pass
    seeds = sorted({r.seed for r in runs})
    return ResultsSet(root, runs, config, _policy_order(config, runs), seeds, {"source": source})


def compared_runs(root: Path) -> set[str]:
    """The run folders listed by the last `piop compare` of `root` (empty when none)."""
    f = root / "compare.json"
    if not f.is_file():
        return set()
    try:
        return {str(r.get("run")) for r in json.loads(f.read_text()).get("runs", []) if r.get("run")}
    except (OSError, ValueError, AttributeError):
        return set()


def run_rows(rs: ResultsSet) -> tuple[pd.DataFrame, pd.DataFrame]:
    fleet, work = [], []
    for r in rs.runs:
        row = {"policy": r.policy, "seed": r.seed, "run": r.name, "wall_s": r.summary.get("meta", {}).get("wall_s")}
        row.update(r.summary.get("fleet", {}))
        fleet.append(row)
        work.extend(workload_rows(r.path, r.policy, r.seed))
    return pd.DataFrame(fleet), pd.DataFrame(work)


def _stored_baseline(rs: ResultsSet) -> str | None:
    """The baseline of the last `piop compare`, if it is one of these policies."""
    stored = rs.root / "compare.json"
    if not stored.is_file():
        return None
    try:
        b = json.loads(stored.read_text()).get("baseline")
    except (OSError, ValueError):
        return None
    return b if b in rs.policies else None


def comparison(rs: ResultsSet, baseline: str | None = None, level: float = 0.95) -> Comparison:
    runs, work = run_rows(rs)
    if baseline is None:
        baseline = _stored_baseline(rs)
    return analyse(runs, work, rs.root.name, baseline, level, rs.policies)


def read_series(run: Run, columns: Sequence[str]) -> pd.DataFrame | None:
    """Columns of a run's `series.parquet`, or None when it recorded none."""
    f = run.path / "series.parquet"
    if not f.is_file():
        return None
    try:
        return pd.read_parquet(f, columns=list(columns))
    except (OSError, ValueError, KeyError):
        return None


def pick_run_volumes(run: Run, k: int) -> list[str]:
    """A few volumes of `run` worth drawing (see `experiments.plots.pick_volumes`)."""
    from experiments.plots import pick_volumes

    f = run.path / "volumes.parquet"
    if not f.is_file():
        return []
    return pick_volumes(pd.read_parquet(f), k)


def tuning_studies(root: Path) -> list[Path]:
    """The tuning study folders (with a `summary.json`) under `root/tune/`."""
    tdir = root / "tune"
    if not tdir.is_dir():
        return []
    return sorted(d for d in tdir.iterdir() if d.is_dir() and (d / "summary.json").is_file())

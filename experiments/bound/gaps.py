"""The bound beside a comparison: a "bound" row, and per policy its distance to the bound and,
for forecasting policies, to the same policy fed the true future.

- policy gap: `impact(policy) / bound`, per seed (1 would be a perfect schedule);
- forecast gap: `impact(policy) / impact(oracle twin)`, per seed, for policies that read a
  forecaster other than the truth; the twin is the config's policy fed the `oracle`
  forecaster (`runner.forecaster_name`).
Ratios are taken per seed (the same load) and averaged with a t interval over seeds.

`seed_bounds` keeps each seed's bound in `<exp_dir>/bound-s<seed>.json` (atomic), reused
while the config and options are unchanged: a bound of a week-long fleet takes minutes.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import pandas as pd

from common.atomic import atomic_write_text
from common.jsonable import dumps
from experiments.bound.api import impact_bound
from experiments.config import ExperimentConfig
from experiments.runner import forecaster_name
from experiments.stats import t_ci


def _key(cfg: ExperimentConfig, seed: int, options: dict) -> str:
    text = json.dumps({"config": cfg.model_dump(mode="json"), "seed": seed, "options": options}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def seed_bounds(cfg: ExperimentConfig, seeds: list[int], exp_dir: Path, **options) -> dict[int, float]:
    """The bound (`impact_io_mean`) of each seed, from `exp_dir/bound-s<seed>.json` when its key matches."""
    out = {}
    for seed in seeds:
        path = Path(exp_dir) / f"bound-s{seed}.json"
        key = _key(cfg, seed, options)
        try:
            saved = json.loads(path.read_text())
            if saved.get("key") == key and isinstance(saved.get("bound", {}).get("impact_io_mean"), float):
                out[seed] = saved["bound"]["impact_io_mean"]
                continue
        except (OSError, ValueError):
            pass
        result = impact_bound(cfg, seed, **options)
        Path(exp_dir).mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, dumps({"key": key, "bound": result.to_dict()}))
        out[seed] = result.impact_io_mean
    return out


def oracle_twin(cfg: ExperimentConfig) -> str | None:
    """Label of the config's policy fed the true future, if any."""
    return next((p.label for p in cfg.policies if forecaster_name(p) == "oracle"), None)


def gap_table(cfg: ExperimentConfig, runs: pd.DataFrame, bounds: dict[int, float], level: float = 0.95) -> pd.DataFrame:
    """Rows `bound` and one per policy: impact mean, and mean/lo/hi of `x_bound` and `x_oracle` over seeds.

    `runs`: one row per (policy, seed) with `impact_io_mean` (a comparison's `runs`).
    """
    twin = oracle_twin(cfg)
    forecasting = {p.label for p in cfg.policies if forecaster_name(p) not in (None, "oracle")}
    by = runs.set_index(["policy", "seed"])["impact_io_mean"].astype(float)
    ci = t_ci(bounds.values(), level)
    rows = [{"policy": "bound", "n": ci.n, "impact_io_mean": ci.mean}]
    for policy in dict.fromkeys(runs["policy"]):
        seeds = [s for s in by.loc[policy].index if s in bounds]
        x_bound = t_ci([by[(policy, s)] / bounds[s] if bounds[s] > 0 else math.inf for s in seeds], level)
        row = {
            "policy": policy,
            "n": len(seeds),
            "impact_io_mean": float(by.loc[policy].mean()),
            "x_bound": x_bound.mean,
            "x_bound_lo": x_bound.lo,
            "x_bound_hi": x_bound.hi,
        }
        if twin is not None and policy in forecasting and twin in by.index.get_level_values(0):
            pairs = [(by[(policy, s)], by[(twin, s)]) for s in by.loc[policy].index if (twin, s) in by.index]
            x_or = t_ci([a / b for a, b in pairs if b > 0], level)
            row.update({"x_oracle": x_or.mean, "x_oracle_lo": x_or.lo, "x_oracle_hi": x_or.hi})
        rows.append(row)
    return pd.DataFrame(rows)


def gap_rows(table: pd.DataFrame) -> tuple[list[dict], list[tuple[str, str, str]]]:
    """Rows and columns for `clitools.print_table`: impact, x bound (policy gap), x oracle (forecast gap)."""

    def fmt(r: dict, key: str) -> str | None:
        mean, lo, hi = r.get(key), r.get(f"{key}_lo"), r.get(f"{key}_hi")
        if mean is None or not math.isfinite(mean):
            return None
        return f"x{mean:.2f}" + (f" [{lo:.2f}, {hi:.2f}]" if lo is not None and math.isfinite(lo) else "")

    rows = [
        {
            "policy": r["policy"],
            "n": r["n"],
            "impact_io_mean": f"{r['impact_io_mean']:.4g}",
            "x_bound": fmt(r, "x_bound"),
            "x_oracle": fmt(r, "x_oracle"),
        }
        for r in table.to_dict(orient="records")
    ]
    cols = [
        ("policy", "policy", "{}"),
        ("n", "seeds", "{}"),
        ("impact_io_mean", "IO-weighted impact", "{}"),
        ("x_bound", "policy gap (x bound)", "{}"),
        ("x_oracle", "forecast gap (x oracle)", "{}"),
    ]
    return rows, cols

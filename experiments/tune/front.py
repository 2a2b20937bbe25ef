"""The study's outcome: every trial as a table, the feasible Pareto front, the chosen
compromise trial and how it compares with the untuned policy."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from experiments.tune.storage import safe_url
from experiments.tune.tuning import Tuning


@dataclass
class TuneOutcome:
    tuning: Tuning
    url: str
    trials: pd.DataFrame  # every trial: number, state, objectives, settings, metrics, feasible, pareto
    front: pd.DataFrame
    chosen: dict | None
    untuned: dict[str, float] | None
    improvement: list[dict] = field(default_factory=list)
    out_dir: Path | None = None
    new_trials: int = 0

    def to_json(self) -> dict:
        from experiments.results import provenance_or_none

        prov = provenance_or_none()
        return {
            **({"provenance": prov} if prov is not None else {}),
            "study": self.tuning.study,
            "storage": safe_url(self.url),
            "experiment": self.tuning.base.name,
            "policy": self.tuning.policy.label,
            "seeds": self.tuning.seeds,
            "duration_h": self.tuning.base.duration_h,
            "objectives": [o.model_dump() for o in self.tuning.spec.objectives],
            "constraints": [c.model_dump() | {"name": c.name} for c in self.tuning.spec.constraints],
            "n_trials": int((self.trials["state"] == "COMPLETE").sum()) if not self.trials.empty else 0,
            "new_trials": self.new_trials,
            "failed_trials": int((self.trials["state"] == "FAIL").sum()) if not self.trials.empty else 0,
            "pareto": self.front.to_dict(orient="records"),
            "chosen": self.chosen,
            "untuned": self.untuned,
            "improvement": self.improvement,
            "out_dir": str(self.out_dir) if self.out_dir else None,
        }


def trials_frame(t: Tuning, study) -> pd.DataFrame:
    """Every trial: number, state, objectives, constraint violation, settings, metrics."""
    rows = []
    for tr in study.get_trials(deepcopy=False):
        row: dict[str, Any] = {"number": tr.number, "state": tr.state.name, "worker": tr.user_attrs.get("worker")}
        for i, name in enumerate(t.objective_names):
            row[name] = tr.values[i] if tr.values is not None and i < len(tr.values) else math.nan
        cons = tr.constraints or {}
        row["violation"] = float(sum(max(0.0, v) for v in cons.values())) if cons else 0.0
        row["feasible"] = tr.state.name == "COMPLETE" and all(v <= 0 for v in cons.values())
        for k, v in tr.params.items():
            row[f"param:{k}"] = v
        for k, v in (tr.user_attrs.get("metrics") or {}).items():
            row[f"metric:{k}"] = v
        row["wall_s"] = tr.user_attrs.get("wall_s")
        row["error"] = tr.user_attrs.get("error")
        rows.append(row)
    return pd.DataFrame(rows)


def pareto_mask(values: np.ndarray, directions: Sequence[str]) -> np.ndarray:
    """Non-dominated rows of `values` [n, k] (minimising after flipping 'maximize')."""
    sign = np.array([1.0 if d == "minimize" else -1.0 for d in directions])
    v = values * sign
    n = len(v)
    keep = np.ones(n, bool)
    for i in range(n):
        dominated = np.all(v <= v[i], axis=1) & np.any(v < v[i], axis=1)
        if dominated.any():
            keep[i] = False
    return keep


def choose(front: pd.DataFrame, t: Tuning) -> int | None:
    """Index (in `front`) of the balanced compromise: min weighted sum of objectives scaled to [0, 1]."""
    if front.empty:
        return None
    score = np.zeros(len(front))
    for o in t.spec.objectives:
        x = front[o.metric].to_numpy(float)
        if o.direction == "maximize":
            x = -x
        span = x.max() - x.min()
        score += o.weight * ((x - x.min()) / span if span > 0 else 0.0)
    order = np.lexsort((front["number"].to_numpy(), score))
    return int(order[0])


def _improvement(t: Tuning, chosen: dict, untuned: dict[str, float]) -> list[dict]:
    """Per objective: the chosen trial against the untuned policy (same seeds and duration)."""
    improvement = []
    for o in t.spec.objectives:
        u, c = untuned.get(o.metric), chosen["objectives"][o.metric]
        if u is None:
            continue
        d = c - u
        better = (d < 0) if o.direction == "minimize" else (d > 0)
        improvement.append(
            {
                "metric": o.metric,
                "direction": o.direction,
                "untuned": u,
                "tuned": c,
                "diff": d,
                "rel_pct": 100.0 * d / abs(u) if u else None,
                "better": bool(better) if d != 0 else None,
            }
        )
    return improvement


def summarise_study(t: Tuning, study, url: str) -> TuneOutcome:
    """The trials, the feasible Pareto front and the chosen trial of `study`."""
    df = trials_frame(t, study)
    untuned = study.user_attrs.get("untuned")
    if df.empty or not (df["state"] == "COMPLETE").any():
        return TuneOutcome(t, url, df, pd.DataFrame(), None, untuned)
    df["pareto"] = False
    feas = df[df["feasible"]]
    if not feas.empty:
        mask = pareto_mask(feas[t.objective_names].to_numpy(float), t.directions)
        df.loc[feas.index[mask], "pareto"] = True
    front = df[df["pareto"]].sort_values(t.objective_names[0]).reset_index(drop=True)
    ci = choose(front, t)
    chosen = None
    improvement = []
    if ci is not None:
        row = front.iloc[ci]
        tr = study.trials[int(row["number"])]
        chosen = {
            "number": int(row["number"]),
            "objectives": {n: float(row[n]) for n in t.objective_names},
            "settings": tr.user_attrs.get("settings") or dict(tr.params),
            "metrics": tr.user_attrs.get("metrics") or {},
        }
        if untuned:
            improvement = _improvement(t, chosen, untuned)
    return TuneOutcome(t, url, df, front, chosen, untuned, improvement)

"""A trial: settings drawn from the search space, the config simulated over the study's
seeds, one value per objective and the constraints' violations recorded on the trial."""

from __future__ import annotations

import math
import os
import socket
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from common.errors import UserError
from common.interrupts import check as check_interrupt
from experiments.config import ExperimentConfig
from experiments.tune.patch import config_with, is_active
from experiments.tune.study import this_process
from experiments.tune.tuning import Tuning

#: metrics a study may name beside the fleet's own
DERIVED = {
    "rpo_violation_pct": lambda f: 100.0 - f["rpo_compliance_pct"],
    "rto_violation_pct": lambda f: 100.0 - f["rto_compliance_pct"],
}


def run_metrics(cfg: ExperimentConfig, seeds: Sequence[int]) -> dict[str, float]:
    """Mean fleet metrics (plus derived ones) of the config's first policy over `seeds`."""
    from experiments.runner import RunPlan, simulate

    rows = []
    for s in seeds:
        result, _ = simulate(RunPlan(cfg, cfg.policies[0], int(s)), lambda _fraction: check_interrupt())
        f = {k: float(v) for k, v in result.fleet.items() if isinstance(v, (int, float, np.number)) and not isinstance(v, bool)}
        for k, fn in DERIVED.items():
            try:
                f[k] = float(fn(f))
            except KeyError:
                pass
        rows.append(f)
    keys = set.intersection(*(set(r) for r in rows))
    return {k: float(np.mean([r[k] for r in rows])) for k in sorted(keys)}


def metric_value(metrics: dict[str, float], name: str) -> float:
    """A metric of the trial's runs by name; an unknown name is the spec's mistake."""
    if name not in metrics:
        raise UserError(f"tuning: metric {name!r} is not reported by runs; known: {', '.join(sorted(metrics))}")
    return metrics[name]


def suggest(trial, t: Tuning) -> dict[str, Any]:
    """The trial's settings, drawn from the search space (inactive parameters left out)."""
    values: dict[str, Any] = {}
    pdict = t.policy.model_dump(mode="json")
    for key, p in t.spec.params.items():
        if not is_active(p, values, pdict):
            continue
        if p.type == "categorical":
            values[key] = trial.suggest_categorical(key, p.choices)
        elif p.type == "int":
            values[key] = trial.suggest_int(key, int(p.low), int(p.high), step=int(p.step or 1), log=p.log)
        else:
            values[key] = trial.suggest_float(key, float(p.low), float(p.high), step=p.step, log=p.log)
    return values


def make_objective(t: Tuning) -> Callable:
    """The Optuna objective: simulate the trial's config over the study's seeds."""
    worker = f"{socket.gethostname()}:{os.getpid()}"

    owner = this_process()

    def objective(trial):
        trial.set_user_attr("process", owner)  # a trial left RUNNING by a killed process is failed later
        trial.set_user_attr("worker", worker)
        values = suggest(trial, t)
        cfg = config_with(t, values)
        t0 = time.perf_counter()
        try:
            metrics = run_metrics(cfg, t.seeds)
        except UserError:
            raise
        except Exception as err:  # noqa: BLE001 - a setting the policy cannot run with: a failed trial, not a failed study
            trial.set_user_attr("error", f"{type(err).__name__}: {err}")
            trial.set_user_attr("worker", worker)
            return [math.nan] * len(t.spec.objectives)
        trial.set_user_attr("metrics", metrics)
        trial.set_user_attr("settings", values)
        trial.set_user_attr("worker", worker)
        trial.set_user_attr("wall_s", time.perf_counter() - t0)
        for c in t.spec.constraints:
            trial.set_constraint(c.name, c.violation(metric_value(metrics, c.metric)))
        return [metric_value(metrics, o.metric) for o in t.spec.objectives]

    return objective

"""`impact_bound(cfg, seed)`: the bound for one config and seed, and `instance_bound` for any instance."""

from __future__ import annotations

import time

import numpy as np

from experiments.bound.demand import full_extra_mb, tube, window_sums
from experiments.bound.instance import Instance, from_config
from experiments.bound.relaxation import solve_instance
from experiments.bound.result import BoundResult, VolumeBound, mb_to_gb
from experiments.config import ExperimentConfig


def instance_bound(
    inst: Instance, step_s: float = 300.0, coupled: bool = False, fulls: int = 0, rel_tol: float = 1e-3, max_rounds: int = 12
) -> BoundResult:
    """Bound an instance; `step_s` is where the byte deadlines are checked (any step keeps it a bound)."""
    if fulls < 0:
        raise ValueError("fulls must be >= 0")
    t0 = time.perf_counter()
    step_ticks = max(1, round(step_s / inst.dt))
    solved, alone, binds = solve_instance(inst, step_ticks, coupled, fulls, rel_tol, max_rounds)
    solve_s = time.perf_counter() - t0
    total = inst.total_io
    vols = []
    for v, part, moved in zip(inst.volumes, solved.per_volume, solved.moved_mb or [np.zeros(1)] * len(inst.volumes)):
        n = v.costs.n
        _, due = tube(v.release_mb, np.array([n - 1]), v.rpo_ticks)
        vols.append(
            VolumeBound(
                v.volume_id,
                v.rpo_ticks * inst.dt / 3600.0,
                v.prod_io,
                part,
                part / v.prod_io if v.prod_io > 0 else 0.0,
                mb_to_gb(float(due[0])),
                mb_to_gb(fulls * full_extra_mb(v.release_mb, v.window, v.used_mb)),
                mb_to_gb(float(np.sum(moved))),
                float(v.changed.rel_sd(window_sums(v.writes, v.window).max(initial=0.0))) if v.changed is not None else 0.0,
            )
        )
    kinds = {"expected" if v.changed is not None else "exact" for v in inst.volumes}
    return BoundResult(
        experiment=inst.name,
        seed=inst.seed,
        impact_io_mean=solved.bound / total if total > 0 else 0.0,
        upper=solved.upper / total if total > 0 else 0.0,
        total_io=total,
        coupled=coupled,
        ingest_binds=binds,
        per_volume_impact_io_mean=alone.bound / total if total > 0 else 0.0,
        fulls=fulls,
        step_s=step_ticks * inst.dt,
        rounds=solved.rounds,
        feasible=solved.ok,
        message="; ".join([solved.message, *solved.messages]),
        changed_bytes=kinds.pop() if len(kinds) == 1 else "mixed",
        solve_s=solve_s,
        lp_s=solved.lp_s,
        volumes=vols,
    )


def impact_bound(cfg: ExperimentConfig, seed: int | None = None, **options) -> BoundResult:
    """The bound for the fleet and load of `cfg` run with `seed` (default: the config's seed).

    Options as `instance_bound`: `step_s`, `coupled`, `fulls`, `rel_tol`, `max_rounds`.
    """
    t0 = time.perf_counter()
    inst = from_config(cfg, cfg.seed if seed is None else seed)
    build_s = time.perf_counter() - t0
    out = instance_bound(inst, **options)
    out.build_s = build_s
    return out

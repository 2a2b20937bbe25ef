"""Turn a validated config into simulation runs: one per (policy, seed)."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import schedulers
import workloads
from common.atomic import check_writable
from common.errors import UserError
from common.interrupts import Interrupted
from common.interrupts import check as check_interrupt
from common.locks import try_lock
from experiments.config import ExperimentConfig, PolicyConfig, expand_path
from experiments.coverage import apply_past_end, load_warnings, past_end_params, rank_params
from experiments.results import provenance_or_none, write_run
from experiments.sizing import check_config_size
from sim.devices import DEVICE_CLASSES
from sim.history import HistoryRecorder, history_from_source
from sim.model import RunResult, Simulation
from sim.spec import SimSpec, VolumeSpec
from sim.tiers import TierSpec
from sim.types import LoadHistory
from workloads.base import FleetLoad, LoadSource, Offset


class RunningElsewhere(UserError):
    """The run is locked by another process that is simulating and writing it now."""


@dataclass(frozen=True)
class RunPlan:
    config: ExperimentConfig
    policy: PolicyConfig
    seed: int

    @property
    def run_id(self) -> str:
        return f"{self.policy.label}-s{self.seed}"


def plans(cfg: ExperimentConfig, policies: list[str] | None = None, seeds: list[int] | None = None) -> list[RunPlan]:
    chosen = cfg.policies
    if policies:
        known = {p.label: p for p in cfg.policies}
        missing = [p for p in policies if p not in known]
        if missing:
            raise UserError(f"policy {missing[0]!r} is not in the config; it has: {', '.join(known)}")
        chosen = [known[p] for p in policies]
    return [RunPlan(cfg, p, s) for s in (seeds or cfg.seed_list) for p in chosen]


def _group_seed(seed: int, group: int) -> int:
    return int(np.random.SeedSequence([seed, group]).generate_state(1)[0])


def build_fleet(cfg: ExperimentConfig, seed: int) -> tuple[FleetLoad, list[VolumeSpec], float]:
    """The fleet's load sources, volume specs and the calendar start (epoch seconds)."""
    tier_index = {t.name: i for i, t in enumerate(cfg.tiers)}
    preferred = min(range(len(cfg.tiers)), key=lambda i: (cfg.tiers[i].priority, i))
    built: dict[int, object] = {}
    for gi, g in enumerate(cfg.fleet):  # traces first: they may set the calendar
        if g.trace is not None:
            path = expand_path(g.path or "")
            if not Path(path).exists():
                raise UserError(f"fleet.{gi}.path: {path}: no such file or folder (set PIOP_TRACES or the path)")
            params = {**g.params, **past_end_params(g), **rank_params(cfg, g)}
            src = workloads.TRACES.create(g.trace, path=path, tick_s=cfg.tick_s, seed=_group_seed(seed, gi), **params)
            built[gi] = apply_past_end(cfg, gi, g, src)
    start = cfg.start_epoch
    if "start" not in cfg.model_fields_set:
        starts = [getattr(s, "start_epoch", None) for s in built.values()]
        start = next((s for s in starts if s is not None), start)
    sources, specs = [], []
    for gi, g in enumerate(cfg.fleet):
        if g.workload is not None:
            try:
                src = workloads.SYNTHETIC.create(
                    g.workload,
                    count=g.count,
                    tick_s=cfg.tick_s,
                    seed=_group_seed(seed, gi),
                    id_prefix=g.name or f"{g.workload}-",
                    start_epoch=start,
                    **g.params,
                )
            except (TypeError, ValueError) as err:
                raise UserError(f"fleet.{gi}.params: {err}") from None
        else:
            src = built[gi]
        rpo, rto = (g.rpo_h or cfg.rpo_h) * 3600.0, (g.rto_h or cfg.rto_h) * 3600.0
        tier = tier_index[g.tier] if g.tier else preferred
        for m in src.volumes:
            specs.append(VolumeSpec(m.volume_id, DEVICE_CLASSES[g.device], g.used_gb * 1e9, rpo, rto, tier))
        sources.append(src)
    ids = [s.volume_id for s in specs]
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise UserError(f"volume id {dup!r} appears twice in the fleet; give the groups distinct 'name' prefixes")
    return FleetLoad(sources), specs, start


def sim_spec(cfg: ExperimentConfig, volumes: list[VolumeSpec], start_epoch: float, seed: int, record_series: bool = True) -> SimSpec:
    tiers = tuple(
        TierSpec(t.name, t.media, t.ingest_mbps, t.restore_mbps, t.slots, t.capacity_gb * 1e9, t.cost_per_gb_month, t.priority)
        for t in cfg.tiers
    )
    return SimSpec(
        volumes=tuple(volumes),
        tiers=tiers,
        duration_s=cfg.duration_h * 3600.0,
        tick_s=cfg.tick_s,
        decision_s=cfg.decision_s,
        history_step_s=cfg.history_step_s,
        impact_threshold=cfg.impact_threshold,
        chunk_bytes=int(cfg.chunk_mb * (1 << 20)),
        backup_max_util=cfg.backup_max_util,
        restore_overhead_s=cfg.restore_overhead_s,
        initial_full=cfg.initial_full,
        initial_full_spread_s=cfg.initial_full_spread_h * 3600.0,
        start_epoch=start_epoch,
        seed=seed,
        record_s=cfg.record_s,
        record_series=record_series,
    )


def forecaster_name(policy: PolicyConfig) -> str | None:
    """The forecaster a policy reads: its own, else the one its scheduler class pairs with it
    (`default_forecaster`, e.g. the true future for the oracle policy)."""
    if policy.forecaster is not None:
        return policy.forecaster
    return getattr(schedulers.SCHEDULERS.get(policy.policy), "default_forecaster", None)


def reads_forecasts(policy: PolicyConfig) -> bool:
    """Whether a run of `policy` reads forecasts: a forecaster is named or paired, or the
    scheduler class declares `uses_forecasts` (a plain third-party class need not)."""
    if forecaster_name(policy) is not None:
        return True
    return bool(getattr(schedulers.SCHEDULERS.get(policy.policy), "uses_forecasts", False))


def needs_future(forecaster: str) -> bool:
    """Whether the forecaster class declares `needs_future`: it is handed the run's true load."""
    from forecasters.base import FORECASTERS

    return bool(getattr(FORECASTERS.get(forecaster), "needs_future", False))


def true_future(load: LoadSource, step_s: float) -> Callable[[float, int], np.ndarray]:
    """What a `needs_future` forecaster is handed: `future(origin_t, horizon_steps)`, the run's
    own load after the origin as a `[V, H, 2]` (iops, mbps) array, aggregated to `step_s`
    exactly as the simulator's recorder aggregates what the policies observe."""
    from forecasters.series import targets

    step_ticks = round(step_s / load.tick_s)
    kinds = [v.kind for v in load.volumes]

    memo: dict[int, np.ndarray] = {}  # step's first tick -> [V, 2]; each step is computed once

    def steps_from(first: int, count: int) -> None:
        rec = HistoryRecorder(len(load.volumes), load.tick_s, step_ticks, count, kinds, 0.0)
        n = count * step_ticks
        rec.add_ticks(load.block(first, n), 0, n)
        rows = targets(rec.history())  # [count, V, 2]
        for k in range(count):
            memo[first + k * step_ticks] = rows[k]

    def future(origin_t: float, horizon_steps: int) -> np.ndarray:
        start = int(round(origin_t / load.tick_s))
        for f in [f for f in memo if f < start]:  # origins never move back
            del memo[f]
        firsts = [start + k * step_ticks for k in range(horizon_steps)]
        missing = [k for k, f in enumerate(firsts) if f not in memo]
        if missing:  # origins move forward, so the missing steps are one run at the end
            steps_from(firsts[missing[0]], horizon_steps - missing[0])
        return np.transpose(np.stack([memo[f] for f in firsts]), (1, 0, 2))

    return future


def build_forecasts(cfg: ExperimentConfig, policy: PolicyConfig, load: LoadSource, prior: LoadHistory | None = None):
    """The forecasting service a predictive policy reads (knowing `prior`, the load before the run), or None."""
    name = forecaster_name(policy)
    if name is None:
        return None
    from forecasters.base import FORECASTERS
    from forecasters.service import ForecastService

    params = dict(policy.forecaster_params)
    if needs_future(name):
        params["future"] = true_future(load, cfg.history_step_s)
    try:
        model = FORECASTERS.create(name, **params)
        return ForecastService(
            model, horizon_steps=max(1, round(cfg.horizon_h * 3600.0 / cfg.history_step_s)), retrain=policy.retrain, prior=prior
        )
    except (TypeError, ValueError) as err:
        raise UserError(f"policy {policy.label}: forecaster settings: {err}") from None


def split_history(cfg: ExperimentConfig, load: FleetLoad, start: float) -> tuple[FleetLoad | Offset, float, LoadHistory | None]:
    """(the load the simulation runs on, its calendar start, the load before it as a history).

    With `history_h` > 0 the simulation starts that many hours into the fleet's load, and the
    hours before are what forecasters have already observed when it starts.
    """
    n_steps = round(cfg.history_h * 3600.0 / cfg.history_step_s)
    if n_steps == 0:
        return load, start, None
    prior = history_from_source(load, cfg.history_step_s, n_steps, start_epoch=start)
    ticks = round(n_steps * cfg.history_step_s / load.tick_s)
    return Offset(load, ticks), start + ticks * load.tick_s, prior


def simulate(plan: RunPlan, progress: Callable[[float], None] | None = None) -> tuple[RunResult, dict]:
    cfg = plan.config
    fleet, volumes, fleet_start = build_fleet(cfg, plan.seed)
    check_config_size(cfg, f"{cfg.name}: fleet", len(volumes))
    load, start, prior = split_history(cfg, fleet, fleet_start)
    spec = sim_spec(cfg, volumes, start, plan.seed)
    scheduler = schedulers.SCHEDULERS.create(plan.policy.policy, **plan.policy.params)
    forecasts = build_forecasts(cfg, plan.policy, load, prior)
    result = Simulation(spec, load, scheduler, forecasts=forecasts, progress=progress).run()
    if forecasts is not None:
        summary = forecasts.summary()
        result.meta["forecast"] = {"summary": summary, "events": forecasts.events}
        result.fleet.update({f"forecast_{k}": v for k, v in summary.items() if isinstance(v, (int, float))})
    meta = {
        "experiment": cfg.name,
        "run": plan.run_id,
        "policy": plan.policy.label,
        "seed": plan.seed,
        "start_epoch": start,
        "load": load.describe(),
        "warnings": load_warnings(cfg, fleet),
        **result.meta,
    }
    return result, meta


def preflight(cfg: ExperimentConfig) -> list[str]:
    """Build the fleet once before any run: its real size must fit in memory, a trace group
    with `past_end: error` must cover the run; returns the load warnings (`coverage`)."""
    fleet, volumes, _ = build_fleet(cfg, cfg.seed_list[0])
    check_config_size(cfg, f"{cfg.name}: fleet", len(volumes))
    return load_warnings(cfg, fleet)


def print_warning(message: str) -> None:
    """The default way a command says what a run replays that was never measured: stderr."""
    sys.stderr.write(f"warning: {message}\n")
    sys.stderr.flush()


def lock_path(run_dir: Path) -> Path:
    """The lock file of a run: beside its folder, so the folder itself can be replaced whole."""
    return run_dir.parent / f".{run_dir.name}.lock"


def execute(
    plan: RunPlan, out_root: Path, progress: Callable[[float], None] | None = None, skip: Callable[[], bool] | None = None
) -> dict | None:
    """Simulate one plan and write its results folder; returns its summary row.

    The output folder is checked for writability first (a read-only or full disk is found
    before the simulation, not after it). The run is locked while it is simulated and
    written (`.<run>.lock` beside its folder): a run locked by another process raises
    `RunningElsewhere`. `skip()`, asked once the lock is held, may say the run is already
    done (None is returned).
    """
    run_dir = Path(out_root) / plan.config.name / plan.run_id
    check_writable(run_dir.parent, "results folder")
    lock = try_lock(lock_path(run_dir))
    if lock is None:
        raise RunningElsewhere(f"{run_dir}: another process is running it now (running elsewhere)")
    with lock:
        if skip is not None and skip():
            return None
        t0 = time.perf_counter()
        result, meta = simulate(plan, _checked(progress))
        meta["wall_s"] = time.perf_counter() - t0
        prov = provenance_or_none()
        if prov is not None:
            meta["provenance"] = prov
        write_run(run_dir, result, plan.config, meta)
    return {"policy": plan.policy.label, "seed": plan.seed, **result.fleet}


def _checked(progress: Callable[[float], None] | None) -> Callable[[float], None]:
    """`progress`, after raising an interrupt that Python may have swallowed (`interrupts.check`)."""

    def report(fraction: float) -> None:
        check_interrupt()
        if progress is not None:
            progress(fraction)

    return report


def run_plans(
    todo: Sequence[RunPlan],
    out_root: Path,
    progress_for: Callable[[RunPlan], Callable[[float], None]] | None = None,
    on_warning: Callable[[str], None] = print_warning,
) -> list[dict]:
    """`piop run`: every plan in turn, each simulated afresh; an interrupt says what was kept."""
    if not todo:
        return []
    cfg = todo[0].config
    check_writable(Path(out_root) / cfg.name, "results folder")
    for w in preflight(cfg):
        on_warning(w)
    rows: list[dict] = []
    try:
        for plan in todo:
            row = execute(plan, out_root, progress=progress_for(plan) if progress_for else None)
            rows.append(row or {})
            check_interrupt()
    except KeyboardInterrupt:
        raise Interrupted(
            f"{len(rows)} of {len(todo)} runs kept in {Path(out_root) / cfg.name}, the run in progress discarded; "
            "`piop compare` on the same config runs only what is missing"
        ) from None
    return rows

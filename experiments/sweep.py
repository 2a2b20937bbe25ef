"""Running many (policy, seed) plans: in worker processes, resumable, one folder each.

Each plan is one run folder `results/<experiment>/<policy>-s<seed>/`, written atomically
by `experiments.runner.execute`. A finished folder whose stored config matches the plan
is skipped, so a killed sweep loses at most the runs that were in flight; a folder left
by a *different* config (other duration, fleet, policy parameters) is re-run and replaced.

Several sweeps may share a results folder (two `piop compare` of one config, on one or
several machines sharing the disk): a run is locked while it is simulated and written,
a run locked by another process is left to it ("running elsewhere"), and a run found
finished once its lock is taken is not redone. A sweep killed outright leaves at most a
lock file and a temporary folder per run in flight; the next sweep removes both (an
interrupted one removes them itself, also where a worker had to be killed).

A run that fails does not stop the others; an output that cannot be written at all
(disk full, read-only, forbidden) stops the sweep at once, since every run would fail
the same way after its whole simulation.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Protocol

import yaml

from common.errors import UserError
from common.interrupts import check as check_interrupt
from common.locks import try_lock
from common.oserrors import is_disk_error
from experiments.config import ExperimentConfig, PolicyConfig
from experiments.results import is_finished, temp_folders
from experiments.runner import RunningElsewhere, RunPlan, lock_path, reads_forecasts
from experiments.workers import run_task, stop_workers, worker_init


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


def run_plan(plan: RunPlan, out_root: str, skip_finished: bool) -> tuple[str, str, float]:
    """(run id, "ran" | "skipped" | "elsewhere", seconds) of one plan, in whichever process runs it."""
    from experiments.runner import execute
    from forecasters.threads import cap_torch_threads

    t0 = time.perf_counter()
    # the forecaster imports torch inside the run: cap its threads first
    cap_torch_threads(import_torch=reads_forecasts(plan.policy))
    root = Path(out_root)
    try:
        row = execute(plan, root, skip=(lambda: up_to_date(root, plan)) if skip_finished else None)
    except RunningElsewhere:
        return plan.run_id, "elsewhere", time.perf_counter() - t0
    return plan.run_id, "ran" if row is not None else "skipped", time.perf_counter() - t0


class ClusterRunner(Protocol):
    """Runs plans elsewhere, calling `done(run_id, status, error)` as each finishes; returns the retried run ids."""

    def run(
        self, pending: Sequence[RunPlan], out_root: Path, skip_finished: bool, done: Callable[[str, str | None, BaseException | None], None]
    ) -> list[str]: ...


@dataclass
class SweepOutcome:
    ran: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)  # finished, but by other settings: re-run
    failed: dict[str, str] = field(default_factory=dict)
    elsewhere: list[str] = field(default_factory=list)  # being run by another process
    retried: list[str] = field(default_factory=list)  # cluster: sent again (its worker was lost while it ran or waited there, or it raised)

    def line(self) -> str:
        """One line for the console: what was done, skipped, left to others, failed."""
        stale = f", {len(self.stale)} re-run (settings changed)" if self.stale else ""
        other = f", {len(self.elsewhere)} running elsewhere (another process has them)" if self.elsewhere else ""
        again = f", {len(self.retried)} retried after a lost worker or an error ({', '.join(self.retried)})" if self.retried else ""
        done = f"{len(self.ran)} runs done, {len(self.skipped)} already finished (skipped)"
        return f"{done}{stale}{other}{again}, {len(self.failed)} failed"

    def to_json(self) -> dict:
        return {
            "ran": self.ran,
            "skipped": self.skipped,
            "stale": self.stale,
            "failed": self.failed,
            "elsewhere": self.elsewhere,
            "retried": self.retried,
        }


def clear_leftovers(plans: Sequence[RunPlan], out_root: Path) -> None:
    """The lock file and temporary folders a killed process left for each of `plans` whose lock
    nobody holds (a run another process holds is left to it): at a sweep's start, what a killed
    sweep left; after an interrupt, what a worker killed after `stop_workers`' grace left."""
    for p in plans:
        rd = run_dir(out_root, p)
        temps = temp_folders(rd)
        if not temps and not lock_path(rd).exists():
            continue
        lock = try_lock(lock_path(rd))
        if lock is None:
            continue
        with lock:  # (held while removing: no other process starts writing this run meanwhile)
            for t in temps:
                shutil.rmtree(t, ignore_errors=True)


def _pending(todo: Sequence[RunPlan], out_root: Path, force: bool, out: SweepOutcome) -> list[RunPlan]:
    """The plans to run; the skipped and stale ones are noted in `out`."""
    pending: list[RunPlan] = []
    clear_leftovers(todo, out_root)  # left by a killed sweep
    for p in todo:
        if not force and up_to_date(out_root, p):
            out.skipped.append(p.run_id)
        else:
            if is_finished(run_dir(out_root, p)) and not force:
                out.stale.append(p.run_id)
            pending.append(p)
    return pending


def run_sweep(
    todo: Sequence[RunPlan],
    out_root: Path,
    jobs: int = 1,
    force: bool = False,
    on_start: Callable[[int], None] | None = None,
    on_done: Callable[[str, str | None], None] | None = None,
    cluster: ClusterRunner | None = None,
) -> SweepOutcome:
    """Run every plan not already finished; `jobs` worker processes (1: in this process),
    or the workers of `cluster` (`experiments.cluster.Cluster`; `jobs` is then unused).

    `on_start(n_to_run)` is called once, `on_done(run_id, error_or_None)` after each run.
    A failed run does not stop the others; its error is in `outcome.failed`. An output
    that cannot be written (`common.oserrors.is_disk_error`) and an interrupt stop the
    sweep: the error is raised, finished runs stay on disk.
    """
    out = SweepOutcome()
    pending = _pending(todo, out_root, force, out)
    if on_start:
        on_start(len(pending))
    if not pending:
        return out

    def done(run_id: str, status: str | None, err: BaseException | None) -> None:
        if err is not None:
            if is_disk_error(err):
                raise err
            out.failed[run_id] = f"{type(err).__name__}: {err}" if not isinstance(err, UserError) else str(err)
        elif status == "skipped":  # finished by another process meanwhile
            out.skipped.append(run_id)
            if run_id in out.stale:
                out.stale.remove(run_id)
        else:
            (out.elsewhere if status == "elsewhere" else out.ran).append(run_id)
        if on_done:
            on_done(run_id, out.failed.get(run_id))

    if cluster is not None:
        out.retried = cluster.run(pending, out_root, not force, done)
        return out
    if jobs <= 1 or len(pending) == 1:
        for p in pending:
            try:
                _, status, _ = run_plan(p, str(out_root), not force)
            except Exception as err:  # noqa: BLE001 - reported per run
                done(p.run_id, None, err)
            else:
                done(p.run_id, status, None)
            check_interrupt()
        return out
    _run_in_workers(pending, out_root, jobs, not force, done)
    return out


def _run_in_workers(
    pending: Sequence[RunPlan],
    out_root: Path,
    jobs: int,
    skip_finished: bool,
    done: Callable[[str, str | None, BaseException | None], None],
) -> None:
    # spawn: workers start clean (no forked torch/OpenMP state, no rich threads)
    pool = ProcessPoolExecutor(max_workers=min(jobs, len(pending)), mp_context=get_context("spawn"), initializer=worker_init)
    futures: dict[Future, RunPlan] = {pool.submit(run_task, run_plan, p, str(out_root), skip_finished): p for p in pending}
    try:
        remaining = set(futures)
        while remaining:
            finished, remaining = wait(remaining, timeout=1.0, return_when=FIRST_COMPLETED)
            check_interrupt()
            for f in finished:
                err = f.exception()
                done(futures[f].run_id, None if err is not None else f.result()[1], err)
    except BaseException:  # an interrupt, or an output that cannot be written: stop every worker
        # no Future.cancel() here: the executor fails the pending futures itself once its
        # workers are gone (cancelling first races with that inside the executor)
        stop_workers()
        pool.shutdown(wait=True)
        clear_leftovers(pending, out_root)  # of workers killed after the grace, before their clean-up
        raise
    pool.shutdown(wait=True)

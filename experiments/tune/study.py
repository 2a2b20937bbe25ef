"""Optuna sampler and study: opened with one-line errors, resumable, shared; trials of dead processes failed."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from typing import Any

from common.errors import UserError
from experiments.tune.quiet import quiet_optuna
from experiments.tune.tuning import Tuning


def this_process() -> dict[str, Any]:
    """Who runs a trial (stored on it when it starts): host, pid and the process's start time."""
    import psutil

    return {"host": socket.gethostname(), "pid": os.getpid(), "started": psutil.Process().create_time()}


def _is_dead(owner: dict[str, Any]) -> bool:
    """Whether the process in `owner` (`this_process()` of a trial) is gone, judged on this host."""
    import psutil

    if owner.get("host") != socket.gethostname() or "pid" not in owner:
        return False  # another machine's: its heartbeat tells (Optuna's grace period)
    try:
        return abs(psutil.Process(int(owner["pid"])).create_time() - float(owner.get("started", 0.0))) > 1e-3
    except (psutil.NoSuchProcess, psutil.AccessDenied, ValueError):
        return True


def fail_stale_trials(study, retry: Callable[[Any, Any], None] | None = None) -> list[int]:
    """Mark FAIL the study's RUNNING trials whose process on this host has died (killed with
    its command, a machine restart) and queue each again with `retry` (the heartbeat's own
    callback): a finished study must not hold trials that never end. Another machine's
    trials are left to the heartbeat (`experiments.tune.storage`)."""
    from optuna.trial import TrialState

    stale = []
    for tr in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        owner = tr.user_attrs.get("process")
        if isinstance(owner, dict) and _is_dead(owner):
            try:
                failed = study.tell(tr.number, state=TrialState.FAIL)
            except (ValueError, RuntimeError):  # finished meanwhile by its owner, or failed by another process
                continue
            stale.append(tr.number)
            if retry is not None:
                retry(study, failed)
    return stale


def make_sampler(t: Tuning, seed: int | None = None):
    """The spec's sampler, re-seeded for each trial from the trial's number (`TrialSeeded`):
    processes sharing a study never draw the same settings. With `seed`, one sampler seeded once."""
    if seed is None:
        from experiments.tune.sampling import TrialSeeded

        return TrialSeeded(lambda s: make_sampler(t, s), t.spec.sampler_seed)
    import optuna

    quiet_optuna()
    s = t.spec
    if s.sampler == "nsga2":
        pop = s.population_size or max(4, min(50, s.n_trials // 5))
        return optuna.samplers.NSGAIISampler(population_size=pop, seed=seed)
    if s.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    startup = s.startup_trials or max(3, min(10, s.n_trials // 5))
    return optuna.samplers.TPESampler(n_startup_trials=startup, multivariate=True, constant_liar=True, seed=seed)


def open_study(t: Tuning, storage, sampler=None, create: bool = True):
    """Create or load the study; a stored study with other objectives is a UserError."""
    import optuna

    try:
        if create:
            study = optuna.create_study(study_name=t.study, storage=storage, sampler=sampler, directions=t.directions, load_if_exists=True)
        else:
            study = optuna.load_study(study_name=t.study, storage=storage, sampler=sampler)
    except KeyError:
        raise UserError(f"study {t.study!r} does not exist in that storage") from None
    stored = study.user_attrs.get("objectives")
    if stored is None:
        study.set_user_attr("objectives", [o.model_dump() for o in t.spec.objectives])
        study.set_user_attr("spec", t.spec.model_dump(mode="json"))
        study.set_user_attr("experiment", t.base.name)
    elif [o["metric"] for o in stored] != t.objective_names or [d.name.lower() for d in study.directions] != t.directions:
        raise UserError(
            f"study {t.study!r} already exists with objectives {[o['metric'] for o in stored]}; "
            f"these are {t.objective_names}: use --study to start another"
        )
    return study


def stop_if_all_fail(study, trial) -> None:
    """Abort when trials only fail (a bug or a broken set-up), naming the first error."""
    from optuna.trial import TrialState

    if trial.state != TrialState.FAIL or completed_trials(study):
        return
    failed = study.get_trials(deepcopy=False, states=(TrialState.FAIL,))
    if len(failed) >= 3:
        err = next((f.user_attrs["error"] for f in failed if "error" in f.user_attrs), "see the log")
        raise UserError(f"study {study.study_name!r}: the first {len(failed)} trials all failed; first error: {err}")


def completed_trials(study) -> list:
    """The study's completed trials (not copied)."""
    from optuna.trial import TrialState

    return study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))

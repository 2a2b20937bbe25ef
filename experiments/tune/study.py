"""Optuna storage, sampler and study: opened with one-line errors, resumable, shared."""

from __future__ import annotations

import logging
import os
import re
import socket
import time
import warnings
from pathlib import Path
from typing import Any

from common.errors import UserError
from experiments.tune.tuning import Tuning


class _NoTracebackForUsers(logging.Filter):
    """Optuna logs a failed trial with its traceback (and then its value): nothing for an
    interrupt (the command prints one line), no traceback for a user's mistake."""

    def __init__(self) -> None:
        super().__init__()
        self._interrupted: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        err = record.exc_info[1] if record.exc_info else None
        found = re.match(r"Trial (\d+) failed", record.getMessage())
        if isinstance(err, KeyboardInterrupt):
            if found:
                self._interrupted.add(found.group(1))
            return False
        if found and found.group(1) in self._interrupted:  # the same trial's "failed with value None"
            self._interrupted.discard(found.group(1))
            return False
        if isinstance(err, UserError):
            record.exc_info = None
        return True


_FILTER = _NoTracebackForUsers()


def quiet_optuna() -> None:
    """Optuna's progress lines and experimental warnings off: piop prints its own."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    warnings.filterwarnings("ignore", category=FutureWarning, module="optuna")
    trial_log = logging.getLogger("optuna.study._optimize")  # where optuna reports failed trials
    if _FILTER not in trial_log.filters:
        trial_log.addFilter(_FILTER)


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


def fail_stale_trials(study) -> list[int]:
    """Mark FAIL the study's RUNNING trials whose process on this host has died (killed with
    its command, a machine restart): a finished study must not hold trials that never end."""
    from optuna.trial import TrialState

    stale = []
    for tr in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        owner = tr.user_attrs.get("process")
        if isinstance(owner, dict) and _is_dead(owner):
            try:
                study.tell(tr.number, state=TrialState.FAIL)
            except (ValueError, RuntimeError):  # finished meanwhile by its owner after all
                continue
            stale.append(tr.number)
    return stale


def safe_url(url: str) -> str:
    """The URL with any password hidden, for messages."""
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", url)


def open_storage(url: str, retries: int = 5):
    """An Optuna RDB storage, or a one-line UserError naming the URL."""
    import optuna

    quiet_optuna()
    scheme = url.split(":", 1)[0].lower() if ":" in url else ""
    if not scheme or "://" not in url:
        raise UserError(f"storage {safe_url(url)!r}: not a database URL (e.g. sqlite:///path.db, postgresql://user@host/db)")
    kwargs: dict[str, Any] = {}
    if scheme.startswith("sqlite"):
        path = url.split(":///", 1)[1] if ":///" in url else ""
        if path and path != ":memory:":
            parent = Path(path).parent
            if not parent.is_dir():
                raise UserError(f"storage {safe_url(url)!r}: folder {parent} does not exist")
        kwargs = {"connect_args": {"timeout": 120}}
    elif scheme.startswith(("postgresql", "mysql")):
        kwargs = {"pool_pre_ping": True, "connect_args": {"connect_timeout": 10}}
    last: Exception | None = None
    for attempt in range(retries):
        try:
            return optuna.storages.RDBStorage(url, engine_kwargs=kwargs, heartbeat_interval=60, grace_period=300)
        except ModuleNotFoundError as err:
            raise UserError(f"storage {safe_url(url)!r}: its database driver is not installed ({err.name})") from None
        except Exception as err:  # noqa: BLE001 - sqlalchemy / driver errors, worded below
            last = err
            msg = str(err).lower()
            if (scheme.startswith("sqlite") and "already exists" in msg) or "locked" in msg:
                time.sleep(0.2 * (attempt + 1))  # two processes creating the schema at once
                continue
            break
    first = str(last).strip().splitlines()[0] if last is not None and str(last).strip() else type(last).__name__
    if "Failed to import DB access module" in first:
        raise UserError(f"storage {safe_url(url)!r}: its database driver is not installed (PostgreSQL: psycopg2, MySQL: pymysql)")
    first = re.sub(r"^\([\w.]+\)\s*", "", first)
    problem = "cannot be opened" if scheme.startswith("sqlite") else "is unreachable"
    raise UserError(f"storage {safe_url(url)!r} {problem}: {first[:200]}")


def make_sampler(t: Tuning, seed: int):
    """The spec's sampler; TPE by default (multivariate, constant liar for parallel workers)."""
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

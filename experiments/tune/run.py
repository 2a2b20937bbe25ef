"""`tune()`: the study optimised in this process or in worker processes sharing its
storage, resumed where it stopped, then summarised and exported."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, wait
from multiprocessing import get_context
from pathlib import Path

from common.atomic import check_writable
from common.errors import UserError
from common.interrupts import Interrupted
from common.interrupts import check as check_interrupt
from common.oserrors import naming
from experiments.runner import preflight, print_warning
from experiments.tune.export import export
from experiments.tune.front import TuneOutcome, summarise_study
from experiments.tune.objective import make_objective, run_metrics
from experiments.tune.patch import config_with
from experiments.tune.storage import RetryStale, check_url, local_file, normalise_url, open_storage, safe_url
from experiments.tune.study import completed_trials, fail_stale_trials, make_sampler, open_study, stop_if_all_fail
from experiments.tune.tuning import Tuning, load_tuning
from experiments.workers import run_task, stop_workers, worker_init


def _callbacks(t: Tuning, target: int) -> list:
    """After each trial: stop at `target` completed trials, abort when trials only fail, and
    fail (and queue again) trials whose process on this host died meanwhile."""
    from optuna.study import MaxTrialsCallback
    from optuna.trial import TrialState

    retry = RetryStale(t.spec.trial_retries)
    return [
        MaxTrialsCallback(target, states=(TrialState.COMPLETE,)),
        stop_if_all_fail,
        lambda s, _tr: fail_stale_trials(s, retry),
    ]


def _optimize(t: Tuning, url: str, n_run: int) -> int:
    """Run up to `n_run` trials (stopping once the study holds n_trials completed)."""
    storage = open_storage(url, liveness=t.liveness())
    study = open_study(t, storage, create=True)
    study.sampler = make_sampler(t)
    if len(completed_trials(study)) >= t.spec.n_trials:
        return 0
    study.optimize(make_objective(t), n_trials=n_run, gc_after_trial=False, callbacks=_callbacks(t, t.spec.n_trials))
    return n_run


def _worker(tune_path: str, overrides: dict, url: str, n_run: int) -> int:
    t = load_tuning(tune_path, **overrides)
    return _optimize(t, url, n_run)


def _optimize_here(t: Tuning, study_obj, todo: int, target: int, on_progress: Callable[[int, int], None] | None) -> None:
    """`todo` trials in this process."""
    study_obj.sampler = make_sampler(t)
    cbs = [*_callbacks(t, target), lambda _s, _tr: check_interrupt()]
    if on_progress:
        cbs.append(lambda s, _tr: on_progress(len(completed_trials(s)), target))
    study_obj.optimize(make_objective(t), n_trials=todo, gc_after_trial=False, callbacks=cbs)


def _optimize_in_workers(
    tune_path: str | Path,
    overrides: dict,
    url: str,
    study_obj,
    jobs: int,
    todo: int,
    target: int,
    on_progress: Callable[[int, int], None] | None,
) -> None:
    """`todo` trials shared among `jobs` worker processes on the same storage."""
    n = min(jobs, todo)
    shares = [todo // n + (1 if i < todo % n else 0) for i in range(n)]
    kw = {k: v for k, v in overrides.items() if v is not None}
    pool = ProcessPoolExecutor(max_workers=n, mp_context=get_context("spawn"), initializer=worker_init)
    futs = [pool.submit(run_task, _worker, str(tune_path), kw, url, share) for share in shares]
    try:
        pending = set(futs)
        while pending:
            _, pending = wait(pending, timeout=1.0)
            check_interrupt()
            if on_progress:
                on_progress(len(completed_trials(study_obj)), target)
        for f in futs:
            f.result()  # re-raise a worker's error (UserError stays one line)
    except BaseException:  # an interrupt or a worker's error: the other workers stop too (their trials fail)
        stop_workers()
        pool.shutdown(wait=True)
        raise
    pool.shutdown(wait=True)


def tune(
    tune_path: str | Path,
    trials: int | None = None,
    jobs: int = 1,
    storage: str | None = None,
    study: str | None = None,
    duration_h: float | None = None,
    out_root: Path = Path("results"),
    on_progress: Callable[[int, int], None] | None = None,
) -> TuneOutcome:
    """Optimise (resuming the study), then write the front, plot and chosen config.

    Before any trial: the spec and its base config are validated whole (metric names
    included), the storage URL checked, the output folder and a SQLite or journal storage's
    folder must be writable, and trials left RUNNING by a killed process of this host are
    marked failed and queued again (before the run and after it); what the trials
    replay that the traces did not measure is said (stderr). An interrupt
    fails the trial in flight and says how far the study got.
    """
    if jobs < 1:
        raise UserError(f"--jobs: must be at least 1, not {jobs}")
    if storage is not None:  # a URL no storage takes fails before the spec's runs
        check_url(normalise_url(storage))
    overrides = {"trials": trials, "study": study, "duration_h": duration_h}
    t = load_tuning(tune_path, **overrides)
    out_dir = t.out_dir(out_root)
    check_writable(out_dir, "tuning output folder")
    for w in preflight(t.base):  # what every trial replays that the traces did not measure
        print_warning(w)
    url = normalise_url(storage or t.spec.storage or t.default_storage(out_root))
    check_url(url)
    local = local_file(url)
    if local is not None:
        check_writable(local.parent, "storage folder")
    new_file = local if local is not None and not local.exists() else None
    try:
        with storage_errors(url):
            with _removed_on_failure(new_file):
                st = open_storage(url, liveness=t.liveness())
                study_obj = open_study(t, st, create=True)
            done_before = _run_study(t, tune_path, overrides, url, study_obj, jobs, on_progress)
            fail_stale_trials(study_obj, RetryStale(t.spec.trial_retries))  # a process of this host killed meanwhile
            outcome = summarise_study(t, open_study(t, st, create=False), url)
    except KeyboardInterrupt:
        raise Interrupted(_interrupted_note(t, url)) from None
    outcome.new_trials = len(outcome.trials[outcome.trials["state"] == "COMPLETE"]) - done_before if not outcome.trials.empty else 0
    with naming(out_dir):
        export(outcome, out_dir)
    return outcome


def _run_study(
    t: Tuning, tune_path: str | Path, overrides: dict, url: str, study_obj, jobs: int, on_progress: Callable[[int, int], None] | None
) -> int:
    """Stale trials failed, the untuned reference stored, the missing trials run; returns the
    completed trials found at the start."""
    fail_stale_trials(study_obj, RetryStale(t.spec.trial_retries))
    if "untuned" not in study_obj.user_attrs:  # the reference the tuned policy is judged against
        study_obj.set_user_attr("untuned", run_metrics(config_with(t, {}), t.seeds))
    done_before = len(completed_trials(study_obj))
    todo = max(0, t.spec.n_trials - done_before)
    target = t.spec.n_trials
    if on_progress:
        on_progress(done_before, target)
    if todo:
        if jobs <= 1 or todo == 1:
            _optimize_here(t, study_obj, todo, target, on_progress)
        else:
            _optimize_in_workers(tune_path, overrides, url, study_obj, jobs, todo, target, on_progress)
    return done_before


def _interrupted_note(t: Tuning, url: str) -> str:
    """How far the study got, read back from its storage (the trial in flight is marked failed)."""
    try:
        done = len(completed_trials(open_study(t, open_storage(url, retries=1, liveness=t.liveness()), create=False)))
    except Exception:  # noqa: BLE001 - the note must not fail the interrupt
        done = None
    got = f"{done} of {t.spec.n_trials} trials complete" if done is not None else "completed trials kept"
    return f"{got} in study {t.study!r} ({safe_url(url)}), trials in flight marked failed; run the same command to resume"


@contextlib.contextmanager
def _removed_on_failure(db: Path | None) -> Iterator[None]:
    """A SQLite or journal file this command created is removed if the study cannot even be
    set up in it (a full disk leaves a half-written database otherwise)."""
    try:
        yield
    except UserError:
        if db is not None and db.exists():
            with contextlib.suppress(OSError):
                db.unlink()
        raise


@contextlib.contextmanager
def storage_errors(url: str) -> Iterator[None]:
    """A database error while the study runs (SQLite: disk full, read-only) as one line naming the storage."""
    from sqlalchemy.exc import SQLAlchemyError

    try:
        yield
    except SQLAlchemyError as err:
        first = str(getattr(err, "orig", None) or err).strip().splitlines()[0]
        raise UserError(f"storage {safe_url(url)}: {first}") from None

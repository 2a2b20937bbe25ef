"""`piop compare --cluster tcp://host:port`: the runs of a sweep on a Dask distributed cluster.

The default stays the local process pool (`experiments.sweep`); with an address (or
`$PIOP_CLUSTER`) every pending (policy, seed) run is submitted to a running Dask scheduler
and its workers simulate and write the run folders themselves, through the same
`experiments.sweep.run_plan` a local worker calls. So the results folder and the traces
must be reachable at the same paths from every worker, with the same piop installed:
`connect` checks that on every worker before any run, and fails with one line otherwise.

A worker that dies mid-run loses only that run: the scheduler hands the task to another
worker (up to its `allowed-failures`) and `submit(retries=)` re-runs a task that raised.
Finished runs are already on disk (written atomically, each under its lock), so a retry
of a run finished meanwhile is skipped, never written twice. Runs report as they finish,
wherever they ran (`as_completed`), to the same progress callback as local runs.
"""

from __future__ import annotations

import os
import secrets
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from common.atomic import atomic_write_text, check_writable
from common.errors import UserError
from common.interrupts import check as check_interrupt
from experiments.config import ExperimentConfig, expand_path
from experiments.provenance import version
from experiments.runner import RunPlan
from experiments.sweep import run_plan

#: seconds to wait for the scheduler to answer and for its first worker (`$PIOP_CLUSTER_TIMEOUT`)
ENV_TIMEOUT = "PIOP_CLUSTER_TIMEOUT"
DEFAULT_TIMEOUT_S = 10.0
#: re-runs of a run whose task raised (a worker lost mid-run is rescheduled by the scheduler itself)
RETRIES = 2

Done = Callable[[str, str | None, BaseException | None], None]


def timeout_s() -> float:
    """The connection timeout: `$PIOP_CLUSTER_TIMEOUT` seconds, else the default."""
    text = os.environ.get(ENV_TIMEOUT, "").strip()
    if not text:
        return DEFAULT_TIMEOUT_S
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise UserError(f"{ENV_TIMEOUT}: expected a positive number of seconds, got {text!r}")
    return value


def worker_check(token_file: str, token: str, trace_paths: Sequence[str]) -> dict[str, Any]:
    """Run on each worker: its piop version, whether it sees (and may write) the results
    folder the client sees, and where it finds each trace path of the config."""
    problem = None
    folder = Path(token_file).parent
    try:
        seen = Path(token_file).read_text()
    except OSError:
        seen = None
    if seen is None:
        problem = f"cannot see the results folder {folder}"
    elif seen != token:
        problem = f"sees another folder at {folder} (not the one this machine writes)"
    else:
        try:
            check_writable(folder, "results folder")
        except UserError as err:
            problem = f"cannot use the {err}"
    traces = {p: expand_path(p) for p in trace_paths}
    if problem is None:
        missing = [full for full in traces.values() if not Path(full).exists()]
        if missing:
            problem = f"cannot see the trace {missing[0]}"
    return {"version": version(), "problem": problem, "traces": traces}


def run_on_worker(plan: RunPlan, out_root: str, skip_finished: bool, argv: list[str]) -> tuple[str, str, float]:
    """`run_plan` on a worker, its provenance naming the command typed (as a local worker's does)."""
    saved = sys.argv
    sys.argv = argv  # a worker runs one task at a time (`check_workers`)
    try:
        return run_plan(plan, out_root, skip_finished)
    finally:
        sys.argv = saved


def trace_paths(cfg: ExperimentConfig) -> list[str]:
    """The trace paths of the config as written (each worker expands `$PIOP_TRACES` itself)."""
    return [g.path for g in cfg.fleet if g.trace is not None and g.path]


class Cluster:
    """A client of a checked Dask scheduler; `run` runs plans on its workers."""

    def __init__(self, client: Any, address: str):
        self.client = client
        self.address = address

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the runs' tasks and disconnect (a run already running on a worker finishes and is kept)."""
        try:
            self.client.close(timeout=5)
        except Exception:  # noqa: BLE001 - the scheduler may be gone already
            pass

    def run(self, pending: Sequence[RunPlan], out_root: Path, skip_finished: bool, done: Done) -> list[str]:
        """Submit every plan; `done(run_id, status, error)` as each finishes, anywhere.

        Returns the run ids sent to a worker more than once: lost with a worker (running
        there, or waiting there for its turn) or retried after an error. An error `done`
        raises (an output that cannot be written) or an interrupt cancels the tasks not
        yet started and is raised.
        """
        from distributed import as_completed

        root = str(Path(out_root).resolve())  # the workers' working folders are not this one
        tag = secrets.token_hex(4)
        futures = {
            self.client.submit(
                run_on_worker, p, root, skip_finished, list(sys.argv), key=f"piop-{p.run_id}-{tag}", retries=RETRIES, pure=False
            ): p
            for p in pending
        }
        retried: list[str] = []
        try:
            for future in as_completed(futures, loop=self.client.loop):
                check_interrupt()
                status, err = _outcome(future)
                run_id = futures[future].run_id
                if self.resent(future.key) > 0:
                    retried.append(run_id)
                future.release()  # its result is on disk: a worker lost later must not run it again
                done(run_id, status, err)
        except BaseException:
            self.client.cancel(list(futures))
            raise
        return retried

    def resent(self, key: str) -> int:
        """How many times the task `key` was sent again: lost with a worker, or retried (0 when unknown)."""

        def count(dask_scheduler: Any, key: str = key, retries: int = RETRIES) -> int:
            # nested: pickled by value, so the scheduler runs it without importing this module
            ts = dask_scheduler.tasks.get(key)
            return 0 if ts is None else int(ts.suspicious) + max(0, retries - int(ts.retries or 0))

        try:
            return int(self.client.run_on_scheduler(count))
        except Exception:  # noqa: BLE001 - only a figure for the summary line
            return 0


def _outcome(future: Any) -> tuple[str | None, BaseException | None]:
    """(status of `run_plan`, None) or (None, the error) of a finished task."""
    try:
        return future.result()[1], None
    except Exception as err:  # noqa: BLE001 - reported per run (KilledWorker, the run's own error, a lost scheduler)
        return None, err
    except BaseException as err:  # a cancelled task (asyncio.CancelledError); never an interrupt of this process
        if isinstance(err, KeyboardInterrupt | SystemExit):
            raise
        return None, RuntimeError(f"cancelled: {err or 'the scheduler dropped the task'}")


def check_address(address: str) -> None:
    """A `UserError` unless `address` reads as a scheduler address (a half-made client would linger)."""
    from distributed.comm.addressing import parse_address, parse_host_port
    from distributed.comm.registry import backends

    try:
        scheme, loc = parse_address(address)
        host, port = parse_host_port(loc, 8786) if scheme != "inproc" else (loc, 1)
        ok = scheme in backends and bool(host) and 0 < int(port) < 65536
    except (ValueError, TypeError):
        ok = False
    if not ok:
        raise UserError(f"--cluster {address}: not a Dask scheduler address (expected tcp://host:port)")


def connect(address: str, results_dir: Path, cfg: ExperimentConfig, on_warning: Callable[[str], None] | None = None) -> Cluster:
    """A client of the scheduler at `address`, once every worker is checked (see `worker_check`).

    One `UserError` line, naming the address, when: `distributed` is not installed, the
    address is not one, no scheduler answers within the timeout, no worker joins within
    it, a worker runs several threads (runs share process-wide state: matplotlib, torch
    threads), runs another piop version, or cannot see the results folder or a trace.
    """
    try:
        from distributed import Client
    except ImportError:
        raise UserError('--cluster: Dask distributed is not installed (pip install "piop[cluster]")') from None
    wait = timeout_s()
    where = f"--cluster {address}"
    check_address(address)
    with warnings.catch_warnings(record=True) as caught:  # e.g. mismatched package versions: one line each
        warnings.simplefilter("always")
        try:
            client = Client(address, timeout=wait, set_as_default=False, name="piop compare")
        except (OSError, TimeoutError):
            raise UserError(f"{where}: no Dask scheduler answered within {wait:g} s (is `dask scheduler` running there?)") from None
    if on_warning is not None:
        for w in caught:
            on_warning(f"{where}: {str(w.message).strip().splitlines()[0]}")
    cluster = Cluster(client, address)
    try:
        check_workers(cluster, Path(results_dir).resolve(), cfg, wait)
    except BaseException:
        cluster.close()
        raise
    return cluster


def check_scheduler(cluster: Cluster) -> None:
    """A `UserError` unless the scheduler has this piop version: it unpickles the runs' tasks."""

    def piop_version() -> str | None:  # a nested function: pickled by value, runs without piop
        from importlib.metadata import PackageNotFoundError
        from importlib.metadata import version as dist_version
        from importlib.util import find_spec

        try:
            return dist_version("piop") if find_spec("experiments") is not None else None
        except PackageNotFoundError:
            return None

    try:
        found = cluster.client.run_on_scheduler(piop_version)
    except Exception as err:  # noqa: BLE001 - e.g. a scheduler that refuses pickled functions
        raise UserError(f"--cluster {cluster.address}: cannot ask the scheduler for its piop version ({type(err).__name__})") from None
    if found != version():
        has = f"has piop {found}" if found else "cannot import piop"
        raise UserError(f"--cluster {cluster.address}: the scheduler {has}, this machine {version()}; install the same piop there")


def check_workers(cluster: Cluster, results_dir: Path, cfg: ExperimentConfig, wait: float) -> None:
    """Raise a `UserError` naming the first worker that cannot run this sweep's runs."""
    where = f"--cluster {cluster.address}"
    client = cluster.client
    try:
        client.wait_for_workers(1, timeout=wait)
    except (TimeoutError, OSError):
        raise UserError(f"{where}: the scheduler has no workers after {wait:g} s (start `dask worker {cluster.address}`)") from None
    check_scheduler(cluster)
    for addr, info in client.scheduler_info(n_workers=-1)["workers"].items():
        if int(info.get("nthreads", 1)) > 1:
            raise UserError(
                f"{where}: worker {addr} runs {info['nthreads']} threads; piop needs one per worker process "
                "(dask worker --nthreads 1 --nworkers N)"
            )
    token = secrets.token_hex(16)
    token_file = results_dir / f".piop-cluster-check-{token[:8]}"
    atomic_write_text(token_file, token)
    try:
        found = client.run(worker_check, str(token_file), token, trace_paths(cfg), on_error="return")
    finally:
        token_file.unlink(missing_ok=True)
    here = {p: expand_path(p) for p in trace_paths(cfg)}
    for addr, res in sorted(found.items()):
        if isinstance(res, BaseException):
            raise UserError(f"{where}: worker {addr} cannot run piop ({type(res).__name__}: {res}); install the same piop there")
        if res["version"] != version():
            raise UserError(f"{where}: worker {addr} has piop {res['version']}, this machine {version()}; install the same version")
        if res["problem"]:
            raise UserError(f"{where}: worker {addr} {res['problem']} (share it at the same path on every worker)")
        moved = [p for p, full in res["traces"].items() if full != here[p]]
        if moved:
            raise UserError(f"{where}: worker {addr} reads {moved[0]} as {res['traces'][moved[0]]}, this machine as {here[moved[0]]}")

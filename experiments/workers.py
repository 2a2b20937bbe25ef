"""Worker processes of `piop compare` and `piop tune`: one thread each, tied to their parent.

N workers on N cores must not each start N BLAS / OpenMP / torch threads. The torch cap
itself is `forecasters.threads.cap_torch_threads`, the one place piop sets torch threads.

A worker lives only as long as the command that started it:

- **the parent dies** (killed, crashed): the kernel sends the worker SIGKILL
  (`prctl(PR_SET_PDEATHSIG)` on Linux), and a watchdog thread that sees the parent gone
  ends the worker too (other systems, or a parent that died before the prctl). An
  orphan would otherwise finish its run, write it, and then wait forever for work,
  holding its memory.
- **Ctrl-C** goes to the whole process group; workers ignore SIGINT and leave the
  decision to the parent, which stops them with SIGTERM (`stop_workers`). SIGTERM
  raises `Stopped` in the worker, so its clean-up runs (a run's temporary folder is
  removed, an Optuna trial is marked failed) before `run_task` ends the process.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

PR_SET_PDEATHSIG = 1
#: how often the watchdog looks for the parent (seconds)
WATCH_S = 1.0


class Stopped(KeyboardInterrupt):
    """Raised in a worker by SIGTERM: the parent is stopping the work (an interrupt)."""


_in_task = False


def _on_sigterm(signum, frame) -> None:
    if not _in_task:  # idle, waiting for work: nothing to clean up
        os._exit(143)
    raise Stopped("stopped by the parent process")


def die_with_parent(parent_pid: int) -> None:
    """End this process when `parent_pid` is no longer its parent (see the module docstring)."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            pass  # the watchdog below still applies
    if os.getppid() != parent_pid:  # the parent died before the prctl took effect
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(WATCH_S)
            if os.getppid() != parent_pid:
                os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=watch, name="piop-parent-watchdog", daemon=True).start()


def worker_init() -> None:
    """Initialiser of every worker process: one BLAS / OpenMP / torch thread, tied to its parent."""
    from forecasters.threads import cap_torch_threads

    parent = multiprocessing.parent_process()
    if parent is not None and parent.pid is not None:
        die_with_parent(parent.pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _on_sigterm)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = "1"
    cap_torch_threads()


def run_task(fn: Callable[..., Any], *args: Any) -> Any:
    """Call `fn(*args)` in a worker; when the parent stops it, clean up and leave the process."""
    global _in_task
    _in_task = True
    try:
        return fn(*args)
    except Stopped:
        os._exit(143)  # 128 + SIGTERM; the executor must not hand this worker another task
    finally:
        _in_task = False


def stop_workers(grace_s: float = 10.0) -> None:
    """SIGTERM every worker process of this one, wait up to `grace_s` for their clean-up, then kill."""
    children = multiprocessing.active_children()
    for p in children:
        if p.is_alive():
            p.terminate()
    deadline = time.monotonic() + grace_s
    for p in children:
        p.join(max(0.0, deadline - time.monotonic()))
        if p.is_alive():
            p.kill()
            p.join(1.0)

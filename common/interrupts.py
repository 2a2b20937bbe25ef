"""Interrupts (Ctrl-C) that are never lost, and that know what the interrupted work kept.

Python turns SIGINT into a `KeyboardInterrupt` wherever the main thread happens to be;
when that is a finaliser or a weak-reference callback, Python prints "Exception ignored"
and the interrupt is gone: the command runs on as if nothing happened. `catch_sigint()`
installs a handler that also remembers the interrupt, and long loops call `check()` at
safe points (after a block of simulated time, after a run or a trial), which raises it
again if it was swallowed.

Long commands catch `KeyboardInterrupt` where they know how far they got and raise
`Interrupted("3 of 8 runs kept in results/x; run the same command to resume")`; the
command line prints that one line and exits 130, the shell's code for SIGINT. It stays a
`KeyboardInterrupt`, so code that lets interrupts through still does.
"""

from __future__ import annotations

import signal
import threading

_requested = False


class Interrupted(KeyboardInterrupt):
    """A `KeyboardInterrupt` with a line for the user: what was kept, how to resume."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


def _on_sigint(signum, frame) -> None:
    global _requested
    _requested = True
    raise KeyboardInterrupt


def catch_sigint() -> None:
    """Remember every SIGINT of this process (main thread only; elsewhere nothing changes)."""
    global _requested
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        _requested = False
        signal.signal(signal.SIGINT, _on_sigint)


def check() -> None:
    """Raise `KeyboardInterrupt` if an interrupt arrived (even one Python swallowed)."""
    if _requested:
        raise KeyboardInterrupt

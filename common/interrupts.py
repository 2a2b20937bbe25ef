"""An interrupt (Ctrl-C) that knows what the interrupted work kept.

Long commands catch `KeyboardInterrupt` where they know how far they got and raise
`Interrupted("3 of 8 runs kept in results/x; run the same command to resume")`; the
command line prints that one line and exits 130, the shell's code for SIGINT. It stays a
`KeyboardInterrupt`, so code that lets interrupts through still does.
"""

from __future__ import annotations


class Interrupted(KeyboardInterrupt):
    """A `KeyboardInterrupt` with a line for the user: what was kept, how to resume."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message

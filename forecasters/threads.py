"""Caps on torch's CPU threads, in one place.

A model fits and predicts with a fixed number of threads (results then do not depend on
the machine's core count), and N worker processes on N cores must not each start N
torch threads. torch is imported only where a cap is asked for, so importing this
module costs nothing.

It does set one thing: torch's OpenMP threads *sleep* rather than spin while they wait for
work (`OMP_WAIT_POLICY=PASSIVE`, unless the environment says otherwise). On a shared or
loaded machine a spinning thread holds a core another process needs, and a descheduled
one stalls every parallel region of the others: a 2-thread LSTM fit measured 4-8x slower
under load with the default. The OpenMP runtime reads the setting when torch loads, and
torch is loaded after this module (`cap_torch_threads`, `forecasters.lstm`).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run the block with torch on `n` intra-op threads, then restore the previous number."""
    import torch

    prev = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(prev)


def cap_torch_threads(n: int = 1, *, import_torch: bool = False) -> None:
    """Set torch to `n` threads for the rest of the process (a worker, a benchmark).

    Acts when torch is imported already, or with `import_torch` before work whose first
    torch import would otherwise start with every core; without torch it does nothing.
    """
    torch = sys.modules.get("torch")
    if torch is None and import_torch:
        try:
            import torch
        except ImportError:  # pragma: no cover - torch is a dependency
            return
    if torch is None:
        return
    try:
        torch.set_num_threads(n)
    except RuntimeError:  # pragma: no cover - parallel work already running
        pass

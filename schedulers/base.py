"""The scheduler protocol and its registry.

A scheduler is called every decision period with a `DecisionContext` and returns the
actions to apply now. It keeps whatever state it likes between calls, but reads the
world only through the context.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from sim.registry import Registry
from sim.types import Action, DecisionContext


@runtime_checkable
class Scheduler(Protocol):
    name: str

    def decide(self, ctx: DecisionContext) -> list[Action]: ...


SCHEDULERS: Registry[Scheduler] = Registry("policy")


def tier_index(ctx: DecisionContext, name: str | None) -> int:
    """Index of the tier called `name`, or of the preferred tier (lowest priority) if None."""
    if name is None:
        return min(ctx.tiers, key=lambda t: (t.priority, t.index)).index
    for t in ctx.tiers:
        if t.name == name:
            return t.index
    raise ValueError(f"unknown tier {name!r}; tiers: {', '.join(t.name for t in ctx.tiers)}")

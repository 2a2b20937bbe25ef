"""The scheduler contract and its registry.

A scheduler is called every decision period with a `DecisionContext` and returns the
actions to apply now. It keeps whatever state it likes between calls, but reads the
world only through the context, so the same object runs in the simulator (`sim`) and
on a real host (`host`).

Like optuna's `BaseSampler`: `decide` is required; the hooks (`reset`, `summary`) do
nothing by default, and class attributes declare what the policy needs from the
environment (`uses_forecasts`, `default_forecaster`).
"""

from __future__ import annotations

from typing import Any, ClassVar, Protocol, runtime_checkable

from common.registry import Registry
from sim.types import Action, DecisionContext


@runtime_checkable
class Scheduler(Protocol):
    name: str

    def decide(self, ctx: DecisionContext) -> list[Action]: ...


class BaseScheduler:
    """Base class for policies: required `decide`, optional hooks that do nothing."""

    name: ClassVar[str] = ""
    #: whether the environment should run a forecaster and put forecasts in the context
    uses_forecasts: ClassVar[bool] = False
    #: the forecaster the environment pairs with this policy when the config names none
    default_forecaster: ClassVar[str | None] = None

    def decide(self, ctx: DecisionContext) -> list[Action]:
        raise NotImplementedError

    def reset(self) -> None:
        """Forget run state before a new run (the environment calls it once at the start)."""

    def summary(self) -> dict[str, Any]:
        """Counters worth reporting at the end of a run; they land in `summary.json`."""
        return {}


#: policies by name; third-party packages add theirs under the entry-point group below
SCHEDULERS: Registry[Scheduler] = Registry("policy", group="piop.schedulers")


def tier_index(ctx: DecisionContext, name: str | None) -> int:
    """Index of the tier called `name`, or of the preferred tier (lowest priority) if None."""
    if name is None:
        return min(ctx.tiers, key=lambda t: (t.priority, t.index)).index
    for t in ctx.tiers:
        if t.name == name:
            return t.index
    raise ValueError(f"unknown tier {name!r}; tiers: {', '.join(t.name for t in ctx.tiers)}")

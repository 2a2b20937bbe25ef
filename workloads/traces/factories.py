"""Trace factories registered in `workloads.registry.TRACES`, one per family.

`factory(*, path, tick_s, seed, **params) -> TraceSource`. Names: `bitbrains`,
`alibaba`, `msr`, `systor`, `tencent` (`families.py`: what each is, its own
parameters) and `auto` (the family detected from the content). The parameters every
family takes are in `params.py`.
"""

from __future__ import annotations

from collections.abc import Callable

from workloads.registry import TRACES
from workloads.traces import detect as det
from workloads.traces.build_interval import interval_source
from workloads.traces.build_request import request_source
from workloads.traces.errors import TraceError
from workloads.traces.families import FAMILIES, TraceFamily
from workloads.traces.source import TraceSource

#: the builder of each level of trace
BUILDERS: dict[str, Callable[..., TraceSource]] = {"request": request_source, "interval": interval_source}


def make(family: str, *, path, tick_s, seed=None, **params) -> TraceSource:
    """Build a source of `family` ('auto' detects it from the content)."""
    if family == "auto":
        family = det.detect(path)
    fam = FAMILIES.get(family)
    if fam is None:
        raise TraceError(f"unknown trace family {family!r}; known: auto, {', '.join(det.FAMILIES)}")
    return BUILDERS[fam.level](fam, path=path, tick_s=tick_s, seed=seed, **params)


def factory_of(family: TraceFamily) -> Callable[..., TraceSource]:
    """The registry factory of one family."""
    build = BUILDERS[family.level]

    def factory(*, path, tick_s, seed=None, **params) -> TraceSource:
        return build(family, path=path, tick_s=tick_s, seed=seed, **params)

    factory.__name__ = f"{family.name}_trace"
    factory.__doc__ = f"Trace factory for {family.name!r} ({family.title}): see workloads.traces.families and .params."
    return factory


def auto_trace(*, path, tick_s, seed=None, **params) -> TraceSource:
    """Trace factory for 'auto': the family is detected from the content."""
    return make("auto", path=path, tick_s=tick_s, seed=seed, **params)


for _name, _factory in (("auto", auto_trace), *((f.name, factory_of(f)) for f in FAMILIES.values())):
    if _name not in TRACES:  # a plug-in of the same name wins
        TRACES.register(_name)(_factory)

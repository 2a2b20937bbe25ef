"""Registries of workload factories, looked up by name from experiment configs.

Synthetic factories: `factory(*, count, tick_s, seed, id_prefix, **params) -> LoadSource`.
Trace factories:     `factory(*, path, tick_s, seed, **params) -> LoadSource`.
"""

from __future__ import annotations

from common.registry import Registry
from workloads.base import LoadSource

SYNTHETIC: Registry[LoadSource] = Registry("synthetic workload", group="piop.workloads")
TRACES: Registry[LoadSource] = Registry("trace family", group="piop.trace_families")

"""Registries of workload factories, looked up by name from experiment configs.

Synthetic factories: `factory(*, count, tick_s, seed, id_prefix, **params) -> LoadSource`.
Trace factories:     `factory(*, path, tick_s, seed, **params) -> LoadSource`.
"""

from __future__ import annotations

from sim.registry import Registry
from workloads.base import LoadSource

SYNTHETIC: Registry[LoadSource] = Registry("synthetic workload")
TRACES: Registry[LoadSource] = Registry("trace family")

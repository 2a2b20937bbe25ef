"""Backup tiers: shared ingest bandwidth, job slots (a SimPy resource), stored bytes, cost."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import simpy

from common.units import DAY_S, GB

SECONDS_PER_MONTH = 30 * DAY_S


@dataclass(frozen=True)
class TierSpec:
    name: str
    media: str
    ingest_mbps: float
    restore_mbps: float
    slots: int
    capacity_bytes: float
    cost_per_gb_month: float
    priority: int = 0


class Tier:
    """A tier's live state during a run."""

    def __init__(self, env: simpy.Environment, index: int, spec: TierSpec):
        self.index = index
        self.spec = spec
        self.slots = simpy.Resource(env, capacity=spec.slots)
        self.stored_bytes = 0.0
        self.gb_seconds = 0.0  # integral of stored GB over time, for cost
        self._since = 0.0

    def integrate(self, now: float) -> None:
        """Accrue stored-GB time up to `now` (call before stored_bytes changes)."""
        self.gb_seconds += self.stored_bytes / GB * (now - self._since)
        self._since = now

    @property
    def cost(self) -> float:
        return self.gb_seconds / SECONDS_PER_MONTH * self.spec.cost_per_gb_month


def waterfill(caps: np.ndarray, total: float) -> np.ndarray:
    """Max-min fair split of `total` among jobs that can each take at most `caps[i]`."""
    if caps.size == 0 or caps.sum() <= total:
        return caps.copy()
    order = np.argsort(caps)
    c = caps[order]
    below = np.concatenate(([0.0], np.cumsum(c)[:-1]))
    level = (total - below) / (c.size - np.arange(c.size))
    i = int(np.argmax(c >= level))  # first job not capped by its own limit
    return np.minimum(caps, level[i])

"""Every volume's restore points during a run: chains, newest snapshot times, RTO estimate.

Kept as per-volume arrays because the scheduler reads them at every decision and the
scoring reads them at every tick; the chains themselves (`sim.chains`) change only when
a backup completes. Completed points add their bytes to their tier; points dropped by
retention take theirs away, which is what storage cost integrates.
"""

from __future__ import annotations

import numpy as np

from sim.chains import RestorePoint, VolumeChain
from sim.tiers import Tier
from sim.types import BackupKind


class RestoreBook:
    """Restore points of the fleet and the per-volume figures derived from them."""

    def __init__(self, n_volumes: int, tiers: list[Tier], restore_overhead_s: float):
        n = n_volumes
        self.tiers = tiers
        self.restore_mbps = [t.spec.restore_mbps for t in tiers]
        self.overhead_s = restore_overhead_s
        self.chains = [VolumeChain() for _ in range(n)]
        self.last_snap = np.full(n, -np.inf)
        self.last_full = np.full(n, -np.inf)
        self.rto_est = np.full(n, np.inf)
        self.chain_len = np.zeros(n, np.int64)

    def record(self, v: int, point: RestorePoint) -> None:
        """Add a completed restore point of volume `v` (at `point.complete_t`)."""
        now = point.complete_t
        for tier in self.tiers:
            tier.integrate(now)
        dropped = self.chains[v].add(point)
        self.tiers[point.tier].stored_bytes += point.bytes
        for p in dropped:
            self.tiers[p.tier].stored_bytes -= p.bytes
        self.last_snap[v] = max(self.last_snap[v], point.snapshot_t)
        if point.kind == BackupKind.FULL:
            self.last_full[v] = max(self.last_full[v], point.snapshot_t)
        self.rto_est[v] = self.chains[v].restore_seconds(self.restore_mbps, self.overhead_s)
        self.chain_len[v] = len(self.chains[v].restore_chain())

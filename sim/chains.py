"""Restore points, restore chains and the RTO estimate of each volume.

The chain to restore the newest point is the newest full, then the newest differential
after it (if any), then every incremental after that. Its estimated restore time is
the chain's bytes read at each tier's restore rate plus an overhead per restore point.
Retention keeps the current and the previous full's chains; older points are deleted
when a new full completes (their bytes leave the tier, which is what storage cost sees).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from common.units import MB
from sim.types import BackupKind


@dataclass(frozen=True)
class RestorePoint:
    kind: BackupKind
    snapshot_t: float
    complete_t: float
    bytes: float
    tier: int


@dataclass
class VolumeChain:
    points: list[RestorePoint] = field(default_factory=list)

    def add(self, point: RestorePoint) -> list[RestorePoint]:
        """Append a completed point; return the points deleted by retention."""
        self.points.append(point)
        if len(self.points) > 1 and self.points[-2].snapshot_t > point.snapshot_t:
            self.points.sort(key=lambda p: p.snapshot_t)
        if point.kind != BackupKind.FULL:
            return []
        fulls = [i for i, p in enumerate(self.points) if p.kind == BackupKind.FULL]
        if len(fulls) <= 2:
            return []
        cut = fulls[-2]
        dropped, self.points = self.points[:cut], self.points[cut:]
        return dropped

    def restore_chain(self) -> list[RestorePoint]:
        """Points read to restore the newest restore point."""
        last_full = max((i for i, p in enumerate(self.points) if p.kind == BackupKind.FULL), default=None)
        if last_full is None:
            return []
        after = self.points[last_full + 1 :]
        diffs = [i for i, p in enumerate(after) if p.kind == BackupKind.DIFFERENTIAL]
        if diffs:
            d = diffs[-1]
            return [self.points[last_full], after[d]] + [p for p in after[d + 1 :] if p.kind == BackupKind.INCREMENTAL]
        return [self.points[last_full]] + [p for p in after if p.kind == BackupKind.INCREMENTAL]

    def restore_seconds(self, restore_mbps: list[float], overhead_s: float) -> float:
        chain = self.restore_chain()
        if not chain:
            return float("inf")
        return sum(p.bytes / (restore_mbps[p.tier] * MB) + overhead_s for p in chain)

"""What one simulation run needs, in simulator units (seconds, bytes); built by experiments."""

from __future__ import annotations

from dataclasses import dataclass

from sim.devices import DeviceClass
from sim.tiers import TierSpec


@dataclass(frozen=True)
class VolumeSpec:
    volume_id: str
    device: DeviceClass
    used_bytes: float
    rpo_s: float
    rto_s: float
    initial_tier: int = 0  # where the pre-existing full backup at t=0 lives


@dataclass(frozen=True)
class SimSpec:
    volumes: tuple[VolumeSpec, ...]
    tiers: tuple[TierSpec, ...]
    duration_s: float
    tick_s: float = 10.0
    decision_s: float = 10.0
    history_step_s: float = 300.0
    impact_threshold: float = 0.2
    chunk_bytes: int = 1 << 20
    backup_max_util: float = 0.95  # device headroom a backup may use
    restore_overhead_s: float = 60.0  # per restore point in a chain
    initial_full: bool = True  # every volume starts with a full backup at t=0
    # ...taken up to this long before t=0, spread evenly over the volumes (with an empty
    # incremental at t=0, so no restore point is stale at the start): weekly fulls then come
    # due spread over the week instead of all at once
    initial_full_spread_s: float = 0.0
    start_epoch: float = 1704067200.0  # 2024-01-01 00:00 UTC, a Monday
    seed: int = 0
    record_s: float = 60.0  # resolution of the recorded time series
    record_series: bool = True
    block_ticks: int = 0  # ticks per load block; 0 = one hour

    def __post_init__(self) -> None:
        def multiple(a: float, b: float) -> bool:
            return abs(a / b - round(a / b)) < 1e-9 and round(a / b) >= 1

        for name, value in (("decision_s", self.decision_s), ("history_step_s", self.history_step_s), ("record_s", self.record_s)):
            if not multiple(value, self.tick_s):
                raise ValueError(f"{name} ({value} s) must be a whole multiple of tick_s ({self.tick_s} s)")
        if self.duration_s < self.tick_s:
            raise ValueError("duration must be at least one tick")
        if not self.volumes or not self.tiers:
            raise ValueError("a run needs at least one volume and one tier")

    @property
    def n_ticks(self) -> int:
        return int(round(self.duration_s / self.tick_s))

    def ticks(self, seconds: float) -> int:
        return int(round(seconds / self.tick_s))

"""Backup jobs as the simulator tracks them (one live job per volume at most)."""

from __future__ import annotations

from dataclasses import dataclass, field

import simpy

from sim.types import BackupKind


@dataclass
class Job:
    volume: int
    kind: BackupKind
    tier: int
    queued_t: float
    done: simpy.Event
    reason: str = ""
    forced: bool = False
    pause_on_start: bool = False
    snapshot_t: float = float("nan")  # set when the job gets its tier slot
    size_bytes: float = 0.0
    moved_bytes: float = 0.0
    complete_t: float = float("nan")
    pauses: int = 0
    extra: dict = field(default_factory=dict)

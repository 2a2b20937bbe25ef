"""The load-source interface every workload (synthetic or replayed trace) implements.

A `LoadSource` covers a group of volumes and hands the simulator *blocks* of per-tick
load, so a fleet of thousands of volumes never needs its whole series in memory.

Contract (tests rely on it):
- `block(start, n)` is a pure function of the source's seed and the tick range: the
  values at a tick never depend on how the range was requested (block boundaries), so
  the simulator, the forecasters and the oracle all see the same series.
- Ticks past the source's natural end are still served (held, looped or zero, as the
  source documents): the oracle forecaster looks past the simulated duration.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Protocol, runtime_checkable

import numpy as np

from common.checks import require

#: Names of the per-tick series a block carries, in this order.
SERIES: tuple[str, ...] = (
    "read_iops",
    "write_iops",
    "read_mbps",
    "write_mbps",
    "cpu_pct",
    "mem_pct",
    "net_mbps",
)


@dataclass(frozen=True)
class WorkingSet:
    """Where writes land, for changed-block tracking without per-write offsets.

    Chunk ranks follow a Zipf law: the i-th hottest chunk receives writes with
    probability proportional to `i ** -zipf_s`. The larger `zipf_s`, the more writes
    re-dirty the same chunks, so unique dirty bytes grow sub-linearly with writes
    (about as `writes ** (1 / zipf_s)`). Roughly: 1.9 gives an OLTP database a few
    percent of its volume per day, 1.5 lets a busy file server change most of its
    volume in a day.
    """

    zipf_s: float = 1.7

    def __post_init__(self) -> None:
        require(1.0 < self.zipf_s <= 4.0, "zipf_s", "must be in (1, 4]", self.zipf_s, where="working set")


@dataclass(frozen=True)
class VolumeMeta:
    """Static facts about one volume's workload: id, kind and application metadata."""

    volume_id: str
    kind: str  # "database" | "vm" | "fileserver" | another workload kind
    app: dict[str, str | float] = field(default_factory=dict)
    working_set: WorkingSet = field(default_factory=WorkingSet)
    #: mean write I/O size in bytes; one write I/O dirties one CBT chunk
    write_io_bytes: int = 64 * 1024


@dataclass
class Extents:
    """Exact written extents for one volume inside a block (request-level traces).

    `tick` is relative to the block start; offsets and lengths are in bytes.
    """

    tick: np.ndarray  # int32, non-decreasing
    offset: np.ndarray  # int64
    length: np.ndarray  # int64


@dataclass
class LoadBlock:
    """Per-tick load for a tick range: each array is float32 `[n_ticks, n_volumes]`."""

    start_tick: int
    read_iops: np.ndarray
    write_iops: np.ndarray
    read_mbps: np.ndarray
    write_mbps: np.ndarray
    cpu_pct: np.ndarray
    mem_pct: np.ndarray
    net_mbps: np.ndarray
    #: volume column -> exact write extents; volumes absent here use the working-set model
    extents: dict[int, Extents] = field(default_factory=dict)

    @property
    def n_ticks(self) -> int:
        return int(self.read_iops.shape[0])

    @property
    def iops(self) -> np.ndarray:
        return self.read_iops + self.write_iops

    @property
    def mbps(self) -> np.ndarray:
        return self.read_mbps + self.write_mbps

    @classmethod
    def concat_volumes(cls, blocks: list[LoadBlock]) -> LoadBlock:
        """Join blocks of the same tick range side by side (volume axis)."""
        if len(blocks) == 1:
            return blocks[0]
        arrays = {s: np.concatenate([getattr(b, s) for b in blocks], axis=1) for s in SERIES}
        extents: dict[int, Extents] = {}
        offset = 0
        for b in blocks:
            for col, ext in b.extents.items():
                extents[offset + col] = ext
            offset += b.read_iops.shape[1]
        return cls(start_tick=blocks[0].start_tick, extents=extents, **arrays)

    @classmethod
    def zeros(cls, start_tick: int, n_ticks: int, n_volumes: int) -> LoadBlock:
        return cls(start_tick=start_tick, **{s: np.zeros((n_ticks, n_volumes), np.float32) for s in SERIES})


@runtime_checkable
class LoadSource(Protocol):
    """A group of volumes whose load can be read block by block."""

    tick_s: float
    volumes: list[VolumeMeta]

    def block(self, start_tick: int, n_ticks: int) -> LoadBlock:
        """Load for ticks `[start_tick, start_tick + n_ticks)` (see the module contract)."""
        ...

    def describe(self) -> dict[str, object]:
        """Modelling assumptions worth recording in a run's metadata (JSON-able)."""
        ...


class FleetLoad:
    """Several sources side by side: the simulator's single view of the fleet's load."""

    def __init__(self, sources: list[LoadSource]):
        if not sources:
            raise ValueError("a fleet needs at least one load source")
        ticks = {s.tick_s for s in sources}
        if len(ticks) != 1:
            raise ValueError(f"load sources disagree on tick length: {sorted(ticks)}")
        self.sources = sources
        self.tick_s = sources[0].tick_s
        self.volumes = [v for s in sources for v in s.volumes]

    def block(self, start_tick: int, n_ticks: int) -> LoadBlock:
        return LoadBlock.concat_volumes([s.block(start_tick, n_ticks) for s in self.sources])

    def describe(self) -> dict[str, object]:
        return {"sources": [s.describe() for s in self.sources]}


class Offset:
    """`source` seen from `ticks` ticks in: tick 0 here is tick `ticks` there.

    Lets a simulation start after a stretch of load that forecasters learn from (the
    experiment's `history_h`) without the load sources knowing about it.
    """

    def __init__(self, source: LoadSource, ticks: int):
        if ticks < 0:
            raise ValueError(f"offset must be >= 0 ticks, got {ticks}")
        self.source = source
        self.ticks = int(ticks)
        self.tick_s = source.tick_s
        self.volumes = source.volumes

    def block(self, start_tick: int, n_ticks: int) -> LoadBlock:
        # extents' ticks are relative to the block: only the block's start moves
        return replace(self.source.block(start_tick + self.ticks, n_ticks), start_tick=start_tick)

    def describe(self) -> dict[str, object]:
        return {**self.source.describe(), "offset_ticks": self.ticks}

"""The small public types the simulator publishes to forecasters and schedulers.

Schedulers see a `DecisionContext` and answer with `Action`s; forecasters see a
`LoadHistory` and answer with a `Forecast`. Nothing else of `sim` is their business:
the device model (`sim.devices`) is re-exported here, so a policy predicts impact with
the same code the simulator scores it with, importing only this module.
All per-volume fields are NumPy arrays indexed by volume position in the fleet.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np

from sim.devices import (
    BACKUP_IO_MB,
    DEVICE_CLASSES,
    U_MAX,
    DeviceClass,
    impact,
    impact_of_utilisation,
    latency_ms,
    latency_of_utilisation,
    rate_for_impact,
    rate_for_utilisation,
    utilisation,
    utilisation_with_backup,
)

__all__ = [
    "BACKUP_IO_MB",
    "DEVICE_CLASSES",
    "U_MAX",
    "Action",
    "BackupKind",
    "DecisionContext",
    "DeviceClass",
    "Forecast",
    "JobState",
    "LoadHistory",
    "LoadLabel",
    "Pause",
    "Resume",
    "Start",
    "Throttle",
    "TierView",
    "VolumeTable",
    "impact",
    "impact_of_utilisation",
    "latency_ms",
    "latency_of_utilisation",
    "rate_for_impact",
    "rate_for_utilisation",
    "utilisation",
    "utilisation_with_backup",
]


class BackupKind(IntEnum):
    FULL = 0
    INCREMENTAL = 1
    DIFFERENTIAL = 2


class JobState(IntEnum):
    NONE = 0
    QUEUED = 1  # waiting for a tier slot
    RUNNING = 2
    PAUSED = 3


class LoadLabel(IntEnum):
    NORMAL = 0
    BURST = 1  # high and short
    SUSTAINED = 2  # high and long


# ----------------------------------------------------------------------------- actions


@dataclass(frozen=True)
class Start:
    """Start a backup of `volume`; `rate_mbps=None` means unthrottled."""

    volume: int
    kind: BackupKind
    tier: int
    rate_mbps: float | None = None
    reason: str = ""
    forced: bool = False  # an RPO-safety decision taken despite load


@dataclass(frozen=True)
class Throttle:
    volume: int
    rate_mbps: float | None
    reason: str = ""


@dataclass(frozen=True)
class Pause:
    volume: int
    reason: str = ""


@dataclass(frozen=True)
class Resume:
    volume: int
    rate_mbps: float | None = None
    reason: str = ""


Action = Start | Throttle | Pause | Resume


# ----------------------------------------------------------------------------- static tables


@dataclass(frozen=True)
class VolumeTable:
    """Static per-volume facts (device, targets, sizes)."""

    ids: list[str]
    kinds: list[str]
    device: list[str]
    max_iops: np.ndarray
    max_mbps: np.ndarray
    base_latency_ms: np.ndarray
    used_bytes: np.ndarray
    rpo_s: np.ndarray
    rto_s: np.ndarray

    @property
    def n(self) -> int:
        return len(self.ids)


@dataclass(frozen=True)
class TierView:
    """A backup tier as a scheduler sees it at a decision."""

    index: int
    name: str
    media: str
    ingest_mbps: float
    restore_mbps: float
    slots: int
    busy: int  # jobs holding a slot (running or paused)
    queued: int  # jobs waiting for a slot
    priority: int  # lower is preferred
    cost_per_gb_month: float
    stored_bytes: float
    capacity_bytes: float


# ----------------------------------------------------------------------------- history & forecast


@dataclass
class LoadHistory:
    """Observed load at the forecasting resolution, up to (not past) `end_t`.

    Arrays are `[n_steps, n_volumes]`, step means of production load. `times[i]` is the
    start of step i in simulated seconds; `start_epoch` is the calendar time of t=0, for
    time-of-day / day-of-week features.
    """

    step_s: float
    start_epoch: float
    times: np.ndarray
    iops: np.ndarray
    mbps: np.ndarray
    cpu_pct: np.ndarray
    mem_pct: np.ndarray
    net_mbps: np.ndarray
    kinds: list[str]

    @property
    def n_steps(self) -> int:
        return int(self.times.shape[0])

    @property
    def end_t(self) -> float:
        return float(self.times[-1] + self.step_s) if self.n_steps else 0.0

    def tail(self, n_steps: int) -> LoadHistory:
        """The last `n_steps` steps (a view)."""
        sl = slice(max(0, self.n_steps - n_steps), None)
        return LoadHistory(
            self.step_s,
            self.start_epoch,
            self.times[sl],
            self.iops[sl],
            self.mbps[sl],
            self.cpu_pct[sl],
            self.mem_pct[sl],
            self.net_mbps[sl],
            self.kinds,
        )


@dataclass
class Forecast:
    """Per-volume forecasts over `horizon` steps of `step_s` from `origin_t`.

    `mean` and `upper` are `[n_volumes, horizon, 2]` with the last axis (iops, mbps);
    `upper` is the `quantile` (e.g. 0.9) forecast. `labels` is `[n_volumes, horizon]`
    of `LoadLabel` values.
    """

    origin_t: float
    step_s: float
    mean: np.ndarray
    upper: np.ndarray
    labels: np.ndarray
    quantile: float = 0.9
    model: str = ""

    @property
    def horizon(self) -> int:
        return int(self.mean.shape[1])


# ----------------------------------------------------------------------------- decision context


@dataclass
class DecisionContext:
    """What a scheduler may look at when it decides (observations up to the last tick)."""

    t: float
    tick: int
    tick_s: float
    volumes: VolumeTable
    tiers: list[TierView]
    impact_threshold: float
    start_epoch: float  # calendar time of t=0 (Unix seconds, UTC)
    backup_max_util: float  # device utilisation a backup may bring the source up to
    restore_overhead_s: float  # added per restore point of a chain in the RTO estimate
    history_step_s: float  # step of `history()` and of the forecasts' load history
    # restore points
    rp_age_s: np.ndarray
    last_snapshot_t: np.ndarray
    last_full_t: np.ndarray
    rto_estimate_s: np.ndarray
    chain_len: np.ndarray
    # running / queued job per volume (at most one)
    job_kind: np.ndarray  # int8, -1 when none
    job_state: np.ndarray  # JobState values
    job_tier: np.ndarray  # int8, -1 when none
    job_rate_mbps: np.ndarray  # rate achieved in the last tick
    job_throttle_mbps: np.ndarray  # inf when unthrottled
    job_remaining_bytes: np.ndarray
    # last tick's observations
    prod_iops: np.ndarray
    prod_mbps: np.ndarray
    impact: np.ndarray
    # lazily computed (changed-block tracking is updated on demand)
    _dirty: Callable[[], tuple[np.ndarray, np.ndarray]] = field(repr=False, default=None)  # type: ignore[assignment]
    _history: Callable[[], LoadHistory] | None = field(repr=False, default=None)
    forecast: Forecast | None = None

    def dirty_bytes(self) -> tuple[np.ndarray, np.ndarray]:
        """(bytes dirty since last backup, bytes dirty since last full) per volume."""
        return self._dirty()

    def history(self) -> LoadHistory:
        if self._history is None:
            raise RuntimeError("this run keeps no load history")
        return self._history()

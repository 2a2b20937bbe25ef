"""Experiment configs: the pydantic schema and the YAML loader with one-line errors.

Hours and GB in the file (what people think in); seconds and bytes in the simulator.
"""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from common import configfile
from common.configfile import read_yaml  # noqa: F401  (the tuning spec is read with it too)
from common.errors import UserError
from common.strict import Strict
from sim.devices import DEVICE_CLASSES

DEFAULT_TRACES = "../shared/traces"


class VolumeGroup(Strict):
    """A group of volumes: `count` synthetic volumes of one workload, or a trace's volumes."""

    workload: str | None = None  # synthetic generator name
    trace: str | None = None  # trace family ("bitbrains", "alibaba", ..., or "auto")
    path: str | None = None  # trace file or folder ($PIOP_TRACES expands, default ../shared/traces)
    count: int = Field(1, ge=1)
    name: str | None = None  # volume id prefix
    device: str = "ssd"
    used_gb: float = Field(200.0, gt=0)
    rpo_h: float | None = Field(None, gt=0)
    rto_h: float | None = Field(None, gt=0)
    tier: str | None = None  # tier of the pre-existing full backup (default: preferred tier)
    params: dict[str, Any] = Field(default_factory=dict)
    # a trace shorter than the run (history_h + duration_h): repeat it, serve zeros, hold each
    # volume's last value, or refuse the run; default: the trace family's own (with a warning)
    past_end: Literal["loop", "zeros", "hold", "error"] | None = None

    @model_validator(mode="after")
    def _one_source(self) -> VolumeGroup:
        if (self.workload is None) == (self.trace is None):
            raise ValueError("give exactly one of 'workload' (synthetic) or 'trace'")
        if self.trace is not None and not self.path:
            raise ValueError("a trace group needs 'path'")
        if self.past_end is not None and self.trace is None:
            raise ValueError("past_end applies to trace groups only (synthetic load never ends)")
        loop = self.params.get("loop")
        if self.past_end in ("loop", "zeros") and loop is not None and bool(loop) != (self.past_end == "loop"):
            raise ValueError(f"past_end: {self.past_end} contradicts params.loop: {loop}")
        return self

    @field_validator("device")
    @classmethod
    def _device(cls, v: str) -> str:
        if v not in DEVICE_CLASSES:
            raise ValueError(f"unknown device class {v!r}; known: {', '.join(DEVICE_CLASSES)}")
        return v


class TierConfig(Strict):
    name: str
    media: str = "hdd"
    ingest_mbps: float = Field(gt=0)
    restore_mbps: float = Field(gt=0)
    slots: int = Field(4, ge=1)
    capacity_gb: float = Field(1e6, gt=0)
    cost_per_gb_month: float = Field(0.02, ge=0)
    priority: int = 0


def default_tiers() -> list[TierConfig]:
    """The two tiers a config gets when it names none (also the benchmark's)."""
    return [
        TierConfig(
            name="ssd", media="ssd", ingest_mbps=1500, restore_mbps=1200, slots=4, capacity_gb=50_000, cost_per_gb_month=0.08, priority=0
        ),
        TierConfig(
            name="hdd", media="hdd", ingest_mbps=600, restore_mbps=300, slots=8, capacity_gb=500_000, cost_per_gb_month=0.015, priority=1
        ),
    ]


class PolicyConfig(Strict):
    policy: str
    name: str | None = None  # label in results (default: the policy name)
    params: dict[str, Any] = Field(default_factory=dict)
    forecaster: str | None = None
    forecaster_params: dict[str, Any] = Field(default_factory=dict)
    retrain: dict[str, Any] = Field(default_factory=dict)

    @property
    def label(self) -> str:
        return self.name or (f"{self.policy}-{self.forecaster}" if self.forecaster else self.policy)


class ExperimentConfig(Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = ""
    seed: int = 0
    seeds: list[int] | None = None  # several seeds (compare); default [seed]
    duration_h: float = Field(168.0, gt=0)
    tick_s: float = Field(10.0, gt=0)
    decision_s: float = Field(10.0, gt=0)
    history_step_s: float = Field(300.0, gt=0)
    horizon_h: float = Field(6.0, gt=0)
    # load before the simulated span that forecasters may learn from: the fleet's load is
    # read from `start` on, and the simulation (every policy alike) begins this much later
    history_h: float = Field(0.0, ge=0)
    start: datetime = datetime(2024, 1, 1, tzinfo=UTC)
    impact_threshold: float = Field(0.2, gt=0)
    rpo_h: float = Field(6.0, gt=0)
    rto_h: float = Field(4.0, gt=0)
    chunk_mb: float = Field(1.0, gt=0)
    backup_max_util: float = Field(0.95, gt=0, lt=1)
    restore_overhead_s: float = Field(60.0, ge=0)
    initial_full: bool = True
    # the initial fulls were taken up to this long before the start, spread over the volumes
    initial_full_spread_h: float = Field(0.0, ge=0)
    record_s: float = Field(60.0, gt=0)
    fleet: list[VolumeGroup] = Field(min_length=1)
    tiers: list[TierConfig] = Field(default_factory=default_tiers, min_length=1)
    policies: list[PolicyConfig] = Field(min_length=1)

    @field_validator("start")
    @classmethod
    def _utc(cls, v: datetime) -> datetime:
        return v if v.tzinfo else v.replace(tzinfo=UTC)

    @model_validator(mode="after")
    def _consistent(self) -> ExperimentConfig:
        shortest = max(self.decision_s, self.record_s)
        if self.duration_h * 3600.0 < shortest:
            what = "decision period (decision_s)" if self.decision_s >= self.record_s else "recorded step (record_s)"
            raise ValueError(
                f"duration_h ({self.duration_h:g} h = {self.duration_h * 3600.0:g} s) is shorter than one {what} of "
                f"{shortest:g} s: nothing would be decided or recorded"
            )
        steps = self.history_h * 3600.0 / self.history_step_s
        if abs(steps - round(steps)) > 1e-9:
            raise ValueError(f"history_h ({self.history_h} h) must be a whole number of history steps ({self.history_step_s:g} s)")
        for field_name in ("decision_s", "history_step_s", "record_s"):
            value = getattr(self, field_name)
            if abs(value / self.tick_s - round(value / self.tick_s)) > 1e-9:
                raise ValueError(f"{field_name} ({value} s) must be a whole multiple of tick_s ({self.tick_s} s)")
        names = [t.name for t in self.tiers]
        if len(set(names)) != len(names):
            raise ValueError(f"tier names must be unique: {names}")
        labels = [p.label for p in self.policies]
        if len(set(labels)) != len(labels):
            raise ValueError(f"policy labels must be unique (set 'name'): {labels}")
        return self

    @property
    def seed_list(self) -> list[int]:
        return list(self.seeds) if self.seeds else [self.seed]

    @property
    def start_epoch(self) -> float:
        return self.start.timestamp()


def expand_path(path: str) -> str:
    """Expand `$PIOP_TRACES` (default ../shared/traces), other env vars and `~`."""
    traces = os.environ.get("PIOP_TRACES", DEFAULT_TRACES)
    path = re.sub(r"\$\{?PIOP_TRACES\}?", traces.replace("\\", "/"), path)
    return os.path.expanduser(os.path.expandvars(path))


def format_validation(path: Path, err: ValidationError) -> str:
    """The first pydantic error as one line naming the file and the field (`path: a.b: msg`);
    a rule across fields is worded from its field (`path: duration_h (...) is shorter ...`)."""
    e = err.errors()[0]
    msg = e["msg"].removeprefix("Value error, ")
    if not e["loc"] and msg.split(" ", 1)[0] in ExperimentConfig.model_fields:
        more = f" (and {err.error_count() - 1} more)" if err.error_count() > 1 else ""
        return f"{path}: {msg}{more}"
    return configfile.format_validation(path, err)


def parse_config(data: Any, path: Path | str = "<config>") -> ExperimentConfig:
    """Validate a config mapping; raise `UserError` with one line naming the field."""
    path = Path(path)
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a mapping of settings at the top level")
    try:
        cfg = ExperimentConfig.model_validate(data)
    except ValidationError as err:
        raise UserError(format_validation(path, err)) from None
    from experiments.config_checks import check_semantics  # the registries: loaded only now

    check_semantics(cfg, path)
    return cfg


def load_config(path: str | Path, overrides: dict[str, Any] | None = None) -> ExperimentConfig:
    """Read and validate a YAML experiment config."""
    path = Path(path)
    data = read_yaml(path)
    if isinstance(data, dict) and overrides:
        data = {**data, **{k: v for k, v in overrides.items() if v is not None}}
    return parse_config(data, path)

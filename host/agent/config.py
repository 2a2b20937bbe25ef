"""The agent's YAML config: volumes, backup tiers as real targets, policy and forecaster.

Durations carry their unit (`10s`, `0.5s`, `5m`, `4h`, `1d`, `1w`; a bare number is
seconds), so a test can run the whole loop on a scale of seconds and a host on hours
with the same schema. Relative paths are relative to the config file's folder.
Validated like experiment configs: unknown keys, bad values, an unknown policy or
forecaster, a device model that is neither a class name nor a readable `device.yaml`:
one line naming the file and the field (`UserError`, exit code 2). A volume whose paths
are missing is *not* a config error: the agent says so in one line and serves the others.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, model_validator

from common.configfile import read_yaml, validate
from common.errors import UserError
from common.strict import Strict
from sim.types import DEVICE_CLASSES, DeviceClass

UNITS = {"": 1.0, "s": 1.0, "ms": 1e-3, "m": 60.0, "min": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
NAME = r"^[A-Za-z0-9_.-]+$"


def parse_duration(value: Any) -> float:
    """'10s', '0.5s', '5m', '4h', '1d', '1w' or a number of seconds -> seconds."""
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r}")
    if isinstance(value, int | float):
        return float(value)
    m = re.fullmatch(r"\s*([-+]?[0-9]*\.?[0-9]+(?:e[-+]?[0-9]+)?)\s*([a-z]*)\s*", str(value).lower())
    if not m or m.group(2) not in UNITS:
        raise ValueError(f"not a duration: {value!r} (e.g. 10s, 5m, 4h, 1d; a bare number is seconds)")
    return float(m.group(1)) * UNITS[m.group(2)]


Seconds = Annotated[float, BeforeValidator(parse_duration), Field(gt=0)]
SecondsOrZero = Annotated[float, BeforeValidator(parse_duration), Field(ge=0)]


class ResticTarget(Strict):
    """A restic repository (any location restic accepts) and its password file."""

    repository: str
    password_file: str
    init: bool = False  # create the repository when it does not exist yet
    args: list[str] = Field(default_factory=list)  # extra global options, e.g. ["--limit-upload", "5000"]


class TierConfig(Strict):
    name: str = Field(pattern=NAME)
    media: str = "hdd"
    ingest_mbps: float = Field(gt=0)
    restore_mbps: float = Field(gt=0)
    slots: int = Field(1, ge=1)
    capacity_gb: float = Field(1e6, gt=0)
    cost_per_gb_month: float = Field(0.02, ge=0)
    priority: int = 0
    restic: ResticTarget | None = None
    command: str | None = None  # template: {path} {paths} {kind} {tier} {volume} {job}

    @model_validator(mode="after")
    def _one_target(self) -> TierConfig:
        if (self.restic is None) == (self.command is None):
            raise ValueError("give exactly one of 'restic' (a repository) or 'command' (a backup command template)")
        return self


class VolumeConfig(Strict):
    name: str = Field(pattern=NAME)
    paths: list[str] = Field(min_length=1)
    device: str | None = None  # block device (sda, /dev/sda); default: the one holding paths[0]
    kind: str = "vm"  # workload kind (application metadata): database, vm, fileserver, ...
    rpo: Seconds
    rto: Seconds
    device_model: str | None = None  # default: the config's device_model
    command: str | None = None  # this volume's own backup command (overrides the tiers' targets)


class HistoryConfig(Strict):
    store: str | None = None  # a `piop record` store: load before the agent's first start
    keep: Seconds = 8 * 86400.0  # observed steps kept in the state


class RetryConfig(Strict):
    base: Seconds = 30.0
    max: Seconds = 1800.0


class MetricsConfig(Strict):
    port: int | None = Field(None, ge=0, le=65535)  # None: no endpoint; 0: any free port
    address: str = "127.0.0.1"


class AgentConfig(Strict):
    name: str = Field("agent", pattern=NAME)
    state: str | None = None  # state folder (default: beside the config, <stem>.state)
    period: Seconds = 10.0
    history_step: Seconds = 300.0
    horizon: Seconds = 6 * 3600.0
    impact_threshold: float = Field(0.2, gt=0)
    backup_max_util: float = Field(0.95, gt=0, lt=1)
    restore_overhead: SecondsOrZero = 60.0
    device_model: str = "ssd"
    policy: str = "predictive"
    params: dict[str, Any] = Field(default_factory=dict)
    forecaster: str | None = None  # default: seasonal_naive when the policy reads forecasts
    forecaster_params: dict[str, Any] = Field(default_factory=dict)
    fallback: str = "seasonal_naive"
    fallback_params: dict[str, Any] = Field(default_factory=dict)
    retrain: dict[str, Any] = Field(default_factory=dict)  # forecasters.service.RetrainPolicy keys
    history: HistoryConfig = Field(default_factory=HistoryConfig)
    retry: RetryConfig = Field(default_factory=RetryConfig)
    throttle: Literal["auto", "cgroup2", "cgroup1", "signals", "none"] = "auto"
    estimate_every: Seconds = 300.0  # changed-file scans are reused this long
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)
    tiers: list[TierConfig] = Field(min_length=1)
    volumes: list[VolumeConfig] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> AgentConfig:
        for what, items in (("tier", self.tiers), ("volume", self.volumes)):
            names = [i.name for i in items]
            if len(set(names)) != len(names):
                raise ValueError(f"{what} names must be unique: {names}")
        if self.history_step < self.period:
            raise ValueError(f"history_step ({self.history_step:g} s) must be at least the period ({self.period:g} s)")
        if self.horizon < self.history_step:
            raise ValueError(f"horizon ({self.horizon:g} s) must be at least one history_step ({self.history_step:g} s)")
        return self


@dataclass
class Loaded:
    """A validated config with everything resolved that can be resolved without the host."""

    cfg: AgentConfig
    path: Path
    base: Path  # folder relative paths are read from
    state_dir: Path
    models: list[DeviceClass]  # per volume
    forecaster: str | None

    def resolve(self, p: str) -> Path:
        return resolve(self.base, p)


def resolve(base: Path, p: str) -> Path:
    q = Path(p).expanduser()
    return q if q.is_absolute() else (base / q)


def load_device_model(spec: str, base: Path, where: str) -> DeviceClass:
    """A class name of `sim.types.DEVICE_CLASSES` or a `device.yaml` written by `piop calibrate`."""
    if spec in DEVICE_CLASSES:
        return DEVICE_CLASSES[spec]
    if not spec.endswith((".yaml", ".yml")):
        raise UserError(f"{where}: unknown device class {spec!r}; known: {', '.join(DEVICE_CLASSES)} (or a device.yaml path)")
    path = resolve(base, spec)
    try:
        data = read_yaml(path, "device model (device.yaml)")
    except UserError as err:
        raise UserError(f"{where}: {err}") from None
    if not isinstance(data, dict):
        raise UserError(f"{where}: {path}: expected a device entry mapping (name, max_iops, max_mbps, base_latency_ms)")
    try:
        vals = {k: float(data[k]) for k in ("max_iops", "max_mbps", "base_latency_ms")}
    except KeyError as err:
        raise UserError(f"{where}: {path}: {err.args[0]}: missing (a device entry of `piop calibrate`)") from None
    except (TypeError, ValueError):
        raise UserError(f"{where}: {path}: max_iops, max_mbps and base_latency_ms must be numbers") from None
    bad = [k for k, v in vals.items() if not v > 0]
    if bad:
        raise UserError(f"{where}: {path}: {bad[0]}: must be > 0")
    return DeviceClass(str(data.get("name", path.stem)), vals["max_iops"], vals["max_mbps"], vals["base_latency_ms"])


def _check_policy(cfg: AgentConfig, path: Path) -> str | None:
    """Build the policy and forecaster once (one line per mistake); the forecaster name to run."""
    from common.registry import UnknownName
    from forecasters.base import FORECASTERS
    from forecasters.service import RetrainPolicy
    from schedulers.base import SCHEDULERS

    try:
        cls = SCHEDULERS.get(cfg.policy)
        SCHEDULERS.create(cfg.policy, **cfg.params)
    except UnknownName as err:
        raise UserError(f"{path}: policy: {err}") from None
    except (TypeError, ValueError) as err:
        raise UserError(f"{path}: params: {err}") from None
    name = cfg.forecaster or getattr(cls, "default_forecaster", None)
    if name is None and getattr(cls, "uses_forecasts", False):
        name = "seasonal_naive"
    for field, fname, params in (("forecaster", name, cfg.forecaster_params), ("fallback", cfg.fallback, cfg.fallback_params)):
        if fname is None:
            continue
        try:
            if getattr(FORECASTERS.get(fname), "needs_future", False):
                raise UserError(f"{path}: {field}: {fname!r} needs the true future, which a real host does not have")
            FORECASTERS.create(fname, **params)
        except UnknownName as err:
            raise UserError(f"{path}: {field}: {err}") from None
        except (TypeError, ValueError) as err:
            if isinstance(err, UserError):
                raise
            raise UserError(f"{path}: {field}_params: {err}") from None
    try:
        RetrainPolicy.from_config(cfg.retrain)
    except (TypeError, ValueError) as err:
        raise UserError(f"{path}: retrain: {err}") from None
    return name


def load(path: str | Path) -> Loaded:
    """Read and check an agent config; `UserError` (one line) on any mistake in it."""
    path = Path(path)
    cfg: AgentConfig = validate(AgentConfig, read_yaml(path, "piop agent config"), path)
    base = path.resolve().parent
    models = [
        load_device_model(
            v.device_model or cfg.device_model, base, f"{path}: volumes.{i}.device_model" if v.device_model else f"{path}: device_model"
        )
        for i, v in enumerate(cfg.volumes)
    ]
    forecaster = _check_policy(cfg, path)
    state_dir = resolve(base, cfg.state) if cfg.state else base / f"{path.stem}.state"
    return Loaded(cfg, path, base, state_dir, models, forecaster)

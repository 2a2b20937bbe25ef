"""The checks of an experiment config that need the registries or arithmetic across fields.

Run when a config is loaded, before any simulation: every part of the file is built
once, the way a run builds it (each synthetic workload with its `params`, each policy's
scheduler with its `params`, its forecaster with its `forecaster_params`, its retraining
policy with `retrain`), so a mistake anywhere in the file is reported now, naming the
file and the field (`file: policies.2.forecaster_params: ...`), not when that policy's
run starts after other results were written.

The physical rules:

- **RPO**: a restore point needs one decision to start its backup and at least one more
  to see it complete, so an RPO shorter than two decision periods is never met. And
  while a volume's full backup runs no newer restore point can be taken, so an RPO
  shorter than the fastest possible full (the used data read at the smaller of the
  fastest tier's ingest rate and the device's read rate at `backup_max_util`) is
  breached by every full. Example: a 1000 GB file server on a SAN device (800 MB/s)
  needs at least 1000e3 MB / (0.95 x 800 MB/s) = 22 min per full: an RPO of 36 s is
  refused.
- **RTO**: restoring a full at the fastest tier's restore rate plus the per-restore-point
  overhead must fit within it.
- **Size**: the memory the run needs (`experiments.sizing`) must fit this machine.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from common.errors import UserError
from experiments.config import ExperimentConfig, PolicyConfig, VolumeGroup
from sim.devices import DEVICE_CLASSES


def check_semantics(cfg: ExperimentConfig, path: Path) -> None:
    """Raise a one-line `UserError` (`path: field: why`) for the first mistake in `cfg`."""
    from experiments.sizing import check_config_size

    for i, g in enumerate(cfg.fleet):
        _check_group(cfg, g, f"{path}: fleet.{i}")
    for i, p in enumerate(cfg.policies):
        _check_policy(cfg, p, f"{path}: policies.{i}")
    check_config_size(cfg, f"{path}: fleet and duration_h")


def min_full_s(cfg: ExperimentConfig, g: VolumeGroup) -> tuple[float, float]:
    """(seconds, MB/s): the fastest possible full backup of one volume of group `g`."""
    device = DEVICE_CLASSES[g.device]
    rate = min(max(t.ingest_mbps for t in cfg.tiers), device.max_mbps * cfg.backup_max_util)
    return g.used_gb * 1e3 / rate, rate


def _check_group(cfg: ExperimentConfig, g: VolumeGroup, where: str) -> None:
    import workloads

    if g.workload is not None:
        if g.workload not in workloads.SYNTHETIC:
            raise UserError(f"{where}.workload: unknown workload {g.workload!r}; known: {', '.join(workloads.SYNTHETIC.names())}")
        try:  # one volume is enough to check the parameters
            workloads.SYNTHETIC.create(g.workload, count=1, tick_s=cfg.tick_s, seed=0, id_prefix="check-", **g.params)
        except (TypeError, ValueError) as err:
            raise UserError(f"{where}.params: {_reword(err)}") from None
    if g.trace is not None and g.trace not in workloads.TRACES:
        raise UserError(f"{where}.trace: unknown trace family {g.trace!r}; known: {', '.join(workloads.TRACES.names())}")
    tier_names = {t.name for t in cfg.tiers}
    if g.tier is not None and g.tier not in tier_names:
        raise UserError(f"{where}.tier: unknown tier {g.tier!r}; tiers: {', '.join(sorted(tier_names))}")
    rpo_s = (g.rpo_h or cfg.rpo_h) * 3600
    rto_s = (g.rto_h or cfg.rto_h) * 3600
    field = "rpo_h" if g.rpo_h is not None else "rpo_h (the config's default)"
    if rpo_s < 2 * cfg.decision_s:
        raise UserError(
            f"{where}.{field}: {rpo_s / 3600:g} h ({rpo_s:g} s) is impossible: a backup needs one decision period to start "
            f"and another to be seen complete (2 x decision_s = {2 * cfg.decision_s:g} s)"
        )
    full_s, rate = min_full_s(cfg, g)
    if rpo_s < full_s:
        raise UserError(
            f"{where}.{field}: {rpo_s / 3600:g} h ({rpo_s:g} s) is impossible: a full backup of {g.used_gb:g} GB takes at "
            f"least {_duration(full_s)} (at {rate:g} MB/s, the fastest tier's ingest or the {g.device} device's read rate) "
            "and no newer restore point can be taken while it runs"
        )
    fastest_restore = max(t.restore_mbps for t in cfg.tiers)
    min_restore = g.used_gb * 1e9 / (fastest_restore * 1e6) + cfg.restore_overhead_s
    if rto_s < min_restore:
        raise UserError(
            f"{where}.rto_h: {rto_s / 3600:g} h is impossible: restoring a full {g.used_gb:g} GB at the fastest tier's "
            f"{fastest_restore:g} MB/s takes {min_restore / 3600:.2f} h"
        )


def _check_policy(cfg: ExperimentConfig, p: PolicyConfig, where: str) -> None:
    import schedulers

    tier_names = {t.name for t in cfg.tiers}
    if p.policy not in schedulers.SCHEDULERS:
        raise UserError(f"{where}.policy: unknown policy {p.policy!r}; known: {', '.join(schedulers.SCHEDULERS.names())}")
    try:
        schedulers.SCHEDULERS.create(p.policy, **p.params)
    except (TypeError, ValueError) as err:
        raise UserError(f"{where}.params: {_reword(err)}") from None
    for key in ("tier", "full_tier"):
        name = p.params.get(key)
        if name is not None and name not in tier_names:
            raise UserError(f"{where}.params.{key}: unknown tier {name!r}; tiers: {', '.join(sorted(tier_names))}")
    _check_forecasting(cfg, p, where)


def _check_forecasting(cfg: ExperimentConfig, p: PolicyConfig, where: str) -> None:
    """The forecaster, its parameters and the retraining policy, built as a run builds them."""
    from experiments.runner import forecaster_name, needs_future

    if p.forecaster is not None and p.forecaster not in _forecasters():
        raise UserError(f"{where}.forecaster: unknown forecaster {p.forecaster!r}; known: {', '.join(_forecasters().names())}")
    name = forecaster_name(p)
    if name is None:
        for key in ("forecaster_params", "retrain"):
            if getattr(p, key):
                raise UserError(
                    f"{where}.{key}: policy {p.policy!r} reads no forecaster here, so these settings would be ignored; "
                    "name a 'forecaster' or remove them"
                )
        return
    from forecasters.service import RetrainPolicy

    params: dict[str, Any] = dict(p.forecaster_params)
    if needs_future(name):  # the run hands it the true future; a stand-in is enough to check the rest
        params.setdefault("future", lambda origin_t, horizon_steps: None)
    try:
        _forecasters().create(name, **params)
    except (TypeError, ValueError) as err:
        raise UserError(f"{where}.forecaster_params: forecaster {name!r}: {_reword(err)}") from None
    try:
        RetrainPolicy.from_config(p.retrain)
    except (TypeError, ValueError) as err:
        raise UserError(f"{where}.retrain: {_reword(err)}") from None
    for key, value in p.retrain.items():
        if value is not None and not isinstance(value, bool | int | float):
            raise UserError(f"{where}.retrain.{key}: expected a number or true/false, got {value!r}")


def _reword(err: Exception) -> str:
    """A constructor's error without Python's `Class.__init__()` noise."""
    return re.sub(r"\b[\w.]*__init__\(\)\s*", "", str(err)).strip()


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"


def _forecasters():
    """The forecaster registry (imported only when a policy names one: it pulls in torch)."""
    import forecasters  # noqa: F401  (registration)
    from forecasters.base import FORECASTERS

    return FORECASTERS

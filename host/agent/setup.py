"""What of a config this host can serve: volumes whose paths and device exist, usable tiers.

A volume naming a missing path or a device that is not a block device here, a tier whose
repository is missing or whose command is not installed: each is one line, and the agent
serves the rest (it stops only when nothing is left to serve).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from common.errors import UserError
from host import blockdev, diskstats
from host.agent.adapters import Adapter, CommandAdapter, ResticAdapter, for_tier
from host.agent.config import Loaded
from sim.types import DeviceClass


@dataclass
class Served:
    """The volumes and tiers the agent serves, with what it needs of each."""

    vols: list = field(default_factory=list)  # VolumeConfig
    models: list[DeviceClass] = field(default_factory=list)
    paths: list[tuple[str, ...]] = field(default_factory=list)  # absolute
    devices: list[str] = field(default_factory=list)  # diskstats names
    throttle_devs: list[str] = field(default_factory=list)  # "major:minor" of the disk to throttle
    own: list[Adapter | None] = field(default_factory=list)  # a volume's own command adapter
    tiers: list = field(default_factory=list)  # TierConfig
    adapters: list[Adapter] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # "volume x" / "tier y" -> why

    def adapter(self, v: int, tier: int) -> Adapter:
        return self.own[v] or self.adapters[tier]


def disk_dev(name: str) -> str:
    """'major:minor' of the whole disk holding device `name` (what a cgroup limit names)."""
    disk = blockdev.whole_disk(name)
    try:
        return Path(f"/sys/class/block/{disk}/dev").read_text().strip()
    except OSError:
        c = diskstats.read().get(disk)
        if c is None:
            raise UserError(f"device {disk}: not in /proc/diskstats") from None
        return c.dev


def _volume(loaded: Loaded, i: int, known: dict) -> tuple[tuple[str, ...], str, str, Adapter | None]:
    """(absolute paths, device, disk major:minor, own adapter) of volume `i`; UserError naming the problem."""
    v = loaded.cfg.volumes[i]
    where = f"{loaded.path}: volumes.{i} ({v.name})"
    paths = tuple(str(loaded.resolve(p)) for p in v.paths)
    for p in paths:
        if not os.path.exists(p):
            raise UserError(f"{where}: path {p}: no such file or directory")
    if v.device:
        dev = blockdev.resolve(v.device, known)
    else:
        dev, how = blockdev.device_of_path(paths[0])
        if dev is None:
            raise UserError(f"{where}: {how}; name its block device with `device:`")
    own = None
    if v.command:
        try:
            own = CommandAdapter(v.command)
        except ValueError as err:
            raise UserError(f"{where}: {err}") from None
        why = own.check()
        if why:
            raise UserError(f"{where}: {why}")
    return paths, dev, disk_dev(dev), own


def resolve_host(loaded: Loaded, log, create: bool = True) -> Served:
    """Check every volume and tier against this host; log one line per one that cannot be served.
    `create=False` (a dry run) creates nothing, not even a repository the config would `init`
    (such a tier is advised on as empty). When nothing can be served, one line says why."""
    s = Served()
    cfg = loaded.cfg
    lines = []
    for j, t in enumerate(cfg.tiers):
        try:
            a = for_tier(t, loaded.resolve)
        except ValueError as err:
            why = str(err)
        else:
            if not create and isinstance(a, ResticAdapter):
                a.dry = True
            why = a.check()
        if why:
            s.skipped[f"tier {t.name}"] = why
            lines.append(f"error: {loaded.path}: tiers.{j} ({t.name}): {why}; tier not used")
            continue
        s.tiers.append(t)
        s.adapters.append(a)
    if not s.tiers:
        raise UserError(f"{loaded.path}: no backup tier can be used ({'; '.join(f'{k}: {v}' for k, v in s.skipped.items())})")
    known = diskstats.read()
    for i, v in enumerate(cfg.volumes):
        try:
            paths, dev, disk, own = _volume(loaded, i, known)
        except (UserError, OSError) as err:
            s.skipped[f"volume {v.name}"] = str(err)
            lines.append(f"error: {err}; volume not served")
            continue
        s.vols.append(v)
        s.models.append(loaded.models[i])
        s.paths.append(paths)
        s.devices.append(dev)
        s.throttle_devs.append(disk)
        s.own.append(own)
    if not s.vols:
        raise UserError(f"{loaded.path}: no volume can be served here ({'; '.join(s.skipped.values())})")
    for line in lines:
        log(line)
    return s

"""Which block device a path lives on, and what a device name the user gave means.

A file's `st_dev` is the device number of its filesystem. For ext4/xfs on a disk, a
partition or a device-mapper volume it is that block device (the one whose
`/proc/diskstats` line counts the file's I/O). Filesystems with an anonymous device
number (major 0: overlay, tmpfs, proc, btrfs, NFS, ...) are looked up in
`/proc/self/mountinfo`: a mount source that is a block device (btrfs on /dev/sdb) is
that device; otherwise the path is not backed by one block device and callers say so.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from common.errors import UserError
from host import diskstats

MOUNTINFO = "/proc/self/mountinfo"


@dataclass(frozen=True)
class Mount:
    point: str
    dev: str  # "major:minor" as mountinfo shows it
    fstype: str
    source: str
    read_only: bool


def _unescape(s: str) -> str:
    return s.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")


def mounts(path: str = MOUNTINFO) -> list[Mount]:
    out = []
    with open(path) as fh:
        for line in fh:
            left, _, right = line.partition(" - ")
            a, b = left.split(), right.split()
            if len(a) < 6 or len(b) < 3:
                continue
            opts = set(a[5].split(",")) | set(b[2].split(","))
            out.append(Mount(_unescape(a[4]), a[2], b[0], _unescape(b[1]), "ro" in opts))
    return out


def mount_of(path: str | Path) -> Mount | None:
    """The mount holding `path` (longest mount point prefix; the last such mount wins)."""
    real = os.path.realpath(path)
    best: Mount | None = None
    for m in mounts():
        p = m.point.rstrip("/") or "/"
        if real == p or real.startswith(p + "/") or p == "/":
            if best is None or len(p) >= len(best.point.rstrip("/") or "/"):
                best = m
    return best


def name_of_dev(major: int, minor: int) -> str | None:
    """The diskstats name of device `major:minor`, or None."""
    link = Path(f"/sys/dev/block/{major}:{minor}")
    if link.exists():
        return os.path.basename(os.path.realpath(link))
    for c in diskstats.read().values():
        if (c.major, c.minor) == (major, minor):
            return c.name
    return None


def device_of_path(path: str | Path) -> tuple[str | None, str]:
    """(device name, how it was found) for the filesystem holding `path`; name None + reason if none."""
    st = os.stat(path)
    major, minor = os.major(st.st_dev), os.minor(st.st_dev)
    if major != 0:
        name = name_of_dev(major, minor)
        if name:
            return name, f"st_dev {major}:{minor}"
        return None, f"{path}: device {major}:{minor} is not in /proc/diskstats"
    m = mount_of(path)
    fstype = m.fstype if m else "unknown"
    if m and m.source.startswith("/dev/"):
        try:
            sst = os.stat(m.source)
        except OSError:
            sst = None
        if sst is not None and stat.S_ISBLK(sst.st_mode):
            name = name_of_dev(os.major(sst.st_rdev), os.minor(sst.st_rdev))
            if name:
                return name, f"{fstype} mounted from {m.source}"
    return None, f"{path} is on a {fstype} filesystem, not backed by one block device"


def whole_disk(name: str) -> str:
    """The disk a partition belongs to (the name itself for a whole disk or dm volume)."""
    sys_path = Path("/sys/class/block") / name
    if (sys_path / "partition").exists():
        return os.path.basename(os.path.dirname(os.path.realpath(sys_path)))
    return name


def resolve(spec: str, known: dict[str, diskstats.Counters]) -> str:
    """A device as the user named it ("sda", "/dev/sda", "/dev/mapper/x") -> diskstats name."""
    if spec in known:
        return spec
    if spec.startswith("/"):
        try:
            st = os.stat(spec)
        except OSError as err:
            raise UserError(f"device {spec}: {err.strerror}") from None
        if not stat.S_ISBLK(st.st_mode):
            raise UserError(f"device {spec}: not a block device")
        name = name_of_dev(os.major(st.st_rdev), os.minor(st.st_rdev))
        if name and name in known:
            return name
    some = ", ".join(sorted(known)[:12])
    raise UserError(f"device {spec!r}: no such block device in /proc/diskstats (it has: {some})")

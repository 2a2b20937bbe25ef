"""The calibration target: a file on the device under test (or, explicitly, a block device).

Checked before anything runs, each failure one line: the path must be on a filesystem
backed by a block device (not proc, tmpfs, overlay: those would measure memory or
someone else's stack), that filesystem must be writable (the test file is laid out
there), there must be room for it, and a block device is read only when the user says
`--block-device` (fio only reads; still, it is the raw device). A file that does not
exist is laid out with random bytes (not zeros: storage that compresses or
deduplicates would serve zeros from nothing), synced, and removed afterwards unless
kept. Direct I/O is used where the filesystem accepts `O_DIRECT`; elsewhere the
calibration falls back to buffered I/O and says so (the page cache then hides part of
the device).
"""

from __future__ import annotations

import contextlib
import mmap
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from common.atomic import os_reason
from common.errors import UserError
from host import blockdev

MIN_SIZE = 16 << 20
CHUNK = 4 << 20


@dataclass
class Target:
    path: Path
    device: str
    size: int
    created: bool
    is_block: bool
    direct: bool = True
    note: str = ""

    def remove_if_created(self) -> None:
        if self.created:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()


def _block_size(name: str) -> int:
    try:
        return int(Path(f"/sys/class/block/{name}/size").read_text()) * 512
    except (OSError, ValueError):
        return 0


def check(path: str | Path, size: int, block_device: bool) -> Target:
    """Everything that can be said about the target before writing a byte."""
    path = Path(path)
    if path.exists():
        st = path.stat()
        if stat.S_ISBLK(st.st_mode):
            if not block_device:
                raise UserError(f"{path}: is a block device; pass --block-device to calibrate on it directly (fio only reads)")
            name = blockdev.name_of_dev(os.major(st.st_rdev), os.minor(st.st_rdev)) or path.name
            return Target(path, name, _block_size(name), False, True)
        if block_device:
            raise UserError(f"{path}: --block-device given but this is not a block device")
        if path.is_dir():
            raise UserError(f"{path}: is a folder; give a file on the device under test")
        if not stat.S_ISREG(st.st_mode):
            raise UserError(f"{path}: not a regular file")
        folder = path.parent
    else:
        if block_device:
            raise UserError(f"{path}: no such block device")
        folder = path.parent
        if not folder.is_dir():
            raise UserError(f"{path}: folder {folder} does not exist")
    name, how = blockdev.device_of_path(folder)
    if name is None:
        raise UserError(f"{path}: cannot calibrate here: {how}")
    vfs = os.statvfs(folder)
    if vfs.f_flag & os.ST_RDONLY or not os.access(folder, os.W_OK):
        why = "read-only file system" if vfs.f_flag & os.ST_RDONLY else "no write permission"
        raise UserError(f"{path}: cannot calibrate here: {why} (the test file is laid out there)")
    if path.exists():
        have = path.stat().st_size
        if have < MIN_SIZE:
            raise UserError(f"{path}: existing file of {have} bytes is too small (at least {MIN_SIZE >> 20} MiB)")
        return Target(path, name, have, False, False)
    if size < MIN_SIZE:
        raise UserError(f"--size: at least {MIN_SIZE >> 20} MiB (got {size} bytes)")
    free = vfs.f_bavail * vfs.f_frsize
    if free < size * 1.1:
        raise UserError(f"{path}: {free >> 20} MiB free on its filesystem, the test file needs {size >> 20} MiB")
    return Target(path, name, size, False, False)


def lay_out(t: Target) -> None:
    """Create the test file (random bytes, synced); `t.created` is set first so a failure cleans up."""
    if t.is_block or t.path.exists():
        return
    t.created = True
    try:
        with open(t.path, "wb") as fh:
            left = t.size
            while left > 0:
                n = min(CHUNK, left)
                fh.write(os.urandom(n))
                left -= n
            fh.flush()
            os.fsync(fh.fileno())
            with contextlib.suppress(AttributeError, OSError):
                os.posix_fadvise(fh.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
    except OSError as err:
        t.remove_if_created()
        raise UserError(f"{t.path}: cannot lay out the test file ({os_reason(err)})") from None


def probe_direct(t: Target) -> None:
    """Set `t.direct`: can the target be read with O_DIRECT (an aligned 4 KiB read)?"""
    flag = getattr(os, "O_DIRECT", 0)
    if not flag:
        t.direct, t.note = False, "this platform has no O_DIRECT: buffered I/O, the page cache may hide the device"
        return
    try:
        fd = os.open(t.path, os.O_RDONLY | flag)
    except OSError as err:
        t.direct, t.note = False, f"O_DIRECT refused ({os_reason(err)}): buffered I/O, the page cache may hide the device"
        return
    try:
        buf = mmap.mmap(-1, 4096)  # page-aligned
        os.preadv(fd, [buf], 0)
        t.direct = True
    except OSError as err:
        t.direct, t.note = False, f"O_DIRECT read failed ({os_reason(err)}): buffered I/O, the page cache may hide the device"
    finally:
        os.close(fd)

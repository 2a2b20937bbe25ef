"""Advisory locks between processes: one writer per output, the others told at once.

`try_lock(path)` takes an exclusive `flock` on `path` without waiting and returns a
`HeldLock`, or None when another process holds it. The lock dies with its process (the
kernel drops it), so a killed writer never leaves a lock that blocks the next one; the
file itself is removed on release, and `remove_stale` removes one a killed process left.
Linux and macOS (`fcntl`).

Removing a lock file races with a process that opened it just before: that process may
then lock a file no longer in the folder while a third creates a new one. So a lock
counts only when, once taken, the path still names the very file locked (same inode).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path


class HeldLock:
    """An exclusive lock on a file; `release()` (or leaving the `with`) removes the file."""

    def __init__(self, path: Path, fd: int):
        self.path = path
        self._fd: int | None = fd

    def release(self) -> None:
        if self._fd is None:
            return
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)  # while still locked: nobody can take the old file afterwards
        os.close(self._fd)  # drops the lock
        self._fd = None

    def __enter__(self) -> HeldLock:
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def try_lock(path: str | Path) -> HeldLock | None:
    """Lock `path` (created if missing) without waiting; None when another process holds it."""
    path = Path(path)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        except BaseException:
            os.close(fd)
            raise
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return HeldLock(path, fd)
        os.close(fd)  # the file was released and removed between open and flock: try again


def remove_stale(path: str | Path) -> bool:
    """Remove the lock file `path` left by a killed process (one nobody holds); True if removed."""
    if not Path(path).exists():
        return False
    lock = try_lock(path)
    if lock is None:  # held: its process is alive
        return False
    lock.release()
    return True

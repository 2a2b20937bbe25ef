"""Atomic writes: a file appears whole or not at all, even if the process is killed.

Everything piop writes goes through a temporary name in the same folder and `os.replace`;
a folder is checked for writability before long work starts, so a read-only or full disk
is found in a second, not after an hour of simulation.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from common.errors import UserError


def check_writable(folder: str | Path, what: str = "output folder") -> Path:
    """Create `folder` if needed and prove a file can be written there; else a UserError.

    The probe is a file without a name in the folder (Linux's `O_TMPFILE`; elsewhere named and
    unlinked at once), so a process stopped or killed mid-check leaves nothing behind."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder, prefix=".piop-write-check.", buffering=0) as f:
            f.write(b"x")
            os.fsync(f.fileno())
    except OSError as err:
        raise UserError(f"{what} {folder}: cannot write there ({os_reason(err)})") from None
    return folder


def os_reason(err: OSError) -> str:
    """The short human reason of an OS error (e.g. 'No space left on device')."""
    if err.errno == errno.EROFS:
        return "read-only file system"
    return err.strerror or type(err).__name__


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it is renamed onto `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=path.suffix)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o644)
        os.replace(tmp_path, path)
    except OSError as err:
        if err.filename is None:  # a write through a file object names no file: name the one being written
            err.filename = str(path)
        raise
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())

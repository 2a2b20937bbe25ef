"""OS errors worded for a person: the path and the reason, on one line.

Libraries that write files (pyarrow, matplotlib, sqlite) often raise an `OSError` that
names no file ("[Errno 28] No space left on device"). `naming(path)` wraps a block of
writes so such an error leaves it as an `OSError` whose `filename` is the output being
written; `describe(err)` gives the one line a command prints: `PATH: reason`.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
from collections.abc import Iterator
from pathlib import Path

from common.atomic import os_reason

#: errors that say the output cannot be written at all (not a problem of one run)
DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EROFS, errno.EDQUOT, errno.EACCES, errno.EPERM})


def reason(err: OSError) -> str:
    """The short reason: the error number's words (a library's long message cut to them),
    else the message's first line."""
    code = errno_of(err)
    if code is not None:
        return os_reason(OSError(code, os.strerror(code)))
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def errno_of(err: OSError) -> int | None:
    """The error number, also when a library only wrote it into the message."""
    if err.errno is not None:
        return err.errno
    found = re.search(r"\[errno (\d+)\]", str(err), flags=re.IGNORECASE)
    return int(found.group(1)) if found else None


def describe(err: OSError) -> str:
    """`PATH: reason` (or just the reason when no path is known)."""
    name = err.filename
    return f"{name}: {reason(err)}" if name else reason(err)


def is_disk_error(err: BaseException) -> bool:
    """Whether `err` says the output place itself is unusable (full, read-only, forbidden)."""
    return isinstance(err, OSError) and errno_of(err) in DISK_ERRNOS


@contextlib.contextmanager
def naming(path: str | Path) -> Iterator[None]:
    """Inside the block, an `OSError` that names no file is re-raised naming `path`."""
    try:
        yield
    except OSError as err:
        if err.filename:
            raise
        raise OSError(errno_of(err), reason(err), str(path)) from err

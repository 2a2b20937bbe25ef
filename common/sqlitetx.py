"""One SQLite write transaction, for the stores that commit a whole step or none of it."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator


@contextlib.contextmanager
def immediate(con: sqlite3.Connection) -> Iterator[None]:
    """`BEGIN IMMEDIATE` (take the write lock now, not at the first write), COMMIT on success,
    ROLLBACK on any exception, KeyboardInterrupt included. The connection must be in autocommit
    mode (`isolation_level=None`), so that sqlite3 opens no transaction of its own."""
    con.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")

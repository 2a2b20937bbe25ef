"""The recorder's embedded store: one SQLite file in WAL mode that survives `kill -9`.

Every sample (all devices' rates, the host's, events, and the raw counters it was
computed from) is one transaction: a killed recorder loses at most the sample in
flight, and a restarted one reads the counters back and measures its first interval
from the last committed sample, so the series has neither a gap nor a duplicate
timestamp (timestamps are primary keys and only ever increase). WAL with
`synchronous=NORMAL` keeps committed samples through a process crash; a power loss may
lose the last few but never corrupts the file.

Disk use is bounded by retention: rows older than `keep_days` are deleted about once an
hour and their pages returned (`auto_vacuum=INCREMENTAL`); the WAL file is truncated to
a few MB after checkpoints.

A store is recognised by its content (the SQLite header and `meta.format =
'piop-store'`), never by its name; another SQLite file or a text file is refused
without being touched. A new store is built under a temporary name and renamed into
place, so an interrupted start leaves nothing half-made.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

from common.atomic import os_reason
from common.errors import UserError
from common.sqlitetx import immediate

FORMAT = "piop-store"
VERSION = 1
SQLITE_MAGIC = b"SQLite format 3\x00"

#: per-device series of the `samples` table (after `device, t, dt`)
DEVICE_COLUMNS = ("read_iops", "write_iops", "read_mbps", "write_mbps", "util_pct", "await_ms", "svctm_ms", "queue")
HOST_COLUMNS = ("cpu_pct", "mem_pct", "net_mbps")
RETAIN_EVERY_S = 3600.0

SCHEMA = f"""
CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE devices(name TEXT PRIMARY KEY, dev TEXT, disk TEXT, kind TEXT, mount TEXT, first_t REAL, last_t REAL);
CREATE TABLE samples(device TEXT NOT NULL, t REAL NOT NULL, dt REAL NOT NULL,
    {", ".join(c + " REAL" for c in DEVICE_COLUMNS)}, PRIMARY KEY(device, t)) WITHOUT ROWID;
CREATE TABLE host(t REAL PRIMARY KEY, dt REAL NOT NULL, {", ".join(c + " REAL" for c in HOST_COLUMNS)});
CREATE TABLE events(t REAL NOT NULL, device TEXT, kind TEXT NOT NULL, detail TEXT);
CREATE INDEX events_t ON events(t);
CREATE TABLE state(key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


class StoreError(UserError):
    """A path that is not a usable piop store (one line for the user).

    A `UserError` (hence a `ValueError`), like the trace families' `TraceError`: every
    `piop` command prints it as one line and exits 2. Kept free of `workloads` so the
    long-running recorder imports only sqlite3 and psutil.
    """


def is_store(path: str | Path) -> bool:
    """True when `path` is a piop store (content check; never modifies the file)."""
    try:
        check(path)
        return True
    except (StoreError, OSError):
        return False


def check(path: str | Path) -> dict[str, str]:
    """The store's metadata, or a `StoreError` saying why `path` is not a piop store."""
    path = Path(path)
    if not path.exists():
        raise StoreError(f"{path}: no such file")
    if path.is_dir():
        raise StoreError(f"{path}: is a folder, not a piop store")
    with open(path, "rb") as fh:
        head = fh.read(len(SQLITE_MAGIC))
    if head != SQLITE_MAGIC:
        raise StoreError(f"{path}: not a piop store (not an SQLite database)")
    try:  # immutable: no lock, no -wal/-shm created beside someone else's database
        with contextlib.closing(sqlite3.connect(f"file:{path.resolve()}?immutable=1", uri=True)) as con:
            meta = dict(con.execute("SELECT key, value FROM meta").fetchall())
    except sqlite3.DatabaseError as err:
        raise StoreError(f"{path}: not a piop store ({str(err).splitlines()[0]})") from None
    if meta.get("format") != FORMAT:
        raise StoreError(f"{path}: not a piop store (meta.format is {meta.get('format')!r})")
    if int(meta.get("version", "0")) > VERSION:
        raise StoreError(f"{path}: store version {meta['version']} is newer than this piop reads ({VERSION})")
    return meta


def _connect_ro(path: Path) -> sqlite3.Connection:
    con = sqlite3.connect(f"file:{path.resolve()}?mode=ro", uri=True, timeout=10.0)
    con.execute("PRAGMA query_only = 1")
    return con


def _create(path: Path, meta: dict[str, str]) -> None:
    """Build an empty store under a temporary name and rename it onto `path`."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    os.unlink(tmp)  # SQLite creates it
    try:
        con = sqlite3.connect(tmp)
        con.execute("PRAGMA auto_vacuum = INCREMENTAL")  # before the first table
        con.executescript(SCHEMA)
        con.executemany("INSERT INTO meta VALUES (?, ?)", sorted({"format": FORMAT, "version": str(VERSION), **meta}.items()))
        con.commit()
        con.execute("PRAGMA journal_mode = WAL")
        con.close()
        os.replace(tmp, path)
    finally:
        for p in (tmp, tmp + "-wal", tmp + "-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(p)


def _lock(path: Path) -> int:
    """One recorder per store: an exclusive `flock` on the file, released by the kernel if killed."""
    import fcntl

    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise StoreError(f"{path}: another recorder is appending to this store") from None
    return fd


class Store:
    """A store opened for appending (the recorder) or reading (the trace family)."""

    def __init__(self, path: Path, con: sqlite3.Connection, meta: dict[str, str]):
        self.path = path
        self.con = con
        self.meta = meta
        self._last_retain = 0.0
        self._lock_fd: int | None = None

    # -- opening ----------------------------------------------------------------------
    @classmethod
    def open_append(cls, path: str | Path, meta: dict[str, str]) -> Store:
        """Open (or create) `path` for the recorder; an existing file must be a piop store."""
        path = Path(path)
        if path.exists():
            old = check(path)
        else:
            if not path.parent.is_dir():
                raise StoreError(f"{path}: folder {path.parent} does not exist")
            try:
                _create(path, meta)
            except (OSError, sqlite3.OperationalError) as err:
                reason = os_reason(err) if isinstance(err, OSError) else str(err)
                raise StoreError(f"{path}: cannot create the store ({reason})") from None
            old = check(path)
        lock = _lock(path)
        con = sqlite3.connect(path, timeout=30.0, isolation_level=None)
        con.execute("PRAGMA journal_mode = WAL")
        con.execute("PRAGMA synchronous = NORMAL")
        con.execute("PRAGMA journal_size_limit = 4194304")
        fresh = {k: v for k, v in meta.items() if k not in ("format", "version", "created")}
        con.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", sorted(fresh.items()))  # e.g. a new interval
        store = cls(path, con, {**old, **fresh})
        store._lock_fd = lock
        return store

    @classmethod
    def open_read(cls, path: str | Path) -> Store:
        path = Path(path)
        meta = check(path)
        return cls(path, _connect_ro(path), meta)

    def close(self) -> None:
        """Close; a writer leaves the file in rollback-journal mode so readers create no -wal/-shm."""
        if not self.con.execute("PRAGMA query_only").fetchone()[0]:
            with contextlib.suppress(sqlite3.OperationalError):  # a reader holds it: stays WAL
                self.con.execute("PRAGMA journal_mode = DELETE")
        self.con.close()
        if self._lock_fd is not None:  # only now: closing any fd of the file drops SQLite's POSIX locks
            os.close(self._lock_fd)
            self._lock_fd = None

    # -- writing ----------------------------------------------------------------------
    def set_devices(self, rows: Iterable[tuple[str, str, str, str | None, str | None]]) -> None:
        """(name, dev, disk, kind, mount) per recorded device; metadata given now replaces the old."""
        with self._tx():
            for name, dev, disk, kind, mount in rows:
                self.con.execute(
                    "INSERT INTO devices(name, dev, disk, kind, mount) VALUES (?, ?, ?, ?, ?) "
                    "ON CONFLICT(name) DO UPDATE SET dev=excluded.dev, disk=excluded.disk, "
                    "kind=COALESCE(excluded.kind, devices.kind), mount=COALESCE(excluded.mount, devices.mount)",
                    (name, dev, disk, kind, mount),
                )

    def append(self, t: float, dt: float | None, disks: dict, host, events: list, state: dict) -> None:
        """One sample in one transaction: device rows, host row, events and the counters."""
        with self._tx():
            for name, r in disks.items():
                self.con.execute(
                    f"INSERT INTO samples VALUES (?, ?, ?, {', '.join('?' * len(DEVICE_COLUMNS))})",
                    (name, t, dt, *(getattr(r, c) for c in DEVICE_COLUMNS)),
                )
                self.con.execute("UPDATE devices SET first_t = COALESCE(first_t, ?), last_t = ? WHERE name = ?", (t - dt, t, name))
            if host is not None and dt is not None:
                self.con.execute("INSERT INTO host VALUES (?, ?, ?, ?, ?)", (t, dt, host.cpu_pct, host.mem_pct, host.net_mbps))
            self.con.executemany("INSERT INTO events VALUES (?, ?, ?, ?)", [(e.t, e.device, e.kind, e.detail) for e in events])
            self.con.execute("INSERT OR REPLACE INTO state VALUES ('counters', ?)", (json.dumps(state),))

    def retain(self, now: float, keep_days: float | None, force: bool = False) -> int:
        """Delete rows older than `keep_days` (about hourly); the number of sample rows removed."""
        if keep_days is None or (not force and now - self._last_retain < RETAIN_EVERY_S):
            return 0
        self._last_retain = now
        cut = now - keep_days * 86400.0
        with self._tx():
            n = self.con.execute("DELETE FROM samples WHERE t < ?", (cut,)).rowcount
            self.con.execute("DELETE FROM host WHERE t < ?", (cut,))
            self.con.execute("DELETE FROM events WHERE t < ?", (cut,))
        self.con.executescript("PRAGMA incremental_vacuum;")  # run to the end (one execute() step frees one page)
        self.con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return int(n)

    def _tx(self):
        return immediate(self.con)

    # -- reading ----------------------------------------------------------------------
    def state(self) -> dict:
        row = self.con.execute("SELECT value FROM state WHERE key = 'counters'").fetchone()
        return json.loads(row[0]) if row else {}

    def last_t(self) -> float | None:
        a = self.con.execute("SELECT MAX(t) FROM samples").fetchone()[0]
        b = self.con.execute("SELECT MAX(t) FROM host").fetchone()[0]
        vals = [x for x in (a, b, self.state().get("t")) if x is not None]
        return max(vals) if vals else None

    def devices(self) -> list[dict]:
        cols = ("name", "dev", "disk", "kind", "mount", "first_t", "last_t")
        rows = self.con.execute(f"SELECT {', '.join(cols)} FROM devices ORDER BY name").fetchall()
        return [dict(zip(cols, r)) for r in rows]

    def samples(self, device: str):
        """(t, dt, values [n, len(DEVICE_COLUMNS)]) of one device, by time; NULL -> NaN."""
        import numpy as np

        rows = self.con.execute(f"SELECT t, dt, {', '.join(DEVICE_COLUMNS)} FROM samples WHERE device = ? ORDER BY t", (device,)).fetchall()
        a = np.array(rows, dtype=np.float64).reshape(-1, 2 + len(DEVICE_COLUMNS))
        return a[:, 0], a[:, 1], a[:, 2:]

    def host(self):
        """(t, dt, values [n, len(HOST_COLUMNS)]) of the host, by time; NULL -> NaN."""
        import numpy as np

        rows = self.con.execute(f"SELECT t, dt, {', '.join(HOST_COLUMNS)} FROM host ORDER BY t").fetchall()
        a = np.array(rows, dtype=np.float64).reshape(-1, 2 + len(HOST_COLUMNS))
        return a[:, 0], a[:, 1], a[:, 2:]

    def event_counts(self) -> dict[str, int]:
        return dict(self.con.execute("SELECT kind, COUNT(*) FROM events GROUP BY kind ORDER BY kind").fetchall())

    def count(self) -> int:
        return int(self.con.execute("SELECT COUNT(*) FROM samples").fetchone()[0])


def now() -> float:
    return round(time.time(), 6)

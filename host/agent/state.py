"""The agent's durable state: one SQLite file (WAL) that survives `kill -9`.

What a restarted agent needs to carry on where the last one stopped: the clock origin
(`meta.start_epoch`, so calendar schedules and forecast steps line up), every backup job
(with the pid, process start time and boot id of its process, so a job still running
after the agent died can be adopted), the restore points the backup tools do not list
themselves (generic commands), failures and back-off, the observed load steps the
forecaster learns from, every decision with the limit that was put in force, and the
latest live status (`piop agent status` reads it while the agent runs).

One writer: an exclusive `flock` on `agent.lock` in the state folder (dropped by the
kernel when the agent dies); readers open the database read-only. The layout follows the
recorder's store (`host/store.py`): WAL with `synchronous=NORMAL`, one transaction per
period, a file recognised by `meta.format`, never by its name.
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

from common.atomic import os_reason
from common.errors import UserError
from common.jsonable import jsonable
from common.locks import HeldLock, try_lock
from common.sqlitetx import immediate

FORMAT = "piop-agent"
VERSION = 1
DB = "agent.db"
OPEN_STATES = ("starting", "queued", "running", "paused")

JOB_COLUMNS = (
    "id",
    "volume",
    "tier",
    "kind",
    "state",
    "forced",
    "reason",
    "queued_t",
    "start_t",
    "end_t",
    "pid",
    "proc_start",
    "boot_id",
    "cgroup",
    "throttle_mbps",
    "est_bytes",
    "dev_written_bytes",
    "read_bytes",
    "processed_bytes",
    "added_bytes",
    "snapshot_id",
    "error",
    "out_dir",
    "adopted",
)
POINT_COLUMNS = ("volume", "tier", "snapshot_id", "kind", "snapshot_t", "bytes", "source", "job")
DECISION_COLUMNS = ("t", "volume", "action", "kind", "tier", "rate_mbps", "forced", "accepted", "limit_text", "reason")

_POINT_TYPES = ", ".join(c + (" TEXT" if c in ("volume", "tier", "snapshot_id", "kind", "source") else " REAL") for c in POINT_COLUMNS)

SCHEMA = f"""
CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE jobs(id INTEGER PRIMARY KEY, volume TEXT NOT NULL, tier TEXT NOT NULL, kind TEXT NOT NULL,
    state TEXT NOT NULL, forced INTEGER NOT NULL, reason TEXT, queued_t REAL NOT NULL, start_t REAL, end_t REAL,
    pid INTEGER, proc_start INTEGER, boot_id TEXT, cgroup TEXT, throttle_mbps REAL, est_bytes REAL,
    dev_written_bytes REAL, read_bytes REAL, processed_bytes REAL, added_bytes REAL, snapshot_id TEXT,
    error TEXT, out_dir TEXT, adopted INTEGER DEFAULT 0);
CREATE INDEX jobs_state ON jobs(state);
CREATE TABLE points({_POINT_TYPES},
    PRIMARY KEY(volume, tier, snapshot_id));
CREATE TABLE decisions(t REAL NOT NULL, volume TEXT, action TEXT, kind TEXT, tier TEXT, rate_mbps REAL,
    forced INTEGER, accepted INTEGER, limit_text TEXT, reason TEXT);
CREATE INDEX decisions_t ON decisions(t);
CREATE TABLE history(k INTEGER NOT NULL, volume TEXT NOT NULL, iops REAL, mbps REAL, cpu REAL, mem REAL, net REAL,
    PRIMARY KEY(k, volume)) WITHOUT ROWID;
CREATE TABLE failures(volume TEXT PRIMARY KEY, total INTEGER NOT NULL, consecutive INTEGER NOT NULL,
    next_retry_t REAL NOT NULL, last_error TEXT);
CREATE TABLE status(key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


class StateError(UserError):
    """A state folder the agent cannot use (one line for the user)."""


def _connect(db: Path, read_only: bool) -> sqlite3.Connection:
    if read_only:
        con = sqlite3.connect(f"file:{db.resolve()}?mode=ro", uri=True, timeout=10.0, isolation_level=None)
        con.execute("PRAGMA query_only = 1")
        return con
    con = sqlite3.connect(db, timeout=30.0, isolation_level=None)
    con.execute("PRAGMA journal_mode = WAL")
    con.execute("PRAGMA synchronous = NORMAL")
    con.execute("PRAGMA journal_size_limit = 4194304")
    return con


class AgentState:
    """The state database of one agent (opened for writing by the agent, read-only by `status`)."""

    def __init__(self, folder: Path, con: sqlite3.Connection, lock: HeldLock | None):
        self.folder = folder
        self.con = con
        self._lock = lock

    # -- opening ----------------------------------------------------------------------
    @classmethod
    def open(cls, folder: Path, name: str) -> AgentState:
        """Open (or create) the state in `folder` for the one agent that may write it."""
        try:
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "jobs").mkdir(exist_ok=True)
            lock = try_lock(folder / "agent.lock")
        except OSError as err:
            raise StateError(f"state {folder}: cannot use it ({os_reason(err)})") from None
        if lock is None:
            raise StateError(f"state {folder}: another piop agent is running on it (agent.lock is held)")
        db = folder / DB
        fresh = not db.exists()
        try:
            con = _connect(db, read_only=False)
            if fresh:
                con.executescript(SCHEMA)
                con.executemany("INSERT INTO meta VALUES (?, ?)", [("format", FORMAT), ("version", str(VERSION)), ("name", name)])
        except sqlite3.DatabaseError as err:
            lock.release()
            raise StateError(f"state {db}: not usable ({str(err).splitlines()[0]})") from None
        state = cls(folder, con, lock)
        state._check_format(db)
        return state

    @classmethod
    def open_read(cls, folder: Path) -> AgentState | None:
        """The state read-only, or None when no agent has written one yet."""
        db = folder / DB
        if not db.exists():
            return None
        state = cls(folder, _connect(db, read_only=True), None)
        state._check_format(db)
        return state

    def _check_format(self, db: Path) -> None:
        try:
            meta = dict(self.con.execute("SELECT key, value FROM meta").fetchall())
        except sqlite3.DatabaseError as err:
            self.close()
            raise StateError(f"state {db}: not a piop agent state ({str(err).splitlines()[0]})") from None
        if meta.get("format") != FORMAT:
            self.close()
            raise StateError(f"state {db}: not a piop agent state (meta.format is {meta.get('format')!r})")

    def close(self) -> None:
        self.con.close()
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def tx(self):
        """One transaction (a period's writes commit together or not at all)."""
        return immediate(self.con)

    # -- meta -------------------------------------------------------------------------
    def meta(self, key: str) -> str | None:
        row = self.con.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        self.con.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def start_epoch(self) -> float:
        """The agent's clock origin, fixed at its first start (kept across restarts)."""
        v = self.meta("start_epoch")
        if v is None:
            v = str(float(int(time.time())))
            self.set_meta("start_epoch", v)
        return float(v)

    # -- jobs -------------------------------------------------------------------------
    def add_job(self, **fields: Any) -> int:
        cols = [c for c in fields if c in JOB_COLUMNS]
        cur = self.con.execute(f"INSERT INTO jobs({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})", [fields[c] for c in cols])
        return int(cur.lastrowid)

    def update_job(self, job_id: int, **fields: Any) -> None:
        cols = [c for c in fields if c in JOB_COLUMNS and c != "id"]
        if cols:
            self.con.execute(f"UPDATE jobs SET {', '.join(c + ' = ?' for c in cols)} WHERE id = ?", [*(fields[c] for c in cols), job_id])

    def jobs(self, where: str = "", args: tuple = (), limit: int | None = None) -> list[dict]:
        sql = f"SELECT {', '.join(JOB_COLUMNS)} FROM jobs {where} ORDER BY id" + (f" DESC LIMIT {int(limit)}" if limit else "")
        rows = [dict(zip(JOB_COLUMNS, r)) for r in self.con.execute(sql, args).fetchall()]
        return rows[::-1] if limit else rows

    def open_jobs(self) -> list[dict]:
        return self.jobs(f"WHERE state IN ({', '.join('?' * len(OPEN_STATES))})", OPEN_STATES)

    def job_counts(self) -> dict[tuple[str, str], int]:
        """{(volume, state): count}."""
        rows = self.con.execute("SELECT volume, state, COUNT(*) FROM jobs GROUP BY volume, state").fetchall()
        return {(v, s): int(n) for v, s, n in rows}

    def stored_bytes(self, tiers: list[str]) -> list[float]:
        """Bytes the finished jobs added to each of `tiers` (what the tool reported, else what they read)."""
        out = dict.fromkeys(tiers, 0.0)
        for tier, added, read in self.con.execute("SELECT tier, added_bytes, read_bytes FROM jobs WHERE state = 'done'"):
            if tier in out:
                out[tier] += float(added or read or 0.0)
        return [out[t] for t in tiers]

    # -- restore points ---------------------------------------------------------------
    def add_points(self, rows: list[dict]) -> int:
        """Insert points not known yet; how many were new."""
        before = self.con.total_changes
        self.con.executemany(
            f"INSERT OR IGNORE INTO points({', '.join(POINT_COLUMNS)}) VALUES ({', '.join('?' * len(POINT_COLUMNS))})",
            [[r.get(c) for c in POINT_COLUMNS] for r in rows],
        )
        return self.con.total_changes - before

    def points(self) -> list[dict]:
        rows = self.con.execute(f"SELECT {', '.join(POINT_COLUMNS)} FROM points ORDER BY snapshot_t").fetchall()
        return [dict(zip(POINT_COLUMNS, r)) for r in rows]

    # -- decisions ----------------------------------------------------------------------
    def add_decision(self, **row: Any) -> None:
        self.con.execute(
            f"INSERT INTO decisions({', '.join(DECISION_COLUMNS)}) VALUES ({', '.join('?' * len(DECISION_COLUMNS))})",
            [row.get(c) for c in DECISION_COLUMNS],
        )

    def decisions(self, since: float = 0.0) -> list[dict]:
        rows = self.con.execute(f"SELECT {', '.join(DECISION_COLUMNS)} FROM decisions WHERE t >= ? ORDER BY rowid", (since,)).fetchall()
        return [dict(zip(DECISION_COLUMNS, r)) for r in rows]

    # -- observed load ----------------------------------------------------------------
    def add_history(self, rows: list[tuple]) -> None:
        """(k, volume, iops, mbps, cpu, mem, net) rows: one per volume and closed step."""
        self.con.executemany("INSERT OR REPLACE INTO history VALUES (?, ?, ?, ?, ?, ?, ?)", rows)

    def history(self, min_k: int) -> list[tuple]:
        return self.con.execute("SELECT k, volume, iops, mbps, cpu, mem, net FROM history WHERE k >= ? ORDER BY k", (min_k,)).fetchall()

    def retain(self, min_k: int, min_t: float) -> None:
        self.con.execute("DELETE FROM history WHERE k < ?", (min_k,))
        self.con.execute("DELETE FROM decisions WHERE t < ?", (min_t,))

    # -- failures -----------------------------------------------------------------------
    def failures(self) -> dict[str, dict]:
        rows = self.con.execute("SELECT volume, total, consecutive, next_retry_t, last_error FROM failures").fetchall()
        return {r[0]: {"total": r[1], "consecutive": r[2], "next_retry_t": r[3], "last_error": r[4]} for r in rows}

    def set_failure(self, volume: str, total: int, consecutive: int, next_retry_t: float, last_error: str | None) -> None:
        self.con.execute("INSERT OR REPLACE INTO failures VALUES (?, ?, ?, ?, ?)", (volume, total, consecutive, next_retry_t, last_error))

    # -- live status ------------------------------------------------------------------
    def put_status(self, key: str, value: Any) -> None:
        self.con.execute("INSERT OR REPLACE INTO status VALUES (?, ?)", (key, json.dumps(jsonable(value))))

    def status(self) -> dict[str, Any]:
        return {k: json.loads(v) for k, v in self.con.execute("SELECT key, value FROM status").fetchall()}

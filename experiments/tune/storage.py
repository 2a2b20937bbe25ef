"""Where a study lives, checked when opened, and what becomes of trials whose process died.

- An Optuna RDB URL: SQLite by default (one file, one machine; fragile with many writers),
  PostgreSQL or MySQL when several machines share one study.
- `journal:PATH`: Optuna's JournalStorage on an append-only file, several processes of one
  host without a server (it takes a file lock per write instead of SQLite's database lock).

Liveness: an RDB storage records a heartbeat of each running trial every `heartbeat_s`; a
trial silent for `grace_s` (its process was killed, its machine died) is failed by the next
process that starts a trial, and a copy of it is queued to run again (`RetryStale`, at most
`retries` times). JournalStorage has no heartbeat in Optuna 5.0, so there (and on every
storage, at once) a trial whose process on this host is gone is failed and retried the same
way (`experiments.tune.study.fail_stale_trials`).
"""

from __future__ import annotations

import copy
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common.errors import UserError
from experiments.tune.quiet import quiet_optuna

#: RDB URL schemes SQLAlchemy can open (a `+driver` suffix allowed)
RDB_SCHEMES = ("sqlite", "postgresql", "mysql", "mariadb", "oracle", "mssql")
#: how to install the driver a scheme needs by default
DRIVER_HINT = {"postgresql": "pip install piop[postgres]", "mysql": "pip install pymysql", "mariadb": "pip install pymysql"}
FORMS = "sqlite:///PATH, postgresql://USER@HOST/DB, mysql://USER@HOST/DB or journal:PATH"


@dataclass(frozen=True)
class Liveness:
    """How a trial whose process died is noticed and retried."""

    heartbeat_s: int = 60
    grace_s: int = 300
    retries: int = 2


class RetryStale:
    """Queue again a trial whose process died (Optuna's RetryHeartbeatStaleTrialCallback: same
    settings, `failed_trial` / `retry_history` in its system attributes), without the dead
    process's own attributes (so the retry is not taken for the dead process's trial)."""

    def __init__(self, retries: int) -> None:
        self.retries = retries

    def __call__(self, study, trial) -> None:
        from optuna.storages import RetryHeartbeatStaleTrialCallback

        clean = copy.copy(trial)
        clean.user_attrs = {}
        RetryHeartbeatStaleTrialCallback(max_retry=self.retries)(study, clean)


def safe_url(url: str) -> str:
    """The URL with any password hidden, for messages."""
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", url)


def scheme_of(url: str) -> str:
    """The storage kind: 'journal' or an RDB dialect ('postgresql' for 'postgresql+psycopg2'); '' if none."""
    if url.startswith("journal:"):
        return "journal"
    if "://" not in url:
        return ""
    return url.split("://", 1)[0].split("+", 1)[0].lower()


def journal_file(url: str) -> Path | None:
    """The file of a `journal:PATH` URL (`journal:///abs/path` also accepted)."""
    if not url.startswith("journal:"):
        return None
    rest = url[len("journal:") :]
    return Path(rest[2:] if rest.startswith("///") else rest)


def sqlite_file(url: str) -> Path | None:
    """The file of a `sqlite:///PATH` URL (None for other URLs and in-memory SQLite)."""
    if not url.startswith("sqlite:///"):
        return None
    path = url.split(":///", 1)[1]
    return Path(path) if path and path != ":memory:" else None


def local_file(url: str) -> Path | None:
    """The file a SQLite or journal storage lives in."""
    return journal_file(url) or sqlite_file(url)


def normalise_url(url: str) -> str:
    """A journal path made absolute (every process of the study names the same file);
    `postgres://` (common in hosting providers' URLs) spelled `postgresql://` as SQLAlchemy wants."""
    path = journal_file(url)
    if path is not None:
        return f"journal:{path.expanduser().resolve()}" if str(path) else url
    if url.startswith("postgres://"):
        return "postgresql://" + url[len("postgres://") :]
    return url


def check_url(url: str) -> str:
    """The storage kind of `url`, or a one-line UserError for a URL no storage takes."""
    scheme = scheme_of(url)
    if not scheme:
        raise UserError(f"storage {safe_url(url)!r}: not a storage URL; use {FORMS}")
    if scheme == "journal":
        if not str(journal_file(url)):
            raise UserError(f"storage {url!r}: journal:PATH needs a file path")
    elif scheme not in RDB_SCHEMES:
        raise UserError(f"storage {safe_url(url)!r}: unknown kind {scheme!r}; use {FORMS}")
    path = local_file(url)
    if path is not None and not path.parent.is_dir():
        raise UserError(f"storage {safe_url(url)!r}: folder {path.parent} does not exist")
    return scheme


def open_storage(url: str, retries: int = 5, liveness: Liveness | None = None):
    """The storage of `url` (RDB with heartbeats, or a journal file), or a one-line UserError."""
    quiet_optuna()
    url = normalise_url(url)
    scheme = check_url(url)
    live = liveness or Liveness()
    if scheme == "journal":
        return _open_journal(url)
    return _open_rdb(url, scheme, retries, live)


def _open_journal(url: str):
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    try:  # a lock left by a process killed mid-write is taken over after 30 s (Optuna's lock grace period)
        return JournalStorage(JournalFileBackend(str(journal_file(url))))
    except OSError as err:
        raise UserError(f"storage {url!r} cannot be opened: {err.strerror or err}") from None


def _open_rdb(url: str, scheme: str, retries: int, live: Liveness):
    import optuna

    kwargs: dict[str, Any] = {}
    if scheme == "sqlite":
        kwargs = {"connect_args": {"timeout": 120}}
    elif scheme in ("postgresql", "mysql", "mariadb"):
        kwargs = {"pool_pre_ping": True, "connect_args": {"connect_timeout": 10}}
    engine_url = _with_driver(url, scheme)
    last: Exception | None = None
    for attempt in range(retries):
        try:
            return optuna.storages.RDBStorage(
                engine_url,
                engine_kwargs=kwargs,
                heartbeat_interval=live.heartbeat_s,
                grace_period=live.grace_s,
                heartbeat_stale_trial_callback=RetryStale(live.retries),
            )
        except ModuleNotFoundError as err:
            raise UserError(_no_driver(url, scheme, err.name)) from None
        except Exception as err:  # noqa: BLE001 - sqlalchemy / driver errors, worded below
            last = err
            if "Failed to import DB access module" in str(err):
                raise UserError(_no_driver(url, scheme, None)) from None
            if "Can't load plugin" in str(err):
                raise UserError(f"storage {safe_url(url)!r}: SQLAlchemy knows no {url.split('://', 1)[0]!r}; use {FORMS}") from None
            msg = str(err).lower()
            if any(s in msg for s in ("already exists", "duplicate key", "locked")):
                time.sleep(0.2 * (attempt + 1))  # two processes creating the schema at once
                continue
            break
    first = str(last).strip().splitlines()[0] if last is not None and str(last).strip() else type(last).__name__
    first = re.sub(r"^\([\w.]+\)\s*", "", first)
    problem = "cannot be opened" if scheme == "sqlite" else "is unreachable"
    raise UserError(f"storage {safe_url(url)!r} {problem}: {first[:200]}")


def _with_driver(url: str, scheme: str) -> str:
    """A bare `postgresql://` URL with a driver that is installed, psycopg2 (what `piop[postgres]`
    installs) first: SQLAlchemy 2.0 takes a bare URL as psycopg2, 2.1 as psycopg 3."""
    import importlib.util

    if scheme != "postgresql" or not url.startswith("postgresql://"):
        return url
    for module, dialect in (("psycopg2", "postgresql+psycopg2"), ("psycopg", "postgresql+psycopg")):
        if importlib.util.find_spec(module) is not None:
            return dialect + url[len("postgresql") :]
    return url


def _no_driver(url: str, scheme: str, module: str | None) -> str:
    dialect = url.split("://", 1)[0]
    hint = f"pip install {dialect.split('+', 1)[1]}" if "+" in dialect else DRIVER_HINT.get(scheme)
    what = f" ({module})" if module else ""
    return f"storage {safe_url(url)!r}: its database driver is not installed{what}" + (f": {hint}" if hint else "")

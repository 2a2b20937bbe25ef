"""Where a results folder came from: the command line, piop's version and commit, the time.

A figure is reproducible only if one can tell which command, on which code, made it.
`provenance()` is that record (JSON-able); `write_command(folder)` writes it as
`command.json` into a folder a command produced (an experiment folder beside
`compare.json`, a run folder, a tuning study, a report, a backtest), and `read_command`
reads it back for the report. Spawned worker processes inherit the parent's `sys.argv`,
so a run made in a worker records the command the user typed.
"""

from __future__ import annotations

import json
import os
import platform
import shlex
import subprocess
import sys
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path

from common.atomic import atomic_write_text
from common.jsonable import dumps

COMMAND_FILE = "command.json"
_SOURCE = Path(__file__).resolve().parents[1]  # the checkout piop runs from


def version() -> str:
    """piop's installed version ('unknown' when it is run from a tree that was not installed)."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version("piop")
    except PackageNotFoundError:
        return "unknown"


@lru_cache(maxsize=1)
def git_state() -> dict:
    """The commit of the source tree piop runs from and whether it has uncommitted
    changes; empty when it is not a git checkout or git is missing."""

    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", "-C", str(_SOURCE), *args], capture_output=True, text=True, timeout=10, check=False)
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if not commit:
        return {}
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"git_commit": commit, "git_dirty": bool(status) if status is not None else None}


def _argv() -> list[str]:
    """The command line as typed: the console script's name instead of a module path."""
    argv = list(sys.argv)
    if argv and (argv[0].endswith(("experiments/__main__.py", "experiments")) or Path(argv[0]).name == "piop"):
        argv[0] = "piop"
    return argv


def provenance() -> dict:
    """argv, the working folder, piop version, git commit (if any), Python, host, UTC time."""
    argv = _argv()
    return {
        "argv": argv,
        "command": shlex.join(argv),
        "cwd": os.getcwd(),
        "piop_version": version(),
        **git_state(),
        "python": platform.python_version(),
        "host": platform.node(),
        "time": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def write_command(folder: str | Path, record: dict | None = None) -> Path:
    """Write `command.json` (the provenance of what made `folder`) atomically into it."""
    path = Path(folder) / COMMAND_FILE
    atomic_write_text(path, dumps(record if record is not None else provenance()))
    return path


def read_command(folder: str | Path) -> dict | None:
    """The `command.json` of `folder`, else the `command` of its `summary.json` meta, else None."""
    folder = Path(folder)
    for path, pick in ((folder / COMMAND_FILE, lambda d: d), (folder / "summary.json", lambda d: (d.get("meta") or {}).get("command"))):
        try:
            found = pick(json.loads(path.read_text()))
        except (OSError, ValueError, AttributeError):
            continue
        if isinstance(found, dict) and found.get("argv"):
            return found
    return None

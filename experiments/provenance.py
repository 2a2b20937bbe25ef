"""Where a results folder came from: the command line, piop's version and commit, the time.

A figure is reproducible only if one can tell which command, on which code, made it.
`provenance()` is that record (JSON-able); every results file that describes a folder
stores it under `provenance` (`compare.json`, a run's `summary.json` meta, a tuning
study's and a backtest's `summary.json`), the report prints it, and `read_provenance`
reads it back. Spawned worker processes inherit the parent's `sys.argv`, so a run made
in a worker records the command the user typed.
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


def read_provenance(folder: str | Path) -> dict | None:
    """The provenance recorded in a results folder: `compare.json`'s, else the run's (or a
    study's, a backtest's) `summary.json`'s; None when it was made by an older piop."""
    folder = Path(folder)
    for name in ("compare.json", "summary.json"):
        try:
            data = json.loads((folder / name).read_text())
        except (OSError, ValueError):
            continue
        if not isinstance(data, dict):
            continue
        found = data.get("provenance") or (data.get("meta") or {}).get("provenance")
        if isinstance(found, dict) and found.get("argv"):
            return found
    return None

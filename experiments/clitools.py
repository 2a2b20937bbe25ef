"""Shared plumbing of the `piop` sub-commands: one-line user errors and JSON output."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable

import typer

from common.errors import UserError


def user_errors(fn: Callable) -> Callable:
    """Print a user's mistake as one line on stderr and exit 2 (no traceback)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from common.registry import UnknownName
        from workloads.traces.errors import TraceError

        try:
            return fn(*args, **kwargs)
        except (UserError, TraceError, UnknownName, FileNotFoundError, IsADirectoryError, PermissionError) as err:
            msg = str(err) if not isinstance(err, OSError) or not err.filename else f"{err.filename}: {err.strerror}"
            typer.echo(f"error: {msg.splitlines()[0] if msg else type(err).__name__}", err=True)
            raise typer.Exit(2) from None

    return wrapper


def print_json(data) -> None:
    from experiments.results import _jsonable

    sys.stdout.write(json.dumps(_jsonable(data), indent=2) + "\n")

"""Shared plumbing of the `piop` sub-commands: one-line user errors, tables, progress, JSON."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from common.errors import UserError
from common.interrupts import Interrupted, catch_sigint
from common.jsonable import dumps
from common.oserrors import describe
from common.registry import UnknownName

#: progress and messages go to stderr, so `--json` output on stdout stays clean
console = Console(stderr=True)


#: exit code after an interrupt (128 + SIGINT, as shells report it)
EXIT_INTERRUPTED = 130


def user_errors(fn: Callable) -> Callable:
    """Print a user's mistake as one line on stderr and exit 2 (no traceback).

    A mistake is a `UserError` (bad config, option, trace: trace errors subclass it), an
    unknown registry name, or an OS error on a path the user gave (missing, unreadable,
    disk full, read-only), printed as `PATH: reason`: the environment, not a bug in piop.
    An interrupt (Ctrl-C) prints one line, `interrupted: <what was kept>` when the
    command said it (`common.interrupts.Interrupted`), and exits 130.
    """

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        catch_sigint()
        try:
            return fn(*args, **kwargs)
        except (UserError, UnknownName, OSError) as err:
            msg = describe(err) if isinstance(err, OSError) else str(err)
            typer.echo(f"error: {msg.splitlines()[0] if msg.strip() else type(err).__name__}", err=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt as err:
            note = str(err) if isinstance(err, Interrupted) else ""
            typer.echo(f"interrupted: {note}" if note else "interrupted", err=True)
            raise typer.Exit(EXIT_INTERRUPTED) from None

    return wrapper


def print_json(data) -> None:
    """`data` as JSON on stdout, by the one rule of `common.jsonable` (NaN as null)."""
    sys.stdout.write(dumps(data) + "\n")


def print_table(rows: list[dict], columns: list[tuple[str, str, str]], title: str = "") -> None:
    """A rich table on stdout; `columns` are (key, header, format)."""
    table = Table(title=title or None)
    for _, header, _ in columns:
        table.add_column(header, justify="right" if header not in ("policy", "volume") else "left")
    for r in rows:
        table.add_row(*[(fmt.format(r[key]) if r.get(key) is not None else "-") for key, _, fmt in columns])
    out = Console() if sys.stdout.isatty() else Console(width=200)  # pipes and logs: no truncated columns
    out.print(table)


def progress_bar() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>5.1f}%"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )

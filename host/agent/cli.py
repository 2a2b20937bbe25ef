"""`piop agent CONFIG` (run the loop, or `--dry-run`) and `piop agent status CONFIG`.

`app` is a Typer group whose default command is `run`: `piop agent CONFIG` runs the
agent, `piop agent status CONFIG` shows its state. The `piop` CLI mounts it with
`app.add_typer(agent_cli.app, name="agent")`; `python -m host agent ...` too. A user's
mistake prints one line `error: ...` on stderr and exits 2.
"""

from __future__ import annotations

import functools
import json
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import typer
from typer.core import TyperGroup

from common.errors import UserError
from common.jsonable import jsonable


class DefaultRun(TyperGroup):
    """A group whose first argument, when it names no sub-command, is the `run` command's."""

    def parse_args(self, ctx, args):
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = ["run", *args]
        return super().parse_args(ctx, args)


app = typer.Typer(
    cls=DefaultRun,
    add_completion=False,
    pretty_exceptions_enable=False,
    no_args_is_help=True,
    help="Run the backup agent on this host (piop agent CONFIG), or show its status.",
)


def one_line_errors(fn: Callable) -> Callable:
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        import sqlite3

        from common.registry import UnknownName

        try:
            return fn(*args, **kwargs)
        except BrokenPipeError:  # the reader went away (e.g. `| head`): nothing more to say
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 (the interpreter's final flush must not fail)
            raise typer.Exit(0) from None
        except (UserError, UnknownName, sqlite3.DatabaseError, OSError) as err:
            msg = f"{err.filename}: {err.strerror}" if isinstance(err, OSError) and err.filename else str(err)
            typer.echo(f"error: {msg.splitlines()[0] if msg else type(err).__name__}", err=True)
            raise typer.Exit(2) from None

    return wrapper


def _print_json(data) -> None:
    sys.stdout.write(json.dumps(jsonable(data), indent=2) + "\n")


@app.command("run")
@one_line_errors
def run(
    config: Path = typer.Argument(..., help="agent config (YAML)"),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="advise only: the next backup of each volume, its window, rate, kind, tier and why"
    ),
    duration: float | None = typer.Option(None, "--duration", help="stop after this many seconds (default: until SIGTERM / Ctrl-C)"),
    as_json: bool = typer.Option(False, "--json", help="with --dry-run: the advice as JSON on stdout"),
) -> None:
    """Every period: observe, forecast, decide with the configured policy, start and steer backups."""
    from host.agent import config as agent_config
    from host.agent.loop import Agent

    loaded = agent_config.load(config)
    if duration is not None and duration < 0:
        raise UserError(f"--duration: must be >= 0 (got {duration})")
    if dry_run:
        _dry_run(loaded, as_json)
        return
    agent = Agent(loaded)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    try:
        agent.open()
        agent.log(
            f"agent {loaded.cfg.name}: {len(agent.names)} volume(s), policy {loaded.cfg.policy}, period {loaded.cfg.period:g} "
            f"s, state {loaded.state_dir}"
        )
        agent.run(stop, duration)
    finally:
        agent.close()


def _dry_run(loaded, as_json: bool) -> None:
    from host.agent.advise import advise
    from host.agent.loop import Agent

    agent = Agent(loaded, log=lambda m: typer.echo(m, err=True), dry_run=True)
    try:
        data = advise(agent, observe_s=min(loaded.cfg.period, 2.0))
    finally:
        agent.close()
    if as_json:
        _print_json(data)
        return
    if data["feasibility"]["warning"]:
        typer.echo(data["feasibility"]["warning"])
    for r in data["volumes"]:
        age = f"restore point age {r['rp_age_s']:.0f} s" if math.isfinite(r["rp_age_s"]) else "no restore point yet"
        head = f"{r['volume']}: {age}, RPO {r['rpo_s']:.0f} s"
        if r["job"]:
            head += f"; {r['job']}"
        if r.get("start") is None:
            typer.echo(f"{head}; {r['reason']}")
            continue
        when = (
            "now" if r["in_s"] < loaded.cfg.period else f"at {time.strftime('%H:%M:%S', time.localtime(r['start']))} (in {r['in_s']:.0f} s)"
        )
        rate = f"about {r['expected_mbps']:.1f} MB/s" + (
            " (unthrottled)" if r["rate_mbps"] is None else f" (limit {r['rate_mbps']:.1f} MB/s)"
        )
        typer.echo(
            f"{head}\n  next: {'FORCED ' if r['forced'] else ''}{r['kind']} to {r['tier']} {when}, {rate}, about "
            f"{r['bytes'] / 1e6:.1f} MB, "
            f"window until {time.strftime('%H:%M:%S', time.localtime(r['window_end']))}\n  why: {r['reason']}"
        )


@app.command("status")
@one_line_errors
def status(
    config: Path = typer.Argument(..., help="agent config (YAML)"),
    as_json: bool = typer.Option(False, "--json", help="the status as JSON on stdout"),
) -> None:
    """The agent's volumes, restore points, jobs, limits, load and predicted RPO misses."""
    from host.agent import config as agent_config
    from host.agent.status import collect, render

    data = collect(agent_config.load(config))
    if as_json:
        _print_json(data)
    else:
        render(data)

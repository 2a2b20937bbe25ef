"""The `piop` command line: run experiments, benchmark, replay traces, forecast, compare."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from experiments.errors import UserError

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, no_args_is_help=True, help=__doc__)
console = Console(stderr=True)


def user_errors(fn: Callable) -> Callable:
    """Print a user's mistake as one line on stderr and exit 2 (no traceback)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from sim.registry import UnknownName

        try:
            return fn(*args, **kwargs)
        except (UserError, UnknownName, FileNotFoundError, IsADirectoryError, PermissionError) as err:
            msg = str(err) if not isinstance(err, OSError) or not err.filename else f"{err.filename}: {err.strerror}"
            typer.echo(f"error: {msg}", err=True)
            raise typer.Exit(2) from None

    return wrapper


def print_json(data) -> None:
    from experiments.results import _jsonable

    sys.stdout.write(json.dumps(_jsonable(data), indent=2) + "\n")


SUMMARY_COLUMNS = [
    ("policy", "policy", "{}"),
    ("seed", "seed", "{}"),
    ("rpo_compliance_pct", "RPO %", "{:.2f}"),
    ("rpo_violations", "RPO viol.", "{}"),
    ("rto_compliance_pct", "RTO %", "{:.2f}"),
    ("impact_io_mean", "impact mean", "{:.4f}"),
    ("impact_p99", "impact p99", "{:.3f}"),
    ("io_over_threshold_pct", "IO > thr %", "{:.2f}"),
    ("backup_tb", "backup TB", "{:.2f}"),
    ("storage_cost", "cost", "{:.0f}"),
    ("sim_wall_s", "wall s", "{:.1f}"),
]


def print_table(rows: list[dict], columns: list[tuple[str, str, str]], title: str = "") -> None:
    table = Table(title=title or None)
    for _, header, _ in columns:
        table.add_column(header, justify="right" if header not in ("policy", "volume") else "left")
    for r in rows:
        table.add_row(*[(fmt.format(r[key]) if r.get(key) is not None else "-") for key, _, fmt in columns])
    Console().print(table)


def progress_bar() -> Progress:
    return Progress(
        TextColumn("{task.description}"), BarColumn(), TextColumn("{task.percentage:>5.1f}%"),
        TimeElapsedColumn(), TimeRemainingColumn(), console=console, transient=False,
    )


@app.command()
@user_errors
def run(
    config: Path = typer.Argument(..., help="experiment YAML config"),
    policy: list[str] | None = typer.Option(None, "--policy", "-p", help="run only these policies (labels)"),
    seed: list[int] | None = typer.Option(None, "--seed", "-s", help="seeds (default: the config's)"),
    duration_h: float | None = typer.Option(None, help="override the simulated duration (hours)"),
    out: Path = typer.Option(Path("results"), help="results root folder"),
    as_json: bool = typer.Option(False, "--json", help="print the summary as JSON on stdout"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress bar"),
):
    """Run every policy of CONFIG (each seed) and write results/<experiment>/<run>/."""
    from experiments.config import load_config
    from experiments.runner import execute, plans

    cfg = load_config(config, {"duration_h": duration_h})
    todo = plans(cfg, policy, seed)
    rows = []
    with progress_bar() as bar:
        for plan in todo:
            task = bar.add_task(f"{plan.run_id:<24}", total=1.0, visible=not quiet)
            rows.append(execute(plan, out, progress=lambda f, task=task: bar.update(task, completed=f)))
    if as_json:
        print_json(rows)
    else:
        print_table(rows, SUMMARY_COLUMNS, title=f"{cfg.name}: {cfg.duration_h:g} h, {len(cfg.fleet)} volume groups")
        console.print(f"results: {out / cfg.name}")


@app.command()
@user_errors
def bench(
    volumes: str = typer.Option("10,100,1000", help="fleet sizes, comma separated"),
    days: float = typer.Option(7.0, help="simulated days per fleet"),
    naive_hours: float = typer.Option(6.0, help="simulated hours for the one-process-per-volume baseline"),
    workload: str = typer.Option("database", help="synthetic workload for the fleet"),
    as_json: bool = typer.Option(False, "--json", help="print the figures as JSON on stdout"),
):
    """Simulator throughput: volume-ticks/s vectorised vs one SimPy process per volume."""
    from experiments.bench import run_bench

    try:
        sizes = [int(v) for v in volumes.split(",") if v.strip()]
    except ValueError:
        raise UserError(f"--volumes: expected comma-separated integers, got {volumes!r}") from None
    rows = run_bench(sizes, days, naive_hours, workload, log=None if as_json else console.print)
    if as_json:
        print_json(rows)
    else:
        print_table(
            rows,
            [
                ("volumes", "volumes", "{}"),
                ("days", "days", "{:g}"),
                ("vol_ticks_per_s", "vol-ticks/s", "{:,.0f}"),
                ("naive_vol_ticks_per_s", "naive vol-ticks/s", "{:,.0f}"),
                ("speedup", "speed-up", "{:.1f}x"),
                ("events_per_tick", "events/tick", "{:.2f}"),
                ("naive_events_per_tick", "naive events/tick", "{:.0f}"),
                ("peak_rss_mb", "peak RSS MB", "{:.0f}"),
            ],
            title="simulator benchmark (fixed policy, 10 s ticks)",
        )


def main() -> None:  # pragma: no cover - console script shim
    app()

"""`piop forecast`: backtests of the Predictive I/O Profiler's forecasters.

- `piop forecast backtest TRACE-or-CONFIG`: rolling-origin evaluation (no leakage) of
  each forecaster on a real trace (Bitbrains folder/file, any family the traces module
  reads), a YAML experiment config (its fleet) or a synthetic fleet (`--synthetic
  database,vm,fileserver`). Prints a table (median over volumes of the MAE relative to
  the daily seasonal naive at 5 min / 1 h / 6 h / 24 h ahead and for the mean load of the
  next 1 h / 6 h, sMAPE, P90 coverage, burst precision/recall, fit and predict time),
  `--json` prints the same as JSON on stdout; writes results/backtest/<name>/metrics.parquet
  (per volume), summary.parquet and forecast.png (forecast vs actual with the P90 band).

Forecasters are registry names with optional parameters: `seasonal_naive:season=weekly`,
`lstm:epochs=5`. A user's mistake prints one line `error: ...` on stderr and exits 2.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import typer
from rich.progress import TaskID

from common.errors import UserError
from experiments.clitools import print_json, progress_bar, user_errors
from experiments.provenance import provenance

forecast_app = typer.Typer(
    add_completion=False, pretty_exceptions_enable=False, no_args_is_help=True, help="Backtest the forecasters (predictive I/O profiler)."
)

DEFAULT_FORECASTERS = (
    "naive,seasonal_naive,seasonal_naive:season=weekly,seasonal_median,trailing_mean,trailing_median,ewma,blend,ets,arima,mstl,lstm,oracle"
)


# ----------------------------------------------------------------------------- output

_TABLE = [
    ("rel_mbps_5m", "5m"),
    ("rel_mbps_1h", "1h"),
    ("rel_mbps_6h", "6h"),
    ("rel_mbps_24h", "24h"),
    ("rel_mbps_mean_1h", "mean 1h"),
    ("rel_mbps_mean_6h", "mean 6h"),
    ("rel_iops_mean_1h", "IOPS mean 1h"),
    ("rel_iops_mean_6h", "IOPS mean 6h"),
    ("smape_mbps_mean_1h", "sMAPE mean 1h"),
    ("upper_coverage", "upper cov"),
    ("coverage_vol_p10", "cov p10"),
    ("coverage_vol_p90", "cov p90"),
    ("coverage_within_5pts", "vols ±5pt"),
    ("burst_precision", "burst P"),
    ("burst_recall", "burst R"),
    ("fit_s", "fit s"),
    ("predict_ms", "pred ms"),
]


def _fmt(v) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if isinstance(v, float):
        return f"{v:.3f}" if abs(v) < 100 else f"{v:.0f}"
    return str(v)


def _print_tables(summary, title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    con = Console() if sys.stdout.isatty() else Console(width=200)
    for kind in summary.kind.unique():
        s = summary[summary.kind == kind]
        t = Table(
            title=(
                f"{title} - {kind} ({int(s.volumes.iloc[0])} volumes): MAE / daily seasonal naive's MAE (MB/s unless IOPS), "
                "median over volumes"
            ),
            title_justify="left",
        )
        t.add_column("forecaster", no_wrap=True)
        cols = [(c, h) for c, h in _TABLE if c in s.columns]
        for _, h in cols:
            t.add_column(h, justify="right", no_wrap=True)
        for _, row in s.iterrows():
            t.add_row(str(row.forecaster), *[_fmt(row[c]) for c, _ in cols])
        con.print(t)


def _check_options(
    origins: int,
    step: float,
    horizon_h: float,
    train_days: float,
    retrain_h: float,
    top: int | None,
    count: int,
    days: float | None,
    forecasters: str,
) -> list[str]:
    """The forecaster specs, once every numeric option is in range."""
    for v, what in ((origins, "--origins"), (step, "--step"), (horizon_h, "--horizon-h")):
        if v is None or v <= 0:
            raise UserError(f"{what} must be > 0")
    if train_days < 0 or retrain_h < 0 or (top is not None and top < 1) or count < 1 or (days is not None and days <= 0):
        raise UserError("--train-days, --retrain-h must be >= 0; --top, --count, --days > 0")
    specs = [s.strip() for s in forecasters.split(",") if s.strip()]
    if not specs:
        raise UserError("--forecasters: give at least one name")
    return specs


@contextmanager
def _progress(quiet: bool) -> Iterator[Callable[[str, int, int, str], None] | None]:
    """A bar per forecaster on stderr, shown as it starts and advanced at each forecast origin;
    while a model trains its description says which epoch (none with -q)."""
    if quiet:
        yield None
        return
    bar = progress_bar()
    tasks: dict[str, TaskID] = {}

    def progress(label: str, i: int, n: int, note: str = "") -> None:
        what = f"{label:<30} origins {i}/{n}" + (f" ({note})" if note else "")
        if label not in tasks:
            tasks[label] = bar.add_task(what, total=n)
        bar.update(tasks[label], completed=i, description=what)

    with bar:
        yield progress


# ----------------------------------------------------------------------------- command


@forecast_app.callback()
def _group() -> None:
    """Backtest the forecasters (predictive I/O profiler)."""


@forecast_app.command("backtest")
@user_errors
def backtest(
    target: str = typer.Argument(None, help="trace file/folder (e.g. ../shared/traces/bitbrains_gwa_t12_rnd) or experiment YAML"),
    forecasters: str = typer.Option(DEFAULT_FORECASTERS, "--forecasters", "-f", help="comma-separated names, params as name:key=value"),
    synthetic: str = typer.Option(None, "--synthetic", help="synthetic fleet instead of TARGET: kinds, e.g. database,vm,fileserver"),
    count: int = typer.Option(4, "--count", help="synthetic volumes per kind"),
    days: float = typer.Option(None, "--days", help="days of load for synthetic fleets / configs (default 42)"),
    family: str = typer.Option("auto", "--family", help="trace family (auto: detected from the content)"),
    top: int = typer.Option(None, "--top", help="keep the N most active volumes"),
    origins: int = typer.Option(48, "--origins", help="forecast origins (rolling, spread over the evaluation span)"),
    step: float = typer.Option(300.0, "--step", help="history step in seconds"),
    tick: float = typer.Option(None, "--tick", help="load tick in seconds (default: the step)"),
    horizon_h: float = typer.Option(24.0, "--horizon-h", help="forecast horizon in hours"),
    train_days: float = typer.Option(28.0, "--train-days", help="history before the first origin"),
    retrain_h: float = typer.Option(168.0, "--retrain-h", help="refit every N simulated hours (0: fit once)"),
    seed: int = typer.Option(0, "--seed"),
    name: str = typer.Option(None, "--name", help="results folder name (default: from the input)"),
    out: Path = typer.Option(Path("results/backtest"), "--out", help="results root"),
    json_out: bool = typer.Option(False, "--json", help="print the summary as JSON on stdout instead of tables"),
    plot_volumes: int = typer.Option(4, "--plot-volumes", help="volumes in forecast.png (0: no plot)"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress bar on stderr"),
) -> None:
    """Rolling-origin backtest of forecasters on a trace, a config's fleet or a synthetic fleet."""
    import forecasters as _f  # noqa: F401  (registration)
    from experiments.backtest_io import load_input, write_results
    from forecasters.backtest import BacktestConfig, build, parse_spec, run_backtest

    specs = _check_options(origins, step, horizon_h, train_days, retrain_h, top, count, days, forecasters)
    history, ids, label = load_input(target, synthetic, family, count, days, step, tick, top, seed, name)
    for s in specs:  # fail fast on unknown names / bad parameters
        try:
            parse_spec(s)
            build(s, history, BacktestConfig().rule)
        except (TypeError, ValueError) as err:
            raise UserError(f"forecaster {s!r}: {err}".replace("__init__() ", "")) from None

    cfg = BacktestConfig(horizon_s=horizon_h * 3600.0, n_origins=origins, train_days=train_days, retrain_hours=retrain_h or None)
    need = (train_days * 86400 + horizon_h * 3600) / step
    if history.n_steps < need:
        raise UserError(
            f"series too short: {history.n_steps * step / 86400:.1f} days, need --train-days {train_days:g} + --horizon-h {horizon_h:g} h"
        )

    from common.atomic import check_writable

    check_writable(out / label, "backtest results folder")  # before the work, not after it
    with _progress(quiet) as progress:
        res = run_backtest(history, specs, cfg, volume_ids=ids, progress=progress)
    meta = {
        "name": label,
        "input": synthetic and f"synthetic:{synthetic}" or target,
        "volumes": len(ids),
        "kinds": sorted(set(history.kinds)),
        "origins": int(len(res.origins)),
        "step_s": step,
        "horizon_h": horizon_h,
        "train_days": train_days,
        "retrain_h": retrain_h,
    }
    data = write_results(res, history, out / label, {**meta, "provenance": provenance()}, plot_volumes)
    if json_out:
        print_json(data)
        return
    folder = out / label
    _print_tables(res.summary, label)
    typer.echo(f"best (median relative MAE, mean load of next 1 h): {data['best_mean_1h']}; next 6 h: {data['best_mean_6h']}")
    typer.echo(f"wrote {folder}/metrics.parquet, summary.parquet, summary.json" + (", forecast.png" if plot_volumes > 0 else ""))

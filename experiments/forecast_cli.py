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

import json
import math
import sys
from pathlib import Path

import typer

from experiments.clitools import user_errors
from common.errors import UserError

forecast_app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, no_args_is_help=True, help="Backtest the forecasters (predictive I/O profiler).")

DEFAULT_FORECASTERS = "naive,seasonal_naive,seasonal_naive:season=weekly,seasonal_median,trailing_mean,trailing_median,ewma,blend,ets,arima,mstl,lstm,oracle"


_Usage = UserError  # a user's mistake in this command's inputs
_user_errors = user_errors


# ----------------------------------------------------------------------------- loading


def _history_of(source, step: float, n_steps: int, start_epoch: float):
    from sim.history import history_from_source

    if n_steps < 1:
        raise _Usage("the series is shorter than one history step")
    return history_from_source(source, step, n_steps, start_epoch=start_epoch)


def _load_trace(path: str, family: str, step: float, tick: float | None, top: int | None, seed: int):
    import workloads.traces  # noqa: F401  (registration)
    from workloads.registry import TRACES

    p = Path(path)
    if not p.exists():
        raise _Usage(f"{path}: no such file or folder")
    tick = tick or step
    if round(step / tick) * tick != step:
        raise _Usage(f"--step ({step:g} s) must be a whole multiple of --tick ({tick:g} s)")
    params = {"top": top} if top else {}
    try:
        src = TRACES.create(family, path=str(p), tick_s=tick, seed=seed, **params)
    except (TypeError, ValueError) as err:
        raise _Usage(f"{path}: {err}") from None
    n_ticks = getattr(src, "n_ticks", None)
    if n_ticks is None:
        raise _Usage(f"{path}: the {family} source does not tell its length")
    start = float(getattr(src, "start_epoch", 0.0))
    n_steps = int(n_ticks * tick // step)
    return _history_of(src, step, n_steps, start), [v.volume_id for v in src.volumes]


def _load_synthetic(kinds: list[str], count: int, days: float, step: float, tick: float | None, seed: int):
    import workloads.synthetic  # noqa: F401  (registration)
    from workloads.base import FleetLoad
    from workloads.registry import SYNTHETIC

    tick = tick or step
    start = 1704067200.0  # 2024-01-01 00:00 UTC, a Monday
    sources = []
    for i, k in enumerate(kinds):
        try:
            sources.append(SYNTHETIC.create(k, count=count, tick_s=tick, seed=seed * 1000 + i, id_prefix=f"{k}-", start_epoch=start))
        except (TypeError, ValueError) as err:
            raise _Usage(f"--synthetic {k}: {err}") from None
    fleet = FleetLoad(sources)
    return _history_of(fleet, step, int(days * 86400 // step), start), [v.volume_id for v in fleet.volumes]


def _load_config(path: str, days: float | None, step: float, tick: float | None, seed: int):
    try:
        from experiments.config import load_config
        from experiments.runner import build_fleet
    except ImportError:  # pragma: no cover
        raise _Usage("this checkout has no experiment config loader; use --synthetic database,vm,fileserver") from None
    cfg = load_config(path)
    # forecasting works on history steps: a tick of one step is enough and much faster
    cfg = cfg.model_copy(update={"tick_s": tick or step, "history_step_s": step})
    load, _, start = build_fleet(cfg, seed)
    days = days or max(cfg.duration_h / 24.0, 42.0)
    return _history_of(load, step, int(days * 86400 // step), start), [v.volume_id for v in load.volumes]


def _select_top(history, ids: list[str], top: int | None):
    import numpy as np

    from sim.types import LoadHistory

    if not top or top >= len(ids):
        return history, ids
    order = np.argsort(-history.mbps.mean(axis=0), kind="stable")[:top]
    cols = lambda a: np.ascontiguousarray(a[:, order])  # noqa: E731
    h = LoadHistory(history.step_s, history.start_epoch, history.times, cols(history.iops), cols(history.mbps), cols(history.cpu_pct), cols(history.mem_pct), cols(history.net_mbps), [history.kinds[i] for i in order])
    return h, [ids[i] for i in order]


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
    ("upper_coverage", "P90 cov"),
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
        t = Table(title=f"{title} - {kind} ({int(s.volumes.iloc[0])} volumes): MAE / daily seasonal naive's MAE (MB/s unless IOPS), median over volumes", title_justify="left")
        t.add_column("forecaster", no_wrap=True)
        cols = [(c, h) for c, h in _TABLE if c in s.columns]
        for _, h in cols:
            t.add_column(h, justify="right", no_wrap=True)
        for _, row in s.iterrows():
            t.add_row(str(row.forecaster), *[_fmt(row[c]) for c, _ in cols])
        con.print(t)


def _jsonable(x):
    import numpy as np

    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


# ----------------------------------------------------------------------------- command


@forecast_app.callback()
def _group() -> None:
    """Backtest the forecasters (predictive I/O profiler)."""


@forecast_app.command("backtest")
@_user_errors
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
    quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress on stderr"),
) -> None:
    """Rolling-origin backtest of forecasters on a trace, a config's fleet or a synthetic fleet."""
    import numpy as np

    import forecasters as _f  # noqa: F401  (registration)
    from forecasters.backtest import BacktestConfig, best_forecaster, build, parse_spec, plot, run_backtest

    for v, what in ((origins, "--origins"), (step, "--step"), (horizon_h, "--horizon-h")):
        if v is None or v <= 0:
            raise _Usage(f"{what} must be > 0")
    if train_days < 0 or retrain_h < 0 or (top is not None and top < 1) or count < 1 or (days is not None and days <= 0):
        raise _Usage("--train-days, --retrain-h must be >= 0; --top, --count, --days > 0")
    specs = [s.strip() for s in forecasters.split(",") if s.strip()]
    if not specs:
        raise _Usage("--forecasters: give at least one name")

    if synthetic:
        kinds = [k.strip() for k in synthetic.split(",") if k.strip()]
        history, ids = _load_synthetic(kinds, count, days or 42.0, step, tick, seed)
        label = name or "synthetic-" + "-".join(kinds)
    elif target is None:
        raise _Usage("give a trace path or a YAML config, or --synthetic database,vm,fileserver")
    elif target.lower().endswith((".yaml", ".yml")):
        history, ids = _load_config(target, days, step, tick, seed)
        label = name or Path(target).stem
    else:
        history, ids = _load_trace(target, family, step, tick, top, seed)
        label = name or Path(target.rstrip("/")).name.split(".")[0]
    history, ids = _select_top(history, ids, top)
    if not ids:
        raise _Usage("no volumes to forecast")

    for s in specs:  # fail fast on unknown names / bad parameters
        try:
            parse_spec(s)
            build(s, history, BacktestConfig().rule)
        except (TypeError, ValueError) as err:
            raise _Usage(f"forecaster {s!r}: {err}".replace("__init__() ", "")) from None

    cfg = BacktestConfig(horizon_s=horizon_h * 3600.0, n_origins=origins, train_days=train_days, retrain_hours=retrain_h or None)
    need = (train_days * 86400 + horizon_h * 3600) / step
    if history.n_steps < need:
        raise _Usage(f"series too short: {history.n_steps * step / 86400:.1f} days, need --train-days {train_days:g} + --horizon-h {horizon_h:g} h")

    progress = None
    if not quiet:
        from rich.console import Console

        err_con = Console(stderr=True)

        def progress(lbl: str, i: int, n: int) -> None:
            if i == n or i == 1:
                err_con.print(f"[dim]{lbl}: origin {i}/{n}[/dim]")

    res = run_backtest(history, specs, cfg, volume_ids=ids, progress=progress)
    folder = out / label
    folder.mkdir(parents=True, exist_ok=True)
    res.metrics.to_parquet(folder / "metrics.parquet", index=False)
    res.summary.to_parquet(folder / "summary.parquet", index=False)
    best = best_forecaster(res.summary)
    if plot_volumes > 0:
        shown = [b for b in dict.fromkeys([best, "lstm", "seasonal_naive"]) if b]
        plot(res, history, folder / "forecast.png", forecasters=shown, n_volumes=plot_volumes)
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
        "first_origin_epoch": float(history.start_epoch + res.origins[0] * step),
        "best_mean_1h": best,
        "best_mean_6h": best_forecaster(res.summary, "rel_mbps_mean_6h"),
        "folder": str(folder),
    }
    (folder / "summary.json").write_text(json.dumps(_jsonable({**meta, "summary": res.summary.to_dict(orient="records")}), indent=2))
    if json_out:
        sys.stdout.write(json.dumps(_jsonable({**meta, "summary": res.summary.to_dict(orient="records")}), indent=2) + "\n")
        return
    _print_tables(res.summary, label)
    typer.echo(f"best (median relative MAE, mean load of next 1 h): {best}; next 6 h: {meta['best_mean_6h']}")
    typer.echo(f"wrote {folder}/metrics.parquet, summary.parquet, summary.json" + (", forecast.png" if plot_volumes > 0 else ""))
    del np

"""Inputs and outputs of `piop forecast backtest`: a trace, an experiment config's fleet or
a synthetic fleet read as one `LoadHistory`; the results folder written afterwards."""

from __future__ import annotations

from pathlib import Path

from common.atomic import atomic_path, atomic_write_text
from common.errors import UserError
from common.jsonable import dumps


def _history_of(source, step: float, n_steps: int, start_epoch: float):
    from sim.history import history_from_source

    if n_steps < 1:
        raise UserError("the series is shorter than one history step")
    return history_from_source(source, step, n_steps, start_epoch=start_epoch)


def load_trace(path: str, family: str, step: float, tick: float | None, top: int | None, seed: int):
    """A trace's load as a history at `step` seconds, and its volume ids."""
    import workloads.traces  # noqa: F401  (registration)
    from experiments.trace_tools import plugin_family
    from workloads.registry import TRACES

    p = Path(path)
    if not p.exists():
        raise UserError(f"{path}: no such file or folder")
    tick = tick or step
    if round(step / tick) * tick != step:
        raise UserError(f"--step ({step:g} s) must be a whole multiple of --tick ({tick:g} s)")
    params = {"top": top} if top else {}
    family = plugin_family(p, family) or family
    try:
        src = TRACES.create(family, path=str(p), tick_s=tick, seed=seed, **params)
    except (TypeError, ValueError) as err:
        raise UserError(f"{path}: {err}") from None
    n_ticks = getattr(src, "n_ticks", None)
    if n_ticks is None:
        raise UserError(f"{path}: the {family} source does not tell its length")
    start = float(getattr(src, "start_epoch", 0.0))
    n_steps = int(n_ticks * tick // step)
    return _history_of(src, step, n_steps, start), [v.volume_id for v in src.volumes]


def load_synthetic(kinds: list[str], count: int, days: float, step: float, tick: float | None, seed: int):
    """`count` synthetic volumes of each kind over `days`, as a history, and their ids."""
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
            raise UserError(f"--synthetic {k}: {err}") from None
    fleet = FleetLoad(sources)
    return _history_of(fleet, step, int(days * 86400 // step), start), [v.volume_id for v in fleet.volumes]


def load_config_fleet(path: str, days: float | None, step: float, tick: float | None, seed: int):
    """An experiment config's fleet over `days` (default: its duration, at least 42 days), as a history."""
    from experiments.config import load_config
    from experiments.runner import build_fleet

    cfg = load_config(path)
    # forecasting works on history steps: a tick of one step is enough and much faster
    cfg = cfg.model_copy(update={"tick_s": tick or step, "history_step_s": step})
    load, _, start = build_fleet(cfg, seed)
    days = days or max(cfg.duration_h / 24.0, 42.0)
    return _history_of(load, step, int(days * 86400 // step), start), [v.volume_id for v in load.volumes]


def select_top(history, ids: list[str], top: int | None):
    """The `top` volumes by mean MB/s (all when `top` is None)."""
    import numpy as np

    from sim.types import LoadHistory

    if not top or top >= len(ids):
        return history, ids
    order = np.argsort(-history.mbps.mean(axis=0), kind="stable")[:top]
    cols = lambda a: np.ascontiguousarray(a[:, order])  # noqa: E731
    h = LoadHistory(
        history.step_s,
        history.start_epoch,
        history.times,
        cols(history.iops),
        cols(history.mbps),
        cols(history.cpu_pct),
        cols(history.mem_pct),
        cols(history.net_mbps),
        [history.kinds[i] for i in order],
    )
    return h, [ids[i] for i in order]


def load_input(
    target: str | None,
    synthetic: str | None,
    family: str,
    count: int,
    days: float | None,
    step: float,
    tick: float | None,
    top: int | None,
    seed: int,
    name: str | None,
):
    """(history, volume ids, results name) of the command's input: a synthetic fleet, a YAML
    config's fleet or a trace, keeping the `top` most active volumes."""
    if synthetic:
        kinds = [k.strip() for k in synthetic.split(",") if k.strip()]
        history, ids = load_synthetic(kinds, count, days or 42.0, step, tick, seed)
        label = name or "synthetic-" + "-".join(kinds)
    elif target is None:
        raise UserError("give a trace path or a YAML config, or --synthetic database,vm,fileserver")
    elif target.lower().endswith((".yaml", ".yml")):
        history, ids = load_config_fleet(target, days, step, tick, seed)
        label = name or Path(target).stem
    else:
        history, ids = load_trace(target, family, step, tick, top, seed)
        label = name or Path(target.rstrip("/")).name.split(".")[0]
    history, ids = select_top(history, ids, top)
    if not ids:
        raise UserError("no volumes to forecast")
    return history, ids, label


def write_results(res, history, folder: Path, meta: dict, plot_volumes: int) -> dict:
    """metrics.parquet, summary.parquet, forecast.png and summary.json in `folder`; returns
    the summary's JSON data (`meta` with the best forecasters and the table added)."""
    from experiments.plots import backtest_png
    from forecasters.backtest import best_forecaster

    folder.mkdir(parents=True, exist_ok=True)
    for fname, df in (("metrics.parquet", res.metrics), ("summary.parquet", res.summary)):
        with atomic_path(folder / fname) as tmp:
            df.to_parquet(tmp, index=False)
    best = best_forecaster(res.summary)
    if plot_volumes > 0:
        shown = [b for b in dict.fromkeys([best, "lstm", "seasonal_naive"]) if b]
        backtest_png(
            res,
            history,
            folder / "forecast.png",
            forecasters=shown,
            n_volumes=plot_volumes,
            title=f"{meta['name']}: forecast vs actual production load (MB/s), {len(res.origins)} origins backtested",
        )
    meta = {
        **meta,
        "first_origin_epoch": float(history.start_epoch + res.origins[0] * meta["step_s"]),
        "best_mean_1h": best,
        "best_mean_6h": best_forecaster(res.summary, "rel_mbps_mean_6h"),
        "folder": str(folder),
    }
    data = {**meta, "summary": res.summary.to_dict(orient="records")}
    atomic_write_text(folder / "summary.json", dumps(data))
    return data

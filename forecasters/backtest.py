"""Rolling-origin backtests of forecasters on one `LoadHistory` (trace or synthetic fleet).

No leakage: at each origin `o` a forecaster is fitted (when a refit is due) and asked to
predict on a *copy* of the first `o` steps only; the actual future is read afterwards.
Origins are spread evenly over the part of the series after `train_days` (so they fall at
different times of day) and leave room for the longest horizon. Models are fitted at
the first origin and refitted every `retrain_hours` of simulated time, as `ForecastService`
would: the LSTM then warm-starts (a few epochs of fine-tuning from its weights on the data
up to that origin, not a fit from scratch), and `timing` counts its warm fits and epochs.

Metrics (see `forecasters.metrics`), per forecaster, volume and target: MAE and sMAPE at
horizon steps (e.g. 5 min, 1 h, 6 h, 24 h) and for the mean load over the next 1 h and 6 h;
relative MAE = MAE / (daily seasonal naive's MAE on the same origins and horizon);
coverage of the upper quantile (share of actual load at or below it, per volume over both
targets, with its spread over volumes and the share of volumes within 5 points of the
forecasts' nominal quantile); step-level burst / high-load precision and recall of the
forecast labels against labels of the actual future (same rule, same origin baseline).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import yaml

from forecasters import metrics as M
from forecasters.base import FORECASTERS
from forecasters.calibration import calibrate, pop_calibration
from forecasters.classify import BurstRule, label_future, precision_recall
from forecasters.series import steps, targets
from sim.types import LoadHistory

BASELINE = "seasonal_naive"


@dataclass
class BacktestConfig:
    horizon_s: float = 86_400.0
    n_origins: int = 48
    train_days: float = 28.0
    retrain_hours: float | None = 168.0
    step_horizons_s: tuple[float, ...] = (300.0, 3600.0, 21_600.0, 86_400.0)
    window_horizons_s: tuple[float, ...] = (3600.0, 21_600.0)
    rule: BurstRule = field(default_factory=BurstRule)


@dataclass
class BacktestResult:
    config: BacktestConfig
    origins: np.ndarray  # history length at each origin
    step_s: float
    volume_ids: list[str]
    kinds: list[str]
    truth: np.ndarray  # [n_o, V, H, 2]
    truth_labels: np.ndarray  # [n_o, V, H]
    mean: dict[str, np.ndarray]
    upper: dict[str, np.ndarray]
    labels: dict[str, np.ndarray]
    timing: dict[str, dict[str, float]]
    metrics: pd.DataFrame = field(default_factory=pd.DataFrame)  # long, per volume
    summary: pd.DataFrame = field(default_factory=pd.DataFrame)  # per forecaster (and kind)
    quantile: dict[str, float] = field(default_factory=dict)  # nominal level of each forecaster's upper


def parse_spec(spec: str) -> tuple[str, str, dict]:
    """ "name" or "name:key=value:key=value" -> (label, registry name, params).

    The key `retrain_h` is the backtest's own (this forecaster's refit period in hours,
    0 = fit once); `coverage` and the `calib_*` keys wrap the forecaster in `Calibrated`
    (as a service's `retrain: {coverage: ...}` does); `build` takes them out of the
    constructor parameters.
    """
    spec = spec.strip()
    if not spec:
        raise ValueError("empty forecaster name")
    name, *kvs = spec.split(":")
    params = {}
    for kv in kvs:
        if "=" not in kv:
            raise ValueError(f"forecaster {spec!r}: parameters are key=value, got {kv!r}")
        k, v = kv.split("=", 1)
        params[k.strip()] = yaml.safe_load(v)
    return spec, name.strip(), params


def horizon_label(seconds: float) -> str:
    if seconds % 3600 == 0:
        return f"{int(seconds // 3600)}h"
    if seconds % 60 == 0:
        return f"{int(seconds // 60)}m"
    return f"{seconds:g}s"


def choose_origins(n_steps: int, train_steps: int, horizon: int, n: int) -> np.ndarray:
    lo, hi = train_steps, n_steps - horizon
    if hi < lo:
        raise ValueError(f"series too short: {n_steps} steps, need train {train_steps} + horizon {horizon}")
    return np.unique(np.linspace(lo, hi, max(1, n)).round().astype(np.int64))


def head(history: LoadHistory, n: int) -> LoadHistory:
    """A copy of the first `n` steps (copies, so nothing past the origin is reachable)."""
    return LoadHistory(
        history.step_s,
        history.start_epoch,
        history.times[:n].copy(),
        history.iops[:n].copy(),
        history.mbps[:n].copy(),
        history.cpu_pct[:n].copy(),
        history.mem_pct[:n].copy(),
        history.net_mbps[:n].copy(),
        list(history.kinds),
    )


def build(spec: str, history: LoadHistory, rule: BurstRule):
    """(label, forecaster) of a spec; a forecaster that needs the future gets the whole history."""
    label, name, params = parse_spec(spec)
    params.pop("retrain_h", None)
    calib = pop_calibration(params)
    factory = FORECASTERS.get(name)
    if getattr(factory, "needs_future", False):
        if calib is not None:
            raise ValueError(f"{name}: a forecaster given the true future is not calibrated")
        return label, factory(future=history, rule=rule, **params)
    f = factory(**params)
    if hasattr(f, "rule") and f.rule is None:
        f.rule = rule
    return label, (f if calib is None else calibrate(f, {**calib, "rule": rule}, ""))


def _trained(f):
    """The model that trains in epochs (it has `on_epoch`), also inside a calibration wrapper; else None."""
    for m in (f, getattr(f, "model", None)):
        if m is not None and hasattr(m, "on_epoch"):
            return m
    return None


def run_backtest(
    history: LoadHistory,
    specs: list[str],
    cfg: BacktestConfig | None = None,
    volume_ids: list[str] | None = None,
    progress: Callable[[str, int, int, str], None] | None = None,
) -> BacktestResult:
    """Backtest every spec (the daily seasonal naive baseline added) over the same origins.

    `progress(label, origins done, origins, note)` is called as each forecaster starts, while
    a model trains (the note says which epoch) and after each origin.
    """
    cfg = cfg or BacktestConfig()
    step_s = history.step_s
    H = steps(cfg.horizon_s, step_s)
    origins = choose_origins(history.n_steps, steps(cfg.train_days * 86_400.0, step_s), H, cfg.n_origins)
    y = targets(history)
    V = y.shape[1]
    truth = np.stack([y[o : o + H].transpose(1, 0, 2) for o in origins]).astype(np.float32)
    truth_labels = np.stack([label_future(y[:o], truth[i].astype(np.float64), step_s, cfg.rule) for i, o in enumerate(origins)])
    specs = list(dict.fromkeys(specs))
    if BASELINE not in specs:
        specs = [BASELINE, *specs]
    built = [build(s, history, cfg.rule) for s in specs]  # fail fast on bad names / params
    res = BacktestResult(
        cfg, origins, step_s, volume_ids or [f"v{i}" for i in range(V)], list(history.kinds), truth, truth_labels, {}, {}, {}, {}
    )
    for label, f in built:
        retrain_h = parse_spec(label)[2].get("retrain_h", cfg.retrain_hours)
        retrain_steps = steps(float(retrain_h) * 3600.0, step_s) if retrain_h else None
        mean = np.empty((len(origins), V, H, 2), np.float32)
        upper = np.empty_like(mean)
        labels = np.empty((len(origins), V, H), np.int8)
        fit_s, pred_s, n_fits, warm_fits, epochs, last_fit, quantile = 0.0, [], 0, 0, 0, None, float("nan")
        trained = _trained(f)
        if progress:
            progress(label, 0, len(origins), "")
        for i, o in enumerate(origins):
            h = head(history, int(o))
            if last_fit is None or (retrain_steps is not None and o - last_fit >= retrain_steps):
                if progress and trained is not None:
                    trained.on_epoch = lambda e, n, i=i, label=label: progress(label, i, len(origins), f"fit epoch {e}/{n}")
                t0 = time.perf_counter()
                f.fit(h)
                fit_s += time.perf_counter() - t0
                n_fits += 1
                last_fit = o
                info = getattr(trained, "last_fit", None) or {}
                warm_fits += int(bool(info.get("warm", 0)))
                epochs += int(info.get("epochs", 0))
            t0 = time.perf_counter()
            fc = f.predict(h, H)
            pred_s.append(time.perf_counter() - t0)
            mean[i], upper[i], labels[i], quantile = fc.mean, fc.upper, fc.labels, fc.quantile
            if progress:
                progress(label, i + 1, len(origins), "")
        if trained is not None:
            trained.on_epoch = None
        res.mean[label], res.upper[label], res.labels[label] = mean, upper, labels
        res.timing[label] = {"fit_s": fit_s, "fits": n_fits, "predict_ms": 1e3 * float(np.mean(pred_s))}
        if trained is not None:  # a trained model: how many fits warm-started, epochs over all fits
            res.timing[label].update({"warm_fits": warm_fits, "epochs": epochs})
        res.quantile[label] = quantile
    res.metrics = volume_metrics(res)
    res.summary = summarize(res)
    return res


def _horizons(res: BacktestResult) -> list[tuple[str, str, int]]:
    """(label, 'step'|'mean', steps) for the configured horizons within the forecast."""
    H = res.truth.shape[2]
    out = [(horizon_label(s), "step", steps(s, res.step_s)) for s in res.config.step_horizons_s]
    out += [(f"mean_{horizon_label(s)}", "mean", steps(s, res.step_s)) for s in res.config.window_horizons_s]
    return [o for o in out if o[2] <= H]


def volume_metrics(res: BacktestResult) -> pd.DataFrame:
    rows = []
    V = res.truth.shape[1]
    base = res.mean[BASELINE]
    for label, pred in res.mean.items():
        for hname, how, n in _horizons(res):
            sel = M.at_step if how == "step" else M.window_mean
            p, t, b = sel(pred, n), sel(res.truth, n), sel(base, n)
            mae, smape, bmae = M.mae(p, t), M.smape(p, t), M.mae(b, t)
            rel = M.relative(mae, bmae)
            for v in range(V):
                for j, tgt in enumerate(("iops", "mbps")):
                    rows.append(
                        (label, res.volume_ids[v], res.kinds[v], tgt, hname, how, n, float(mae[v, j]), float(smape[v, j]), float(rel[v, j]))
                    )
        cov = M.coverage(res.upper[label], res.truth)
        for v in range(V):
            for j, tgt in enumerate(("iops", "mbps")):
                rows.append(
                    (
                        label,
                        res.volume_ids[v],
                        res.kinds[v],
                        tgt,
                        "upper_coverage",
                        "all",
                        res.truth.shape[2],
                        float(cov[v, j]),
                        np.nan,
                        np.nan,
                    )
                )
    return pd.DataFrame(rows, columns=["forecaster", "volume", "kind", "target", "horizon", "how", "steps", "mae", "smape", "rel_mae"])


def summarize(res: BacktestResult, by_kind: bool = True) -> pd.DataFrame:
    """One row per forecaster (and per kind): medians over volumes of relative MAE, etc."""
    m = res.metrics
    groups = [("all", np.ones(len(res.kinds), bool))]
    if by_kind and len(set(res.kinds)) > 1:
        groups += [(k, np.array([x == k for x in res.kinds])) for k in sorted(set(res.kinds))]
    rows = []
    for kind, mask in groups:
        vols = {res.volume_ids[i] for i in np.flatnonzero(mask)}
        mk = m[m.volume.isin(vols)]
        for label in res.mean:
            ml = mk[mk.forecaster == label]
            row: dict[str, object] = {"forecaster": label, "kind": kind, "volumes": int(mask.sum())}
            for hname, _, _ in _horizons(res):
                for tgt in ("mbps", "iops"):
                    sel = ml[(ml.horizon == hname) & (ml.target == tgt)]
                    row[f"rel_{tgt}_{hname}"] = float(np.nanmedian(sel.rel_mae)) if sel.rel_mae.notna().any() else float("nan")
                    row[f"smape_{tgt}_{hname}"] = float(sel.smape.mean())
                    row[f"mae_{tgt}_{hname}"] = float(sel.mae.mean())
            cov = ml[ml.horizon == "upper_coverage"]
            row["upper_coverage"] = float(cov.mae.mean())
            row.update(M.coverage_spread(cov.groupby("volume").mae.mean().to_numpy(), res.quantile.get(label, float("nan"))))
            pl, tl = res.labels[label][:, mask], res.truth_labels[:, mask]
            for which in ("burst", "high"):
                p, r, n_p, n_a = precision_recall(pl, tl, which)
                row[f"{which}_precision"], row[f"{which}_recall"] = p, r
            row.update(res.timing[label])
            rows.append(row)
    return pd.DataFrame(rows)


def _needs_future(label: str) -> bool:
    """Whether a backtested forecaster read the true future (it competes with no one)."""
    name = parse_spec(label)[1]
    return name in FORECASTERS and bool(getattr(FORECASTERS.get(name), "needs_future", False))


def best_forecaster(summary: pd.DataFrame, column: str = "rel_mbps_mean_1h") -> str | None:
    if column not in summary.columns:
        return None
    fair = np.array([not _needs_future(str(f)) for f in summary.forecaster], bool)
    s = summary[(summary.kind == "all") & fair & summary[column].notna()]
    return None if s.empty else str(s.sort_values(column).iloc[0].forecaster)


def plot(
    res: BacktestResult,
    history: LoadHistory,
    path,
    forecasters: list[str] | None = None,
    n_volumes: int = 4,
    context_days: float = 1.0,
    quantile: float = 0.9,
) -> None:
    """Forecast vs actual MB/s with the upper-quantile band for the busiest volumes, each at
    the origin whose next horizon was busiest for it (where forecasting matters)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    forecasters = [f for f in (forecasters or list(res.mean)) if f in res.mean][:4]
    H = res.truth.shape[2]
    busiest = np.argsort(-res.truth[:, :, :, 1].mean(axis=(0, 2)))[:n_volumes]
    fig, axes = plt.subplots(len(busiest), 1, figsize=(11, 2.6 * len(busiest)), squeeze=False)
    hours = lambda a, b: np.arange(a, b) * res.step_s / 3600.0  # noqa: E731
    for ax, v in zip(axes[:, 0], busiest, strict=False):
        i = int(np.argmax(res.truth[:, v, :, 1].mean(axis=1)))
        o = int(res.origins[i])
        ctx = min(o, steps(context_days * 86_400.0, res.step_s))
        ax.plot(hours(-ctx + 1, 1), history.mbps[o - ctx : o, v], color="grey", lw=0.8, label="observed")
        ax.plot(hours(1, H + 1), res.truth[i, v, :, 1], color="black", lw=1.0, label="actual")
        for k, f in enumerate(forecasters):
            c = f"C{k}"
            ax.fill_between(hours(1, H + 1), res.mean[f][i, v, :, 1], res.upper[f][i, v, :, 1], color=c, alpha=0.12, lw=0)
            ax.plot(hours(1, H + 1), res.mean[f][i, v, :, 1], color=c, lw=1.3, label=f)
        ax.axvline(0, color="grey", ls=":", lw=0.8)
        when = pd.Timestamp(history.start_epoch + o * res.step_s, unit="s").strftime("%Y-%m-%d %H:%M UTC")
        ax.set_title(
            f"volume {res.volume_ids[v]} ({res.kinds[v]}), origin {when}: MB/s, shaded from forecast to P{round(100 * quantile)}",
            fontsize=9,
        )
        ax.set_xlabel("hours from forecast origin")
        ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=8, ncol=len(forecasters) + 2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)

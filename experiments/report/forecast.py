"""Forecast against actual load: reading a run's forecast series, and its figure."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from experiments.report.load import ResultsSet, Run, pick_run_volumes, read_series
from experiments.report.style import plt, save_figure, slug

FORECAST_FILES = ("forecast.parquet", "forecasts.parquet", "forecast_series.parquet")

#: accepted wide-form column names per role, `{q}` being the quantity (mbps, iops)
_NAMES = {
    "mean": ["{q}_mean", "{q}_forecast", "mean_{q}", "forecast_{q}", "{q}_point"],
    "upper": ["{q}_upper", "upper_{q}", "{q}_hi", "{q}_q90"],
    "lower": ["{q}_lower", "lower_{q}", "{q}_lo", "{q}_q10"],
    "actual": ["{q}_actual", "actual_{q}"],
}


def _long_parts(df: pd.DataFrame) -> list[pd.DataFrame]:
    """The forecast file in long form (t, volume, quantity, mean, lower, upper, actual)."""
    parts = []
    if "quantity" in df and "mean" in df:
        long = df.copy()
        for c in ("lower", "upper", "actual"):
            if c not in long:
                long[c] = np.nan
        parts.append(long[["t", "volume", "quantity", "mean", "lower", "upper", "actual"]])
        return parts
    for q in ("mbps", "iops"):
        cols = {}
        for role, pats in _NAMES.items():
            cols[role] = next((p.format(q=q) for p in pats if p.format(q=q) in df), None)
        if cols["mean"] is None:
            continue
        part = pd.DataFrame({"t": df["t"].astype(float), "volume": df["volume"], "quantity": q})
        for role in ("mean", "lower", "upper", "actual"):
            part[role] = df[cols[role]].astype(float).to_numpy() if cols[role] else np.nan
        parts.append(part)
    return parts


def _with_actual(out: pd.DataFrame, run: Run) -> pd.DataFrame:
    """Fill the actual load from series.parquet's `prod_{q}` (nearest sample) when absent."""
    if not out["actual"].isna().all():
        return out
    s = read_series(run, ["t", "volume", "prod_mbps", "prod_iops"])
    if s is None:
        return out
    s = s.sort_values("t")
    filled = []
    for q, g in out.groupby("quantity"):
        g = g.sort_values("t").drop(columns="actual")
        m = pd.merge_asof(
            g, s[["t", "volume", f"prod_{q}"]].rename(columns={f"prod_{q}": "actual"}), on="t", by="volume", direction="nearest"
        )
        filled.append(m)
    return pd.concat(filled, ignore_index=True)


def load_forecast(run: Run) -> pd.DataFrame | None:
    """A run's forecast series in a common shape, or None when the run saved none.

    Accepted: a parquet file named in FORECAST_FILES with columns `t` (seconds, the time
    forecast for), `volume`, and per quantity q in (mbps, iops) a point forecast
    (`{q}_mean`, `{q}_forecast`, `mean_{q}` or `forecast_{q}`), optionally an upper band
    (`{q}_upper`, `upper_{q}`, `{q}_hi`), a lower band (`{q}_lower`, `lower_{q}`, `{q}_lo`)
    and the actual (`{q}_actual`, `actual_{q}`; else taken from series.parquet's
    `prod_{q}`), or long form with a `quantity` column and `mean`/`upper`/`lower`/`actual`.
    Returns columns: t, volume, quantity, mean, lower, upper, actual (NaN where absent).
    """
    f = next((run.path / n for n in FORECAST_FILES if (run.path / n).is_file()), None)
    if f is None:
        return None
    try:
        df = pd.read_parquet(f)
    except (OSError, ValueError):
        return None
    if "t" not in df or "volume" not in df:
        return None
    parts = _long_parts(df)
    if not parts:
        return None
    return _with_actual(pd.concat(parts, ignore_index=True), run)


def _forecast_panel(ax, fq: pd.DataFrame, vol: str, q: str, max_days: float | None) -> None:
    """One volume: the forecast, its band up to the upper quantile, and the actual load."""
    g = fq[fq["volume"] == vol].sort_values("t")
    if max_days is not None:
        g = g[g["t"] <= g["t"].min() + max_days * 86400.0]
    h = g["t"].to_numpy(float) / 3600.0
    if g["upper"].notna().any():
        lower = g["lower"].fillna(g["mean"]) if g["lower"].notna().any() else g["mean"]
        ax.fill_between(h, lower, g["upper"], color="tab:purple", alpha=0.25, step="mid", label="forecast band (up to the upper quantile)")
    ax.plot(h, g["mean"], color="tab:purple", lw=1.0, label="forecast")
    if g["actual"].notna().any():
        ax.plot(h, g["actual"], color="black", lw=0.8, alpha=0.8, label="actual")
    unit = "MB/s" if q == "mbps" else "IOPS"
    ax.set_ylabel(unit)
    ax.set_title(vol, fontsize=9, loc="left")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    ax.grid(alpha=0.3)


def forecast_plots(rs: ResultsSet, out_dir: Path, k: int = 3, max_days: float | None = 3.0) -> list[tuple[str, Path]]:
    """Per policy whose run saved forecasts: forecast vs actual for a few volumes."""
    out = []
    seed = rs.seeds[0]
    for pol in rs.policies:
        run = rs.run(pol, seed) or next((r for r in rs.runs if r.policy == pol), None)
        if run is None:
            continue
        fc = load_forecast(run)
        if fc is None or fc.empty:
            continue
        q = "mbps" if (fc["quantity"] == "mbps").any() else str(fc["quantity"].iloc[0])
        fq = fc[fc["quantity"] == q]
        vols = [v for v in pick_run_volumes(run, k) if v in set(fq["volume"])] or list(dict.fromkeys(fq["volume"]))[:k]
        fig, axes = plt.subplots(len(vols), 1, figsize=(15, 2.6 * len(vols) + 0.8), sharex=True, squeeze=False)
        for ax, vol in zip(axes[:, 0], vols):
            _forecast_panel(ax, fq, vol, q, max_days)
        axes[-1, 0].set_xlabel("simulated time (hours)")
        fig.suptitle(f"{rs.root.name} / {pol}: forecast vs actual production load ({'MB/s' if q == 'mbps' else 'IOPS'})", fontsize=11)
        fig.tight_layout()
        out.append((pol, save_figure(fig, out_dir / f"forecast_{slug(pol)}.png")))
    return out

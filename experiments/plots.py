"""Plots written by runs and backtests (matplotlib, Agg backend: files only, no screen).

Shared rules: volumes are picked by production load (the same volumes under every policy
of a seed) and drawn in id order; every axis names its unit; legends sit outside the
data; spans of load that are not measured data (a trace looped or held) are shaded.
"""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from experiments.load_spans import load_spans, shade  # noqa: E402
from experiments.metrics import metric  # noqa: E402


def volume_order(ids) -> list[str]:
    """Volume ids in natural order ('vm-2' before 'vm-10', '9' before '10')."""
    return sorted(map(str, ids), key=lambda s: [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", s)])


def pick_volumes(volumes: pd.DataFrame, k: int = 4) -> list[str]:
    """A few volumes worth looking at, in id order: the busiest (production I/O) of each
    workload kind, then the next busiest. Production load does not depend on the policy,
    so every policy of a seed shows the same volumes."""
    by = "prod_io" if "prod_io" in volumes else "impact_io_mean"
    ordered = volumes.sort_values([by, "volume"], ascending=[False, True], kind="stable")
    firsts = ordered.drop_duplicates("kind")
    picked = list(firsts.sort_values("kind")["volume"].astype(str))[:k]
    for v in ordered["volume"].astype(str):
        if len(picked) >= k:
            break
        if v not in picked:
            picked.append(v)
    return volume_order(picked)


def time_axis(span_s: float) -> tuple[float, str]:
    """(seconds per unit, axis label): hours up to three days, days beyond."""
    return (3600.0, "simulated time (hours)") if span_s <= 3 * 86400.0 else (86400.0, "simulated time (days)")


def legend_outside(ax, handles: list, labels: list[str]) -> None:
    """One legend right of the axes (never over the data or the RPO line), duplicates dropped."""
    seen: dict = {}
    for h, lab in zip(handles, labels):
        seen.setdefault(lab, h)
    ax.legend(list(seen.values()), list(seen), loc="upper left", bbox_to_anchor=(1.08, 1.0), fontsize=7, borderaxespad=0)


def timeline_png(
    series: pd.DataFrame, jobs: pd.DataFrame, volumes: pd.DataFrame, out: Path, title: str = "", k: int = 4, meta: dict | None = None
) -> Path:
    """Production load with backup activity, and restore-point age vs RPO, for a few
    volumes; `meta` (the run's summary meta) locates trace spans that are not data."""
    chosen = pick_volumes(volumes, k)
    rpo = dict(zip(volumes["volume"].astype(str), volumes["rpo_s"])) if "rpo_s" in volumes else {}
    t_end = float(series["t"].max()) if len(series) else 0.0
    unit_s, xlabel = time_axis(t_end)
    spans = load_spans((meta or {}).get("load"), t_end)
    imp = metric("impact_io_mean")
    fig, axes = plt.subplots(len(chosen), 1, figsize=(14, 2.6 * len(chosen) + 0.8), sharex=True, squeeze=False)
    for ax, vol in zip(axes[:, 0], chosen):
        s = series[series["volume"].astype(str) == vol]
        x = s["t"].to_numpy(float) / unit_s
        shade(ax, spans, vol, unit_s)
        ax.plot(x, s["prod_mbps"], color="tab:blue", lw=0.7, label="production load (MB/s)")
        ax.fill_between(x, 0, s["backup_mbps"], color="tab:orange", alpha=0.6, step="mid", label="backup read (MB/s)")
        ax.set_ylabel("MB/s")
        ax.set_ylim(bottom=0)
        ax2 = ax.twinx()
        ax2.plot(x, s["rp_age_s"] / 3600.0, color="tab:green", lw=1.0, label="restore-point age (h)")
        if vol in rpo and np.isfinite(rpo[vol]):
            ax2.axhline(rpo[vol] / 3600.0, color="tab:red", ls="--", lw=0.9, label="RPO (h)")
            ax2.set_ylim(0, max(float(s["rp_age_s"].max() / 3600.0) if len(s) else 0.0, rpo[vol] / 3600.0) * 1.12)
        ax2.set_ylabel("restore-point age (h)")
        row = volumes[volumes["volume"].astype(str) == vol].iloc[0]
        ax.set_title(f"{vol} ({row['kind']}): {imp.label} {imp.show(row['impact_io_mean'])} {imp.unit}", fontsize=9, loc="left")
        h1, l1 = ax.get_legend_handles_labels()
        h2, l2 = ax2.get_legend_handles_labels()
        legend_outside(ax, h1 + h2, l1 + l2)
    axes[-1, 0].set_xlabel(xlabel)
    fig.suptitle(title or "timeline", fontsize=11)
    fig.tight_layout()
    out = Path(out)
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out


def backtest_png(
    res,
    history,
    path: Path,
    forecasters: list[str] | None = None,
    n_volumes: int = 4,
    context_days: float = 1.0,
    quantile: float = 0.9,
    title: str = "",
) -> Path:
    """Forecast vs actual MB/s with the band up to the upper quantile, for the busiest
    volumes, each at the origin whose next horizon was busiest for it (where forecasting
    matters); `res` is a `forecasters.backtest.BacktestResult`."""
    forecasters = [f for f in (forecasters or list(res.mean)) if f in res.mean][:4]
    H = res.truth.shape[2]
    busiest = volume_order([res.volume_ids[v] for v in np.argsort(-res.truth[:, :, :, 1].mean(axis=(0, 2)))[:n_volumes]])
    index = {vid: i for i, vid in enumerate(res.volume_ids)}
    fig, axes = plt.subplots(len(busiest), 1, figsize=(12, 2.7 * len(busiest) + 0.9), squeeze=False)
    ctx_steps = round(context_days * 86_400.0 / res.step_s)
    hours = lambda a, b: np.arange(a, b) * res.step_s / 3600.0  # noqa: E731
    for ax, vid in zip(axes[:, 0], busiest):
        v = index[vid]
        i = int(np.argmax(res.truth[:, v, :, 1].mean(axis=1)))
        o = int(res.origins[i])
        ctx = min(o, ctx_steps)
        ax.plot(hours(-ctx + 1, 1), history.mbps[o - ctx : o, v], color="grey", lw=0.8, label="observed before the origin")
        ax.plot(hours(1, H + 1), res.truth[i, v, :, 1], color="black", lw=1.0, label="actual")
        for k, f in enumerate(forecasters):
            c = f"C{k}"
            ax.fill_between(
                hours(1, H + 1),
                res.mean[f][i, v, :, 1],
                res.upper[f][i, v, :, 1],
                color=c,
                alpha=0.12,
                lw=0,
                label=f"{f}: up to P{round(100 * quantile)}",
            )
            ax.plot(hours(1, H + 1), res.mean[f][i, v, :, 1], color=c, lw=1.3, label=f"{f} (mean)")
        ax.axvline(0, color="grey", ls=":", lw=0.8)
        when = pd.Timestamp(history.start_epoch + o * res.step_s, unit="s").strftime("%Y-%m-%d %H:%M UTC")
        ax.set_title(f"volume {vid} ({res.kinds[v]}), forecast origin {when}", fontsize=9, loc="left")
        ax.set_ylabel("MB/s")
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        h, lab = ax.get_legend_handles_labels()
        legend_outside(ax, h, lab)
    axes[-1, 0].set_xlabel("hours from the forecast origin")
    fig.suptitle(title or f"forecast vs actual production load (MB/s), band up to the P{round(100 * quantile)} forecast", fontsize=11)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path

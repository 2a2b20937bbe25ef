"""Plots written by runs (matplotlib, Agg backend: files only, no screen)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402


def pick_volumes(volumes: pd.DataFrame, k: int = 4) -> list[str]:
    """A few volumes worth looking at: one per workload kind, the most impacted first."""
    ordered = volumes.sort_values("impact_io_mean", ascending=False)
    picked = list(ordered.drop_duplicates("kind")["volume"][:k])
    for v in ordered["volume"]:
        if len(picked) >= k:
            break
        if v not in picked:
            picked.append(v)
    return picked


def timeline_png(series: pd.DataFrame, jobs: pd.DataFrame, volumes: pd.DataFrame, out: Path, title: str = "", k: int = 4) -> Path:
    """Production load with backup activity, impact, and restore-point age vs RPO."""
    chosen = pick_volumes(volumes, k)
    rpo = dict(zip(volumes["volume"], volumes.get("rpo_s", pd.Series(dtype=float)))) if "rpo_s" in volumes else {}
    fig, axes = plt.subplots(len(chosen), 1, figsize=(13, 2.6 * len(chosen) + 0.6), sharex=True, squeeze=False)
    for ax, vol in zip(axes[:, 0], chosen):
        s = series[series["volume"] == vol]
        days = s["t"].to_numpy() / 86400.0
        ax.plot(days, s["prod_mbps"], color="tab:blue", lw=0.7, label="production MB/s")
        ax.fill_between(days, 0, s["backup_mbps"], color="tab:orange", alpha=0.6, step="mid", label="backup MB/s")
        ax.set_ylabel("MB/s")
        ax2 = ax.twinx()
        ax2.plot(days, s["rp_age_s"] / 3600.0, color="tab:green", lw=1.0, label="restore-point age (h)")
        if vol in rpo and np.isfinite(rpo[vol]):
            ax2.axhline(rpo[vol] / 3600.0, color="tab:red", ls="--", lw=0.8, label="RPO")
        ax2.set_ylabel("age (h)")
        ax2.set_ylim(bottom=0)
        kind = volumes.loc[volumes["volume"] == vol, "kind"].iloc[0]
        imp = volumes.loc[volumes["volume"] == vol, "impact_io_mean"].iloc[0]
        ax.set_title(f"{vol} ({kind}) — IO-weighted mean impact {imp:.3f}", fontsize=9, loc="left")
        h1, l1 = ax.get_legend_handles_labels()
        h2, l2 = ax2.get_legend_handles_labels()
        ax.legend(h1 + h2, l1 + l2, loc="upper right", fontsize=7, ncol=4)
    axes[-1, 0].set_xlabel("simulated time (days)")
    fig.suptitle(title or "timeline", fontsize=11)
    fig.tight_layout()
    out = Path(out)
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out

"""The production-impact distribution figure: per-sample impact while backups run, and
the share of production I/O served above each impact level."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd

from experiments.report.load import ResultsSet, read_series
from experiments.report.style import plt, policy_colours, save_figure


def impact_cdfs(rs: ResultsSet, out: Path, threshold: float | None = None) -> Path | None:
    """Left: CDF of per-sample impact while a backup reads the volume. Right: share of
    production I/O served above each impact level (log scale), all seeds pooled."""
    colours = policy_colours(rs.policies)
    data = {}
    for pol in rs.policies:
        parts = [read_series(r, ["prod_iops", "backup_mbps", "impact"]) for r in rs.runs if r.policy == pol]
        parts = [p for p in parts if p is not None]
        if parts:
            data[pol] = pd.concat(parts, ignore_index=True)
    if not data:
        return None
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(13, 4.6))
    grid = np.logspace(-4, 1.5, 300)
    drawn_cdf = drawn_share = False
    for pol, s in data.items():
        busy = s.loc[s["backup_mbps"] > 0, "impact"].to_numpy(float)
        if busy.size:
            x = np.sort(np.clip(busy, 1e-4, None)) * 100
            a1.step(x, np.arange(1, x.size + 1) / x.size, where="post", color=colours[pol], label=f"{pol} ({busy.size:,} samples)")
            drawn_cdf = True
        io = s["prod_iops"].to_numpy(float)
        imp = s["impact"].to_numpy(float)
        total = io.sum()
        if total > 0 and (imp > grid[0]).any():
            order = np.argsort(imp)
            imp_s, cum = imp[order], np.cumsum(io[order])
            idx = np.searchsorted(imp_s, grid, side="right")
            above = 1.0 - np.where(idx > 0, cum[np.maximum(idx - 1, 0)], 0.0) / total
            pct = np.where(above > 0, above * 100, np.nan)
            a2.plot(grid * 100, pct, color=colours[pol], label=pol)
            drawn_share = True
    pct_fmt = matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}")
    for ax, drawn in ((a1, drawn_cdf), (a2, drawn_share)):
        if not drawn:
            ax.text(0.5, 0.5, "no backup impact in these runs", ha="center", va="center", transform=ax.transAxes)
        ax.set_xscale("log")
        ax.set_xlim(1e-2, 10**3.5)
        ax.xaxis.set_major_formatter(pct_fmt)
        ax.set_xlabel("production latency increase caused by backup (%, log scale)")
        ax.grid(alpha=0.3, which="major")
        if threshold:
            ax.axvline(threshold * 100, color="tab:red", ls="--", lw=0.9, label=f"impact threshold ({threshold:.0%})")
        ax.legend(fontsize=8, loc="best")
    a1.set_ylabel("fraction of samples at or below")
    a1.set_title("impact CDF while a backup reads the volume (per-sample)", fontsize=10)
    if drawn_share:
        a2.set_yscale("log")
        a2.yaxis.set_major_formatter(pct_fmt)
    a2.set_ylabel("% of production I/O above (log scale)")
    a2.set_title("share of production I/O served above each impact level", fontsize=10)
    fig.suptitle(f"{rs.root.name}: production impact distribution ({len(rs.seeds)} seed(s) pooled)", fontsize=12)
    fig.tight_layout()
    return save_figure(fig, out)

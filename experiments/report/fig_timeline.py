"""The timeline figures: per policy, the same volumes and seed with production load,
backup reads, backup jobs (bars by kind) and restore-point age against the RPO; spans of
replayed load that are not trace data (looped past the end, held) are shaded."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from experiments.load_spans import Span, load_spans, shade
from experiments.metrics import metric
from experiments.plots import legend_outside
from experiments.report.load import ResultsSet, pick_run_volumes, read_series
from experiments.report.style import KIND_COLOURS, plt, save_figure, slug


def _volume_panel(ax, s: pd.DataFrame, jobs: pd.DataFrame, vinfo: pd.DataFrame, vol: str, end_s: float, spans: list[Span]) -> None:
    """One volume: load and backup rate, job bars on top, restore-point age on a twin axis,
    spans of the load that are not trace data shaded."""
    sv = s[(s["volume"].astype(str) == vol) & (s["t"] <= end_s)]
    h = sv["t"].to_numpy(float) / 3600.0
    shade(ax, spans, vol, 3600.0)
    ax.plot(h, sv["prod_mbps"], color="tab:blue", lw=0.7, label="production load (MB/s)")
    ax.fill_between(h, 0, sv["backup_mbps"], color="tab:orange", alpha=0.45, step="mid", label="backup read (MB/s)")
    ax.set_ylabel("MB/s")
    top = max(float(sv["prod_mbps"].max() if len(sv) else 1), float(sv["backup_mbps"].max() if len(sv) else 1), 1e-9)
    ax.set_ylim(0, top * 1.25)
    if not jobs.empty:
        jv = jobs[(jobs["volume"].astype(str) == vol) & (jobs["snapshot_t"] <= end_s)]
        min_w = (end_s / 3600.0) * 0.003
        for kind, g in jv.groupby("kind"):
            start = g["snapshot_t"].to_numpy(float) / 3600.0
            width = np.maximum((g["complete_t"].to_numpy(float) - g["snapshot_t"].to_numpy(float)) / 3600.0, min_w)
            ax.broken_barh(
                list(zip(start, width)), (top * 1.1, top * 0.12), color=KIND_COLOURS.get(kind, "grey"), label=f"{kind} backup job"
            )
    ax2 = ax.twinx()
    ax2.plot(h, sv["rp_age_s"] / 3600.0, color="tab:green", lw=1.1, label="restore-point age (h)")
    rpo = vinfo.loc[vinfo["volume"].astype(str) == vol, "rpo_s"]
    top_age = float(sv["rp_age_s"].max() / 3600.0) if len(sv) else 0.0
    if len(rpo):
        ax2.axhline(float(rpo.iloc[0]) / 3600.0, color="tab:red", ls="--", lw=0.9, label="RPO (h)")
        top_age = max(top_age, float(rpo.iloc[0]) / 3600.0)
    ax2.set_ylabel("restore-point age (h)")
    ax2.set_ylim(0, max(top_age, 1e-6) * 1.35)  # below the job bars at the top
    row = vinfo[vinfo["volume"].astype(str) == vol]
    imp = metric("impact_io_mean")
    what = f" — {imp.label} {imp.show(float(row['impact_io_mean'].iloc[0]))} {imp.unit}" if len(row) and "impact_io_mean" in row else ""
    ax.set_title(f"{vol} ({row['kind'].iloc[0] if len(row) else '?'}){what}", fontsize=9, loc="left")
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    legend_outside(ax, h1 + h2, l1 + l2)


def timelines(rs: ResultsSet, out_dir: Path, seed: int | None = None, k: int = 3, max_days: float | None = 3.0) -> list[tuple[str, Path]]:
    """Per policy: load, backup rate, jobs (bars by kind) and restore-point age vs the RPO."""
    seed = rs.seeds[0] if seed is None else seed
    ref = rs.run(rs.policies[0], seed)
    if ref is None:
        return []
    vols = pick_run_volumes(ref, k)
    out = []
    for pol in rs.policies:
        run = rs.run(pol, seed)
        if run is None:
            continue
        s = read_series(run, ["t", "volume", "prod_mbps", "backup_mbps", "rp_age_s"])
        if s is None or not vols:
            continue
        jobs = pd.read_parquet(run.path / "jobs.parquet") if (run.path / "jobs.parquet").is_file() else pd.DataFrame()
        vinfo = pd.read_parquet(run.path / "volumes.parquet")
        end_s = float(s["t"].max()) if max_days is None else min(float(s["t"].max()), max_days * 86400.0)
        fig, axes = plt.subplots(len(vols), 1, figsize=(15, 2.7 * len(vols) + 0.8), sharex=True, squeeze=False)
        spans = load_spans(run.summary.get("meta", {}).get("load"), end_s)
        for ax, vol in zip(axes[:, 0], vols):
            _volume_panel(ax, s, jobs, vinfo, vol, end_s, spans)
        axes[-1, 0].set_xlabel("simulated time (hours)")
        span = f"first {end_s / 86400:.1g} days" if max_days is not None and end_s < float(s["t"].max()) else "whole run"
        fig.suptitle(f"{rs.root.name} / {pol} (seed {seed}, {span}): backups over production load, restore-point age vs RPO", fontsize=11)
        fig.tight_layout()
        out.append((pol, save_figure(fig, out_dir / f"timeline_{slug(pol)}.png")))
    return out

"""Figures of the policy comparison: each metric's mean with its CI, and the paired
differences against the baseline."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from experiments.compare import Comparison
from experiments.metrics import METRICS, Metric, metric
from experiments.report.style import plt, policy_colours, save_figure


def bounded_ci(m: Metric, mean: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean, lo, hi) in the metric's display unit, the interval cut at the metric's bounds
    (a rate cannot have a CI below 0, a share none above 100 %); no interval: lo = hi = mean."""
    f = m.fmt
    clip = np.vectorize(f.clip, otypes=[float])
    lo = np.where(np.isfinite(lo), clip(np.nan_to_num(lo)), mean)
    hi = np.where(np.isfinite(hi), clip(np.nan_to_num(hi)), mean)
    return m.value(mean), m.value(np.minimum(lo, mean)), m.value(np.maximum(hi, mean))


def comparison_bars(comp: Comparison, out: Path | None = None, metrics: Sequence[str] | None = None, title: str | None = None):
    """One panel per metric: each policy's mean with its CI over seeds as error bars."""
    keys = [k for k in (metrics or [m.key for m in METRICS]) if k in comp.summary]
    ncol = min(4, len(keys))
    nrow = math.ceil(len(keys) / ncol)
    colours = policy_colours(comp.policies)
    fig, axes = plt.subplots(nrow, ncol, figsize=(3.6 * ncol, 3.1 * nrow + 0.9), squeeze=False)
    s = comp.summary.set_index("policy").loc[comp.policies]
    x = np.arange(len(comp.policies))
    for ax, k in zip(axes.flat, keys):
        m = metric(k)
        mean, lo, hi = bounded_ci(m, s[k].to_numpy(float), s[f"{k}_lo"].to_numpy(float), s[f"{k}_hi"].to_numpy(float))
        ax.bar(x, mean, yerr=[mean - lo, hi - mean], capsize=4, color=[colours[p] for p in comp.policies], edgecolor="black", linewidth=0.5)
        for xi, v, top, bottom in zip(x, mean, hi, lo):  # above the cap (below it for a negative bar)
            if np.isfinite(v):
                up = v >= 0
                ax.annotate(
                    m.spec.format(v),
                    (xi, top if up else bottom),
                    textcoords="offset points",
                    xytext=(0, 3 if up else -3),
                    ha="center",
                    va="bottom" if up else "top",
                    fontsize=7,
                )
        ax.set_xticks(x, comp.policies, rotation=20, ha="right", fontsize=8)
        arrow = "higher is better" if m.higher_is_better else "lower is better"
        ax.set_title(f"{m.label}\n({arrow})", fontsize=9)
        ax.set_ylabel(m.unit, fontsize=8)
        floor = np.nanmin(lo) if np.isfinite(mean).any() else np.nan
        if k.endswith("compliance_pct") and floor > 50:  # zoom: the differences live near 100 %
            ax.set_ylim(max(0.0, floor - max(1.0, 0.3 * (100.0 - floor))), 100.0 + 0.25 * max(1.0, 100.0 - floor))
        else:
            ax.margins(y=0.16)
            if m.low is not None:  # the interval is cut there: start the axis at the bound
                ax.set_ylim(bottom=m.value(m.low))
        ax.grid(axis="y", alpha=0.3)
    for ax in list(axes.flat)[len(keys) :]:
        ax.set_visible(False)
    handles = [plt.Rectangle((0, 0), 1, 1, color=colours[p]) for p in comp.policies]
    n_seeds = len(comp.seeds)
    ci = (
        f"error bars: {comp.level:.0%} CI over {n_seeds} seeds (t), cut at the metric's possible range"
        if n_seeds > 1
        else "one seed: no CI"
    )
    fig.legend(handles, comp.policies, loc="lower center", ncol=min(6, len(comp.policies)), fontsize=9, title=ci, title_fontsize=8)
    fig.suptitle(title or f"{comp.experiment}: policy comparison", fontsize=12)
    fig.tight_layout(rect=(0, 0.1, 1, 0.97))
    if out is not None:
        save_figure(fig, out)
    return fig


def paired_forest(comp: Comparison, out: Path, metrics: Sequence[str] | None = None) -> Path | None:
    """Paired differences vs the baseline, in % of the baseline mean, with CIs: one row per
    metric, one marker per policy. Metrics whose baseline mean is 0 have no relative scale
    and are left out (the table has them)."""
    p = comp.paired
    others = [x for x in comp.policies if x != comp.baseline]
    if p.empty or not others:
        return None
    p = p[np.isfinite(p["rel_pct"].astype(float))]
    keys = [k for k in (metrics or [m.key for m in METRICS]) if k in set(p["metric"])]
    if not keys:
        return None
    colours = policy_colours(comp.policies)
    fig, ax = plt.subplots(figsize=(10, 0.55 * len(keys) * max(1, len(others)) ** 0.5 + 1.8))
    offsets = np.linspace(-0.25, 0.25, len(others)) if len(others) > 1 else [0.0]
    for y, k in enumerate(keys):
        for off, pol in zip(offsets, others):
            r = p[(p["metric"] == k) & (p["policy"] == pol)]
            if r.empty:
                continue
            r = r.iloc[0]
            d = float(r["rel_pct"])
            scale = d / r["diff"] if r["diff"] else math.nan  # % per unit of the metric
            if math.isfinite(scale) and math.isfinite(r["lo"]):
                lo, hi = sorted((r["lo"] * scale, r["hi"] * scale))
                ax.errorbar(d, y + off, xerr=[[d - lo], [hi - d]], fmt="o", color=colours[pol], capsize=3)
            else:
                ax.plot(d, y + off, "o", color=colours[pol])
    ax.axvline(0, color="black", lw=0.8)
    ax.set_yticks(
        range(len(keys)), [f"{metric(k).label} ({'higher' if metric(k).higher_is_better else 'lower'} is better)" for k in keys], fontsize=8
    )
    ax.invert_yaxis()
    ax.set_xlabel(f"difference vs {comp.baseline} (% of {comp.baseline}'s mean), paired by seed, {comp.level:.0%} CI")
    handles = [plt.Line2D([], [], marker="o", ls="", color=colours[q]) for q in others]
    ax.legend(handles, others, fontsize=8, loc="best")
    ax.set_title(f"{comp.experiment}: paired differences against {comp.baseline}", fontsize=11)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return save_figure(fig, out)

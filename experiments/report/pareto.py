"""The tuning figure: trials in objective space with the Pareto front, the chosen trial
and the untuned policy (written by `piop tune` and by the report)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from experiments.metrics import metric
from experiments.report.style import plt, save_figure


def pareto_png(
    trials: pd.DataFrame,
    objectives: Sequence[tuple[str, str]],
    out: Path,
    chosen: int | None = None,
    untuned: dict | None = None,
    title: str = "",
) -> Path:
    """Trials in objective space: infeasible, feasible, the Pareto front, chosen, untuned."""
    done = trials[trials["state"] == "COMPLETE"] if "state" in trials else trials
    names = [o[0] for o in objectives]
    pairs = (
        [(0, 1)]
        if len(names) == 2
        else ([(i, j) for i in range(len(names)) for j in range(i + 1, len(names))][:3] if len(names) > 2 else [(0, 0)])
    )
    fig, axes = plt.subplots(1, len(pairs), figsize=(6.4 * len(pairs), 5.0), squeeze=False)
    feas = done["feasible"].astype(bool) if "feasible" in done else pd.Series(True, index=done.index)
    front = done["pareto"].astype(bool) if "pareto" in done else pd.Series(False, index=done.index)
    for ax, (i, j) in zip(axes[0], pairs):
        mx, my = metric(names[i]), metric(names[j])
        if i == j:  # one objective: value per trial
            xs = lambda d: d["number"]  # noqa: E731
            ax.set_xlabel("trial")
        else:
            xs = lambda d, n=names[i], s=mx.scale: d[n] * s  # noqa: E731
            ax.set_xlabel(f"{mx.label} ({mx.unit}) — {objectives[i][1]}")
        ys = lambda d, n=names[j], s=my.scale: d[n] * s  # noqa: E731
        bad = done[~feas]
        if len(bad):
            ax.scatter(xs(bad), ys(bad), marker="x", color="grey", alpha=0.6, label=f"violates a constraint ({len(bad)})")
        ok = done[feas & ~front]
        ax.scatter(xs(ok), ys(ok), color="tab:blue", alpha=0.5, s=18, label=f"feasible trial ({len(ok)})")
        fr = done[front].sort_values(names[i])
        if len(fr):
            ax.plot(xs(fr), ys(fr), "o-", color="tab:red", ms=6, lw=1, label=f"Pareto front ({len(fr)})")
        if chosen is not None and (done["number"] == chosen).any():
            c = done[done["number"] == chosen]
            ax.scatter(xs(c), ys(c), marker="*", s=260, color="gold", edgecolor="black", zorder=5, label=f"chosen (trial {chosen})")
        if untuned and i != j and names[i] in untuned and names[j] in untuned:
            ax.scatter(
                [untuned[names[i]] * mx.scale],
                [untuned[names[j]] * my.scale],
                marker="D",
                s=70,
                color="black",
                zorder=5,
                label="untuned policy",
            )
        ax.set_ylabel(f"{my.label} ({my.unit}) — {objectives[j][1]}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="best")
    fig.suptitle(title or "tuning: Pareto front", fontsize=11)
    fig.tight_layout()
    return save_figure(fig, out)

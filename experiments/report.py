"""`piop report RESULTS_DIR`: a self-contained Markdown (and optionally HTML) report.

Reads the finished run folders of one experiment (`results/<experiment>/<run>/`) and
writes `RESULTS_DIR/report/report.md` with its images beside it:

- the policy comparison (bars of each metric's mean with its CI over seeds, the table,
  paired differences against the baseline, the split per workload kind);
- impact distributions (CDF while backups run, and the share of production I/O above each
  impact level);
- restore-point-age timelines with the backup jobs drawn over the production load, the
  same volumes and seed under every policy;
- forecast against actual load with the forecaster's quantile band, for runs that saved
  forecast series (`forecast.parquet`, see `load_forecast`; skipped otherwise);
- the Pareto front and chosen trial of each tuning study under `RESULTS_DIR/tune/`;
- the decision log summarised (actions and reasons per policy, job statistics).

Every figure has a title, axis units and a legend.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import yaml  # noqa: E402

from experiments.compare import METRICS, Comparison, analyse, format_ci, metric, summary_table, workload_rows  # noqa: E402
from common.errors import UserError  # noqa: E402
from experiments.results import is_finished, read_summary  # noqa: E402

KIND_COLOURS = {"full": "tab:red", "incremental": "tab:orange", "differential": "tab:purple"}
DPI = 100


def policy_colours(policies: Sequence[str]) -> dict[str, str]:
    cmap = plt.get_cmap("tab10")
    return {p: cmap(i % 10) for i, p in enumerate(policies)}


# --------------------------------------------------------------------------- loading


@dataclass
class Run:
    path: Path
    policy: str
    seed: int
    summary: dict

    @property
    def name(self) -> str:
        return self.path.name


@dataclass
class ResultsSet:
    root: Path
    runs: list[Run]
    config: dict  # the first run's resolved config
    policies: list[str]  # in config order
    seeds: list[int]
    extra: dict = field(default_factory=dict)

    def run(self, policy: str, seed: int) -> Run | None:
        return next((r for r in self.runs if r.policy == policy and r.seed == seed), None)


def load_runs(results_dir: str | Path) -> ResultsSet:
    """Every finished run folder directly under `results_dir` (hidden / temp folders skipped)."""
    root = Path(results_dir)
    if not root.exists():
        raise UserError(f"{root}: no such folder")
    if not root.is_dir():
        raise UserError(f"{root}: is a file, expected a results folder (results/<experiment>)")
    runs = []
    for d in sorted(root.iterdir()):
        if d.name.startswith(".") or not d.is_dir() or not is_finished(d):
            continue
        try:
            s = read_summary(d)
        except (OSError, ValueError):
            continue
        meta = s.get("meta", {})
        m = re.match(r"^(.*)-s(-?\d+)$", d.name)
        policy = meta.get("policy") or (m.group(1) if m else d.name)
        seed = meta.get("seed", int(m.group(2)) if m else 0)
        runs.append(Run(d, str(policy), int(seed), s))
    if not runs:
        hint = " (pass results/<experiment>, not results/)" if any((c / "summary.json").exists() for c in root.glob("*/*")) else ""
        raise UserError(f"{root}: no finished runs here{hint}")
    source = "every finished run folder"
    listed = _compare_runs(root)
    if listed:  # the last `piop compare` of this folder: keep its runs, not strays of other settings
        kept = [r for r in runs if r.name in listed]
        if kept:
            source = f"the {len(kept)} runs of the last `piop compare` (compare.json)"
            runs = kept
    config: dict = {}
    try:
        config = yaml.safe_load((runs[0].path / "config.yaml").read_text()) or {}
    except (OSError, yaml.YAMLError):
        pass
    order = []
    for p in config.get("policies") or []:
        label = p.get("name") or (f"{p['policy']}-{p['forecaster']}" if p.get("forecaster") else p.get("policy"))
        order.append(label)
    present = list(dict.fromkeys(r.policy for r in runs))
    policies = [p for p in order if p in present] + [p for p in present if p not in order]
    seeds = sorted({r.seed for r in runs})
    return ResultsSet(root, runs, config, policies, seeds, {"source": source})


def _compare_runs(root: Path) -> set[str]:
    import json

    f = root / "compare.json"
    if not f.is_file():
        return set()
    try:
        return {str(r.get("run")) for r in json.loads(f.read_text()).get("runs", []) if r.get("run")}
    except (OSError, ValueError, AttributeError):
        return set()


def run_rows(rs: ResultsSet) -> tuple[pd.DataFrame, pd.DataFrame]:
    fleet, work = [], []
    for r in rs.runs:
        row = {"policy": r.policy, "seed": r.seed, "run": r.name, "wall_s": r.summary.get("meta", {}).get("wall_s")}
        row.update(r.summary.get("fleet", {}))
        fleet.append(row)
        work.extend(workload_rows(r.path, r.policy, r.seed))
    return pd.DataFrame(fleet), pd.DataFrame(work)


def comparison(rs: ResultsSet, baseline: str | None = None, level: float = 0.95) -> Comparison:
    runs, work = run_rows(rs)
    if baseline is None:
        stored = rs.root / "compare.json"
        if stored.is_file():
            try:
                import json

                b = json.loads(stored.read_text()).get("baseline")
                baseline = b if b in rs.policies else None
            except (OSError, ValueError):
                baseline = None
    return analyse(runs, work, rs.root.name, baseline, level, rs.policies)


# --------------------------------------------------------------------------- figures


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
        mean = s[k].to_numpy(float) * m.scale
        lo, hi = s[f"{k}_lo"].to_numpy(float) * m.scale, s[f"{k}_hi"].to_numpy(float) * m.scale
        err = np.vstack([np.where(np.isfinite(lo), mean - lo, 0), np.where(np.isfinite(hi), hi - mean, 0)])
        ax.bar(x, mean, yerr=err, capsize=4, color=[colours[p] for p in comp.policies], edgecolor="black", linewidth=0.5)
        for xi, v in zip(x, mean):
            if np.isfinite(v):
                ax.annotate(f"{v:.3g}", (xi, v), textcoords="offset points", xytext=(0, 3), ha="center", fontsize=7)
        ax.set_xticks(x, comp.policies, rotation=20, ha="right", fontsize=8)
        arrow = "higher is better" if m.higher_is_better else "lower is better"
        ax.set_title(f"{m.label}\n({arrow})", fontsize=9)
        ax.set_ylabel(m.unit, fontsize=8)
        floor = np.nanmin(np.where(np.isfinite(lo), lo, mean)) if np.isfinite(mean).any() else np.nan
        if k.endswith("compliance_pct") and floor > 50:  # zoom: the differences live near 100 %
            ax.set_ylim(max(0.0, floor - max(1.0, 0.3 * (100.0 - floor))), 100.0 + 0.08 * max(1.0, 100.0 - floor))
        ax.grid(axis="y", alpha=0.3)
    for ax in list(axes.flat)[len(keys):]:
        ax.set_visible(False)
    handles = [plt.Rectangle((0, 0), 1, 1, color=colours[p]) for p in comp.policies]
    n_seeds = len(comp.seeds)
    ci = f"error bars: {comp.level:.0%} CI over {n_seeds} seeds (t)" if n_seeds > 1 else "one seed: no CI"
    fig.legend(handles, comp.policies, loc="lower center", ncol=min(6, len(comp.policies)), fontsize=9, title=ci, title_fontsize=8)
    fig.suptitle(title or f"{comp.experiment}: policy comparison", fontsize=12)
    fig.tight_layout(rect=(0, 0.1, 1, 0.97))
    if out is not None:
        fig.savefig(out, dpi=DPI)
        plt.close(fig)
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
    ax.set_yticks(range(len(keys)), [f"{metric(k).label} ({'higher' if metric(k).higher_is_better else 'lower'} is better)" for k in keys], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel(f"difference vs {comp.baseline} (% of {comp.baseline}'s mean), paired by seed, {comp.level:.0%} CI")
    handles = [plt.Line2D([], [], marker="o", ls="", color=colours[q]) for q in others]
    ax.legend(handles, others, fontsize=8, loc="best")
    ax.set_title(f"{comp.experiment}: paired differences against {comp.baseline}", fontsize=11)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=DPI)
    plt.close(fig)
    return out


def _series(run: Run, columns: Sequence[str]) -> pd.DataFrame | None:
    f = run.path / "series.parquet"
    if not f.is_file():
        return None
    try:
        return pd.read_parquet(f, columns=list(columns))
    except (OSError, ValueError, KeyError):
        return None


def impact_cdfs(rs: ResultsSet, out: Path, threshold: float | None = None) -> Path | None:
    """Left: CDF of per-sample impact while a backup reads the volume. Right: share of
    production I/O served above each impact level (log scale), all seeds pooled."""
    colours = policy_colours(rs.policies)
    data = {}
    for pol in rs.policies:
        parts = [_series(r, ["prod_iops", "backup_mbps", "impact"]) for r in rs.runs if r.policy == pol]
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
        ax.set_xlim(1e-2, 10 ** 3.5)
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
    fig.savefig(out, dpi=DPI)
    plt.close(fig)
    return out


def _pick_volumes(rs: ResultsSet, run: Run, k: int) -> list[str]:
    from experiments.plots import pick_volumes

    f = run.path / "volumes.parquet"
    if not f.is_file():
        return []
    return pick_volumes(pd.read_parquet(f), k)


def timelines(rs: ResultsSet, out_dir: Path, seed: int | None = None, k: int = 3, max_days: float | None = 3.0) -> list[tuple[str, Path]]:
    """Per policy: load, backup rate, jobs (bars by kind) and restore-point age vs the RPO."""
    seed = rs.seeds[0] if seed is None else seed
    ref = rs.run(rs.policies[0], seed)
    if ref is None:
        return []
    vols = _pick_volumes(rs, ref, k)
    out = []
    for pol in rs.policies:
        run = rs.run(pol, seed)
        if run is None:
            continue
        s = _series(run, ["t", "volume", "prod_mbps", "backup_mbps", "rp_age_s"])
        if s is None or not vols:
            continue
        jobs = pd.read_parquet(run.path / "jobs.parquet") if (run.path / "jobs.parquet").is_file() else pd.DataFrame()
        vinfo = pd.read_parquet(run.path / "volumes.parquet")
        end_s = float(s["t"].max()) if max_days is None else min(float(s["t"].max()), max_days * 86400.0)
        fig, axes = plt.subplots(len(vols), 1, figsize=(15, 2.7 * len(vols) + 0.8), sharex=True, squeeze=False)
        for ax, vol in zip(axes[:, 0], vols):
            sv = s[(s["volume"] == vol) & (s["t"] <= end_s)]
            h = sv["t"].to_numpy(float) / 3600.0
            ax.plot(h, sv["prod_mbps"], color="tab:blue", lw=0.7, label="production load (MB/s)")
            ax.fill_between(h, 0, sv["backup_mbps"], color="tab:orange", alpha=0.45, step="mid", label="backup read (MB/s)")
            ax.set_ylabel("MB/s")
            top = max(float(sv["prod_mbps"].max() if len(sv) else 1), float(sv["backup_mbps"].max() if len(sv) else 1), 1e-9)
            ax.set_ylim(0, top * 1.25)
            if not jobs.empty:
                jv = jobs[(jobs["volume"] == vol) & (jobs["snapshot_t"] <= end_s)]
                min_w = (end_s / 3600.0) * 0.003
                for kind, g in jv.groupby("kind"):
                    start = g["snapshot_t"].to_numpy(float) / 3600.0
                    width = np.maximum((g["complete_t"].to_numpy(float) - g["snapshot_t"].to_numpy(float)) / 3600.0, min_w)
                    ax.broken_barh(list(zip(start, width)), (top * 1.1, top * 0.12), color=KIND_COLOURS.get(kind, "grey"), label=f"{kind} backup job")
            ax2 = ax.twinx()
            ax2.plot(h, sv["rp_age_s"] / 3600.0, color="tab:green", lw=1.1, label="restore-point age (h)")
            rpo = vinfo.loc[vinfo["volume"] == vol, "rpo_s"]
            if len(rpo):
                ax2.axhline(float(rpo.iloc[0]) / 3600.0, color="tab:red", ls="--", lw=0.9, label="RPO")
            ax2.set_ylabel("restore-point age (h)")
            ax2.set_ylim(bottom=0)
            kind = vinfo.loc[vinfo["volume"] == vol, "kind"]
            ax.set_title(f"{vol} ({kind.iloc[0] if len(kind) else '?'})", fontsize=9, loc="left")
            h1, l1 = ax.get_legend_handles_labels()
            h2, l2 = ax2.get_legend_handles_labels()
            seen = {}
            for hh, ll in zip(h1 + h2, l1 + l2):
                seen.setdefault(ll, hh)
            ax.legend(list(seen.values()), list(seen.keys()), loc="upper left", bbox_to_anchor=(1.07, 1.0), fontsize=8, borderaxespad=0)
        axes[-1, 0].set_xlabel("simulated time (hours)")
        span = f"first {end_s / 86400:.1g} days" if max_days is not None and end_s < float(s["t"].max()) else "whole run"
        fig.suptitle(f"{rs.root.name} / {pol} (seed {seed}, {span}): backups over production load, restore-point age vs RPO", fontsize=11)
        fig.tight_layout()
        path = out_dir / f"timeline_{_slug(pol)}.png"
        fig.savefig(path, dpi=DPI)
        plt.close(fig)
        out.append((pol, path))
    return out


def _slug(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", s)


FORECAST_FILES = ("forecast.parquet", "forecasts.parquet", "forecast_series.parquet")


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
    names = {
        "mean": ["{q}_mean", "{q}_forecast", "mean_{q}", "forecast_{q}", "{q}_point"],
        "upper": ["{q}_upper", "upper_{q}", "{q}_hi", "{q}_q90"],
        "lower": ["{q}_lower", "lower_{q}", "{q}_lo", "{q}_q10"],
        "actual": ["{q}_actual", "actual_{q}"],
    }
    parts = []
    if "quantity" in df and "mean" in df:
        long = df.copy()
        for c in ("lower", "upper", "actual"):
            if c not in long:
                long[c] = np.nan
        parts.append(long[["t", "volume", "quantity", "mean", "lower", "upper", "actual"]])
    else:
        for q in ("mbps", "iops"):
            cols = {}
            for role, pats in names.items():
                cols[role] = next((p.format(q=q) for p in pats if p.format(q=q) in df), None)
            if cols["mean"] is None:
                continue
            part = pd.DataFrame({"t": df["t"].astype(float), "volume": df["volume"], "quantity": q})
            for role in ("mean", "lower", "upper", "actual"):
                part[role] = df[cols[role]].astype(float).to_numpy() if cols[role] else np.nan
            parts.append(part)
    if not parts:
        return None
    out = pd.concat(parts, ignore_index=True)
    if out["actual"].isna().all():
        s = _series(run, ["t", "volume", "prod_mbps", "prod_iops"])
        if s is not None:
            s = s.sort_values("t")
            filled = []
            for q, g in out.groupby("quantity"):
                g = g.sort_values("t").drop(columns="actual")
                m = pd.merge_asof(g, s[["t", "volume", f"prod_{q}"]].rename(columns={f"prod_{q}": "actual"}), on="t", by="volume", direction="nearest")
                filled.append(m)
            out = pd.concat(filled, ignore_index=True)
    return out


def forecast_plots(rs: ResultsSet, out_dir: Path, k: int = 3, max_days: float | None = 3.0) -> list[tuple[str, Path]]:
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
        vols = [v for v in _pick_volumes(rs, run, k) if v in set(fq["volume"])] or list(dict.fromkeys(fq["volume"]))[:k]
        fig, axes = plt.subplots(len(vols), 1, figsize=(15, 2.6 * len(vols) + 0.8), sharex=True, squeeze=False)
        for ax, vol in zip(axes[:, 0], vols):
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
        axes[-1, 0].set_xlabel("simulated time (hours)")
        fig.suptitle(f"{rs.root.name} / {pol}: forecast vs actual production load ({'MB/s' if q == 'mbps' else 'IOPS'})", fontsize=11)
        fig.tight_layout()
        path = out_dir / f"forecast_{_slug(pol)}.png"
        fig.savefig(path, dpi=DPI)
        plt.close(fig)
        out.append((pol, path))
    return out


def pareto_png(trials: pd.DataFrame, objectives: Sequence[tuple[str, str]], out: Path, chosen: int | None = None,
               untuned: dict | None = None, title: str = "") -> Path:
    """Trials in objective space: infeasible, feasible, the Pareto front, chosen, untuned."""
    done = trials[trials["state"] == "COMPLETE"] if "state" in trials else trials
    names = [o[0] for o in objectives]
    pairs = [(0, 1)] if len(names) == 2 else ([(i, j) for i in range(len(names)) for j in range(i + 1, len(names))][:3] if len(names) > 2 else [(0, 0)])
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
            ax.scatter([untuned[names[i]] * mx.scale], [untuned[names[j]] * my.scale], marker="D", s=70, color="black", zorder=5, label="untuned policy")
        ax.set_ylabel(f"{my.label} ({my.unit}) — {objectives[j][1]}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="best")
    fig.suptitle(title or "tuning: Pareto front", fontsize=11)
    fig.tight_layout()
    fig.savefig(out, dpi=DPI)
    plt.close(fig)
    return Path(out)


# --------------------------------------------------------------------------- tables


def md_table(rows: Sequence[dict], columns: Sequence[tuple[str, str]]) -> str:
    """A Markdown table; `columns` are (key, header)."""
    if not rows:
        return "_(none)_\n"
    head = "| " + " | ".join(h for _, h in columns) + " |"
    sep = "|" + "|".join("---" if i == 0 else "---:" for i in range(len(columns))) + "|"
    body = ["| " + " | ".join(_cell(r.get(k)) for k, _ in columns) + " |" for r in rows]
    return "\n".join([head, sep, *body]) + "\n"


def _cell(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        if not math.isfinite(v):
            return "-"
        return f"{v:.4g}"
    return str(v).replace("|", "\\|")


def decision_summary(rs: ResultsSet) -> tuple[list[dict], list[dict], list[dict]]:
    """Per policy: actions per seed; top reasons (numbers masked); job statistics."""
    actions, reasons, jobs_rows = [], [], []
    for pol in rs.policies:
        runs = [r for r in rs.runs if r.policy == pol]
        decs, jobs = [], []
        for r in runs:
            if (r.path / "decisions.parquet").is_file():
                decs.append(pd.read_parquet(r.path / "decisions.parquet"))
            if (r.path / "jobs.parquet").is_file():
                jobs.append(pd.read_parquet(r.path / "jobs.parquet"))
        n = max(1, len(runs))
        if decs:
            d = pd.concat(decs, ignore_index=True)
            row = {"policy": pol, "decisions": len(d) / n}
            for a, c in d["action"].value_counts().items():
                row[str(a)] = c / n
            if "accepted" in d:
                row["rejected"] = float((~d["accepted"].astype(bool)).sum()) / n
            if "forced" in d:
                row["forced"] = float(d["forced"].astype(bool).sum()) / n
            actions.append(row)
            masked = d["reason"].fillna("").map(lambda s: re.sub(r"-?\d+(\.\d+)?", "#", s))
            vc = masked.value_counts()
            for reason, c in vc.head(6).items():
                reasons.append({"policy": pol, "reason": reason or "(none)", "per_run": c / n, "share_pct": 100.0 * c / len(d)})
        if jobs:
            j = pd.concat(jobs, ignore_index=True)
            for kind, g in j.groupby("kind"):
                dur = (g["complete_t"] - g["snapshot_t"]) / 60.0
                jobs_rows.append({
                    "policy": pol, "kind": kind, "jobs_per_run": len(g) / n, "mean_min": float(dur.mean()), "p95_min": float(dur.quantile(0.95)),
                    "mean_gb": float(g["moved_bytes"].mean() / 1e9) if "moved_bytes" in g else math.nan,
                    "paused_pct": float(100.0 * (g["pauses"] > 0).mean()) if "pauses" in g else math.nan,
                })
    return actions, reasons, jobs_rows


# --------------------------------------------------------------------------- the report


@dataclass
class Report:
    path: Path
    html: Path | None
    images: list[Path]
    sections: list[str]
    skipped: dict[str, str]

    def to_json(self) -> dict:
        return {"report": str(self.path), "html": str(self.html) if self.html else None, "images": [str(p) for p in self.images],
                "sections": self.sections, "skipped": self.skipped}


def tuning_studies(root: Path) -> list[Path]:
    tdir = root / "tune"
    if not tdir.is_dir():
        return []
    return sorted(d for d in tdir.iterdir() if d.is_dir() and (d / "summary.json").is_file())


def build_report(results_dir: str | Path, out: str | Path | None = None, html: bool = False, baseline: str | None = None,
                 level: float = 0.95, timeline_days: float | None = 3.0) -> Report:
    import json

    rs = load_runs(results_dir)
    out_dir = Path(out) if out else rs.root / "report"
    if out_dir.exists():
        for f in out_dir.glob("*.png"):
            f.unlink()
    out_dir.mkdir(parents=True, exist_ok=True)
    comp = comparison(rs, baseline, level)
    cfg = rs.config
    images: list[Path] = []
    sections: list[str] = []
    skipped: dict[str, str] = {}
    md: list[str] = []

    def img(path: Path, alt: str) -> None:
        images.append(path)
        md.append(f"![{alt}]({path.name})\n")

    # header
    md.append(f"# {rs.root.name}: backup scheduling policies compared\n")
    if cfg.get("description"):
        md.append(" ".join(str(cfg["description"]).split()) + "\n")
    fleet = cfg.get("fleet") or []
    n_vol = sum(int(g.get("count", 1)) for g in fleet if g.get("workload"))
    md.append(
        f"- **runs**: {len(rs.runs)} ({len(rs.policies)} policies × {len(rs.seeds)} seeds: {', '.join(map(str, rs.seeds))}), "
        f"{rs.extra.get('source', '')}\n"
        f"- **simulated**: {cfg.get('duration_h', '?')} h per run, fleet of {n_vol or '?'} synthetic volumes in {len(fleet)} groups "
        f"({', '.join(str(g.get('workload') or g.get('trace')) for g in fleet)})\n"
        f"- **targets**: RPO {cfg.get('rpo_h', '?')} h, RTO {cfg.get('rto_h', '?')} h (defaults; groups may override), "
        f"acceptable impact {100 * float(cfg.get('impact_threshold', 0)):.0f}% latency increase\n"
        f"- **baseline** for paired differences: `{comp.baseline}`; intervals: {comp.level:.0%} t-intervals over seeds\n"
    )

    # 1. comparison
    sections.append("comparison")
    md.append("## 1. Policy comparison\n")
    comparison_bars(comp, out_dir / "comparison.png")
    img(out_dir / "comparison.png", "policy comparison")
    keys = [m.key for m in METRICS if m.key in comp.summary]
    rows, _ = summary_table(comp, keys)
    md.append("Mean ± half-width of the confidence interval over seeds:\n")
    md.append(md_table(rows, [("policy", "policy"), ("n", "seeds")] + [(k, f"{metric(k).label} ({metric(k).unit})") for k in keys]))
    if len(comp.policies) > 1:
        md.append(f"\n### Paired differences against `{comp.baseline}` (same seed = same load)\n")
        forest = paired_forest(comp, out_dir / "paired.png", keys)
        if forest:
            img(forest, "paired differences")
        prow = []
        for r in comp.paired.to_dict(orient="records"):
            if r["metric"] not in keys:
                continue
            m = metric(r["metric"])
            sig = "-"
            if math.isfinite(r["lo"]) and (r["lo"] > 0 or r["hi"] < 0):
                sig = "better" if (r["diff"] > 0) == m.higher_is_better else "worse"
            prow.append({"policy": r["policy"], "metric": m.label, "diff": f"{r['diff']:+.3g}" if math.isfinite(r["diff"]) else "-",
                         "ci": f"[{r['lo']:+.3g}, {r['hi']:+.3g}]" if math.isfinite(r["lo"]) else "-",
                         "rel": f"{r['rel_pct']:+.1f}%" if math.isfinite(r["rel_pct"]) else "-", "p": r["p"], "sig": sig})
        md.append(md_table(prow, [("policy", "policy"), ("metric", "metric"), ("diff", "difference"), ("ci", f"{comp.level:.0%} CI"),
                                  ("rel", "relative"), ("p", "p (paired t)"), ("sig", "significant")]))
    if not comp.by_workload.empty:
        md.append("\n### Per workload kind\n")
        wk = [k for k in ("rpo_compliance_pct", "rpo_violation_h", "rto_compliance_pct", "impact_io_mean", "io_over_threshold_pct") if k in comp.by_workload]
        wrows = []
        for r in comp.by_workload.to_dict(orient="records"):
            row = {"workload": r["workload"], "policy": r["policy"]}
            for k in wk:
                row[k] = format_ci(r[k], r[f"{k}_lo"], r[f"{k}_hi"], metric(k).fmt)
            wrows.append(row)
        md.append(md_table(wrows, [("workload", "workload"), ("policy", "policy")] + [(k, metric(k).label) for k in wk]))

    # 2. impact
    md.append("\n## 2. Production impact distribution\n")
    p = impact_cdfs(rs, out_dir / "impact_cdf.png", cfg.get("impact_threshold"))
    if p:
        sections.append("impact")
        img(p, "impact CDFs")
    else:
        skipped["impact"] = "no series.parquet in the run folders"
        md.append("_No time series were recorded in these runs._\n")

    # 3. timelines
    md.append("\n## 3. Restore-point age and backup jobs over the load\n")
    tl = timelines(rs, out_dir, max_days=timeline_days)
    if tl:
        sections.append("timelines")
        md.append("The same volumes and seed under each policy. Coloured bars at the top of each panel are backup jobs "
                  "(snapshot to completion); the green line is the restore-point age against the dashed RPO.\n")
        for pol, path in tl:
            md.append(f"\n**{pol}**\n")
            img(path, f"timeline {pol}")
    else:
        skipped["timelines"] = "no series.parquet in the run folders"
        md.append("_No time series were recorded in these runs._\n")

    # 4. forecasts
    md.append("\n## 4. Forecast vs actual\n")
    fp = forecast_plots(rs, out_dir, max_days=timeline_days)
    fsum = []
    for r in rs.runs:
        fc = {k: v for k, v in r.summary.get("fleet", {}).items()
              if k.startswith("forecast_") and not k.endswith("wall_s") and isinstance(v, (int, float)) and not isinstance(v, bool)}
        if fc:
            fsum.append({"policy": r.policy, "seed": r.seed, **fc})
    if fp:
        sections.append("forecast")
        for pol, path in fp:
            md.append(f"\n**{pol}**\n")
            img(path, f"forecast {pol}")
    else:
        skipped["forecast"] = "no run folder has forecast series (forecast.parquet)"
        md.append("_No run folder holds forecast series; section skipped._\n")
    if fsum:
        fkeys = sorted({k for r in fsum for k in r if k.startswith("forecast_")})[:8]
        md.append("\nForecast-service summary per run:\n")
        md.append(md_table(fsum, [("policy", "policy"), ("seed", "seed")] + [(k, k.removeprefix("forecast_")) for k in fkeys]))

    # 5. tuning
    md.append("\n## 5. Tuning\n")
    studies = tuning_studies(rs.root)
    if not studies:
        skipped["tuning"] = "no tuning study under tune/"
        md.append("_No tuning study under `tune/` (run `piop tune`)._\n")
    for sdir in studies:
        sections.append(f"tuning:{sdir.name}")
        info = json.loads((sdir / "summary.json").read_text())
        objs = [(o["metric"], o["direction"]) for o in info.get("objectives", [])]
        md.append(f"\n### Study `{info.get('study', sdir.name)}`: {info.get('policy')} ({info.get('n_trials', '?')} completed trials, "
                  f"{info.get('duration_h', '?')} h, seeds {info.get('seeds')})\n")
        if info.get("constraints"):
            md.append("Constraints: " + ", ".join(f"`{c['name']}`" for c in info["constraints"]) + "\n")
        if (sdir / "trials.parquet").is_file() and objs:
            trials = pd.read_parquet(sdir / "trials.parquet")
            chosen = (info.get("chosen") or {}).get("number")
            img(pareto_png(trials, objs, out_dir / f"pareto_{_slug(sdir.name)}.png", chosen=chosen, untuned=info.get("untuned"),
                           title=f"study {sdir.name}: Pareto front"), f"pareto {sdir.name}")
        front = [{k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in r.items()} for r in info.get("pareto") or []]
        pcols = [c for c in (front[0].keys() if front else []) if c.startswith("param:")]
        md.append(md_table(front[:15], [("number", "trial")] + [(o, metric(o).label) for o, _ in objs] + [(c, c.removeprefix("param:")) for c in pcols]))
        if info.get("chosen"):
            ch = info["chosen"]
            md.append(f"\nChosen: trial {ch['number']} (balanced compromise on the front), exported as `{sdir / 'best.yaml'}`; settings: "
                      + ", ".join(f"`{k}={v:.4g}`" if isinstance(v, float) else f"`{k}={v}`" for k, v in ch.get("settings", {}).items()) + "\n")
        if info.get("improvement"):
            md.append("\nTuned vs untuned (same seeds and duration):\n")
            md.append(md_table(info["improvement"], [("metric", "objective"), ("untuned", "untuned"), ("tuned", "tuned"), ("diff", "difference"), ("rel_pct", "relative %")]))

    # 6. decisions
    md.append("\n## 6. Decision log\n")
    actions, reasons, jobs_rows = decision_summary(rs)
    sections.append("decisions")
    acols = [("policy", "policy"), ("decisions", "actions / run")] + [(k, f"{k} / run") for k in ("start", "throttle", "pause", "resume") if any(k in a for a in actions)]
    acols += [(k, f"{k} / run") for k in ("rejected", "forced") if any(k in a for a in actions)]
    md.append(md_table(actions, acols))
    md.append("\nMost frequent reasons (numbers masked as #):\n")
    md.append(md_table(reasons, [("policy", "policy"), ("reason", "reason"), ("per_run", "per run"), ("share_pct", "% of actions")]))
    md.append("\nBackup jobs (snapshot to completion):\n")
    md.append(md_table(jobs_rows, [("policy", "policy"), ("kind", "kind"), ("jobs_per_run", "jobs / run"), ("mean_min", "mean min"),
                                   ("p95_min", "p95 min"), ("mean_gb", "mean GB"), ("paused_pct", "% paused")]))
    if skipped:
        md.append("\n---\nSkipped: " + "; ".join(f"{k} ({v})" for k, v in skipped.items()) + "\n")

    text = "\n".join(md)
    path = out_dir / "report.md"
    tmp = out_dir / ".report.md.tmp"
    tmp.write_text(text)
    tmp.replace(path)
    html_path = None
    if html:
        html_path = out_dir / "report.html"
        html_path.write_text(to_html(text, f"{rs.root.name} report"))
    return Report(path, html_path, images, sections, skipped)


def to_html(markdown: str, title: str) -> str:
    try:
        from markdown_it import MarkdownIt

        body = MarkdownIt("commonmark").enable("table").render(markdown)
    except ImportError:  # pragma: no cover - markdown-it comes with rich
        import html as _h

        body = f"<pre>{_h.escape(markdown)}</pre>"
    style = ("body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;line-height:1.45}"
             "table{border-collapse:collapse;font-size:0.85em;margin:0.8em 0}td,th{border:1px solid #ccc;padding:3px 7px}"
             "th{background:#f3f3f3}img{max-width:100%}code{background:#f5f5f5;padding:0 3px}")
    return f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title><style>{style}</style></head><body>\n{body}</body></html>\n"

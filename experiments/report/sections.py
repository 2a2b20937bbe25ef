"""The sections of the report, each appended to one `Doc` (Markdown, images, notes).

In order: header, policy comparison, impact distribution, timelines, forecasts, tuning
studies, decision log. A section without its data says so and is listed as skipped.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from experiments.compare import Comparison, summary_table
from experiments.metrics import METRICS, WORKLOAD_METRICS, format_ci, metric, paired_cells
from experiments.provenance import provenance, read_provenance
from experiments.report.decisions import decision_summary
from experiments.report.facts import describe_command, plural, run_facts
from experiments.report.fig_compare import comparison_bars, paired_forest
from experiments.report.fig_impact import impact_cdfs
from experiments.report.fig_timeline import timelines
from experiments.report.forecast import forecast_plots
from experiments.report.load import ResultsSet, tuning_studies
from experiments.report.markdown import md_table
from experiments.report.pareto import pareto_png
from experiments.report.style import slug


@dataclass
class Doc:
    """The report being written: Markdown blocks, images beside it, sections made and skipped."""

    out_dir: Path
    md: list[str] = field(default_factory=list)
    images: list[Path] = field(default_factory=list)
    sections: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)

    def add(self, text: str) -> None:
        self.md.append(text)

    def img(self, path: Path, alt: str) -> None:
        self.images.append(path)
        self.md.append(f"![{alt}]({path.name})\n")

    def text(self) -> str:
        return "\n".join(self.md)


def header(doc: Doc, rs: ResultsSet, comp: Comparison) -> None:
    """What ran, as the run folders record it (not the config's free-text description,
    which speaks of the config's own settings whatever the command line overrode)."""
    f = run_facts(rs)
    cfg = rs.config
    doc.add(f"# {rs.root.name}: backup scheduling policies compared\n")
    doc.add(
        f"- **runs**: {plural(len(rs.runs), 'run')} ({plural(len(rs.policies), 'policy', 'policies')} × {plural(len(rs.seeds), 'seed')}: "
        f"{', '.join(map(str, rs.seeds))}), {rs.extra.get('source', '')}\n"
        f"- **policies**: {', '.join(f'`{p}`' for p in rs.policies)}\n"
        f"- **simulated**: {f['duration']} per run{f['history']}, {f['fleet']}\n"
        f"- **targets**: RPO {cfg.get('rpo_h', '?')} h, RTO {cfg.get('rto_h', '?')} h (defaults; groups may override), "
        f"acceptable impact {100 * float(cfg.get('impact_threshold', 0)):.0f}% latency increase\n"
        f"- **baseline** for paired differences: `{comp.baseline}`; intervals: {comp.level:.0%} t-intervals over seeds\n"
        f"- **units**: impact is the production latency increase caused by backups, in % "
        f"(`lat(prod+backup) / lat(prod) - 1`; summary.json stores the fraction)\n"
        + _made_by(rs)
        + "".join(f"- **load note**: {note}\n" for note in f["notes"])
    )


def _made_by(rs: ResultsSet) -> str:
    """The command that made the results (compare.json's provenance, else a run's)."""
    cmd = read_provenance(rs.root) or next((c for c in (read_provenance(r.path) for r in rs.runs) if c), None)
    return f"- **made by**: {describe_command(cmd)}\n" if cmd else "- **made by**: not recorded (made by an older piop)\n"


def _paired_rows(comp: Comparison, keys: list[str]) -> list[dict]:
    prow = []
    for r in comp.paired.to_dict(orient="records"):
        if r["metric"] not in keys:
            continue
        m = metric(r["metric"])
        c = paired_cells(r, m)
        prow.append(
            {"policy": r["policy"], "metric": m.header, "diff": c["diff"], "ci": c["ci"], "rel": c["rel"], "p": c["p"], "sig": c["verdict"]}
        )
    return prow


def _by_workload(doc: Doc, comp: Comparison) -> None:
    doc.add("\n### Per workload kind\n")
    wk = [k for k in WORKLOAD_METRICS if k in comp.by_workload]
    wrows = []
    for r in comp.by_workload.to_dict(orient="records"):
        row = {"workload": r["workload"], "policy": r["policy"]}
        for k in wk:
            row[k] = format_ci(r[k], r[f"{k}_lo"], r[f"{k}_hi"], metric(k).fmt)
        wrows.append(row)
    doc.add(md_table(wrows, [("workload", "workload"), ("policy", "policy")] + [(k, metric(k).header) for k in wk]))


def comparison_section(doc: Doc, comp: Comparison) -> None:
    doc.sections.append("comparison")
    doc.add("## 1. Policy comparison\n")
    comparison_bars(comp, doc.out_dir / "comparison.png")
    doc.img(doc.out_dir / "comparison.png", "policy comparison")
    keys = [m.key for m in METRICS if m.key in comp.summary]
    rows, _ = summary_table(comp, keys)
    doc.add(
        "Mean ± half-width of the confidence interval over seeds, in each column's unit "
        "(`mean [lo, hi]` where the interval reaches past what the metric can take, e.g. below 0):\n"
    )
    doc.add(md_table(rows, [("policy", "policy"), ("n", "seeds")] + [(k, metric(k).header) for k in keys]))
    if len(comp.policies) > 1:
        doc.add(f"\n### Paired differences against `{comp.baseline}` (same seed = same load)\n")
        doc.add(
            "Differences in each metric's unit (impact: percentage points). Where every seed gave the same "
            "difference there is no spread to test: no interval, no p-value.\n"
        )
        forest = paired_forest(comp, doc.out_dir / "paired.png", keys)
        if forest:
            doc.img(forest, "paired differences")
        doc.add(
            md_table(
                _paired_rows(comp, keys),
                [
                    ("policy", "policy"),
                    ("metric", "metric"),
                    ("diff", "difference"),
                    ("ci", f"{comp.level:.0%} CI"),
                    ("rel", "relative"),
                    ("p", "p (paired t)"),
                    ("sig", "significant"),
                ],
            )
        )
    if not comp.by_workload.empty:
        _by_workload(doc, comp)


def impact_section(doc: Doc, rs: ResultsSet) -> None:
    doc.add("\n## 2. Production impact distribution\n")
    p = impact_cdfs(rs, doc.out_dir / "impact_cdf.png", rs.config.get("impact_threshold"))
    if p:
        doc.sections.append("impact")
        doc.img(p, "impact CDFs")
    else:
        doc.skipped["impact"] = "no series.parquet in the run folders"
        doc.add("_No time series were recorded in these runs._\n")


def timelines_section(doc: Doc, rs: ResultsSet, timeline_days: float | None) -> None:
    doc.add("\n## 3. Restore-point age and backup jobs over the load\n")
    tl = timelines(rs, doc.out_dir, max_days=timeline_days)
    if tl:
        doc.sections.append("timelines")
        doc.add(
            "The same volumes and seed under each policy. Coloured bars at the top of each panel are backup jobs "
            "(snapshot to completion); the green line is the restore-point age against the dashed RPO.\n"
        )
        for pol, path in tl:
            doc.add(f"\n**{pol}**\n")
            doc.img(path, f"timeline {pol}")
    else:
        doc.skipped["timelines"] = "no series.parquet in the run folders"
        doc.add("_No time series were recorded in these runs._\n")


def forecast_section(doc: Doc, rs: ResultsSet, timeline_days: float | None) -> None:
    doc.add("\n## 4. Forecast vs actual\n")
    fp = forecast_plots(rs, doc.out_dir, max_days=timeline_days)
    fsum = []
    for r in rs.runs:
        fc = {
            k: v
            for k, v in r.summary.get("fleet", {}).items()
            if k.startswith("forecast_") and not k.endswith("wall_s") and isinstance(v, (int, float)) and not isinstance(v, bool)
        }
        if fc:
            fsum.append({"policy": r.policy, "seed": r.seed, **fc})
    if fp:
        doc.sections.append("forecast")
        for pol, path in fp:
            doc.add(f"\n**{pol}**\n")
            doc.img(path, f"forecast {pol}")
    else:
        doc.skipped["forecast"] = "no run folder has forecast series (forecast.parquet)"
        doc.add("_No run folder holds forecast series; section skipped._\n")
    if fsum:
        fkeys = sorted({k for r in fsum for k in r if k.startswith("forecast_")})[:8]
        doc.add("\nForecast-service summary per run:\n")
        doc.add(md_table(fsum, [("policy", "policy"), ("seed", "seed")] + [(k, k.removeprefix("forecast_")) for k in fkeys]))


def _study(doc: Doc, sdir: Path) -> None:
    """One tuning study: its Pareto figure and front, the chosen trial, tuned vs untuned."""
    doc.sections.append(f"tuning:{sdir.name}")
    info = json.loads((sdir / "summary.json").read_text())
    objs = [(o["metric"], o["direction"]) for o in info.get("objectives", [])]
    doc.add(
        f"\n### Study `{info.get('study', sdir.name)}`: {info.get('policy')} ({info.get('n_trials', '?')} completed trials, "
        f"{info.get('duration_h', '?')} h, seeds {info.get('seeds')})\n"
    )
    if info.get("constraints"):
        doc.add("Constraints: " + ", ".join(f"`{c['name']}`" for c in info["constraints"]) + "\n")
    if (sdir / "trials.parquet").is_file() and objs:
        trials = pd.read_parquet(sdir / "trials.parquet")
        chosen = (info.get("chosen") or {}).get("number")
        doc.img(
            pareto_png(
                trials,
                objs,
                doc.out_dir / f"pareto_{slug(sdir.name)}.png",
                chosen=chosen,
                untuned=info.get("untuned"),
                title=f"study {sdir.name}: Pareto front",
            ),
            f"pareto {sdir.name}",
        )
    front = [{k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in r.items()} for r in info.get("pareto") or []]
    for r in front:  # objectives in their display unit, as in every other table
        r.update({o: metric(o).show(r[o]) for o, _ in objs if isinstance(r.get(o), (int, float))})
    pcols = [c for c in (front[0].keys() if front else []) if c.startswith("param:")]
    doc.add(
        md_table(
            front[:15], [("number", "trial")] + [(o, metric(o).header) for o, _ in objs] + [(c, c.removeprefix("param:")) for c in pcols]
        )
    )
    if info.get("chosen"):
        ch = info["chosen"]
        doc.add(
            f"\nChosen: trial {ch['number']} (balanced compromise on the front), exported as `{sdir / 'best.yaml'}`; settings: "
            + ", ".join(f"`{k}={v:.4g}`" if isinstance(v, float) else f"`{k}={v}`" for k, v in ch.get("settings", {}).items())
            + "\n"
        )
    if info.get("improvement"):
        doc.add("\nTuned vs untuned (same seeds and duration):\n")
        doc.add(
            md_table(
                [_scaled_improvement(r) for r in info["improvement"]],
                [("metric", "objective"), ("untuned", "untuned"), ("tuned", "tuned"), ("diff", "difference"), ("rel_pct", "relative %")],
            )
        )


def _scaled_improvement(r: dict) -> dict:
    """A tuned-vs-untuned row with its values in the objective's display unit."""
    m = metric(str(r.get("metric")))
    out = {**r, "metric": m.header}
    for k in ("untuned", "tuned"):
        out[k] = m.show(r.get(k)) if isinstance(r.get(k), (int, float)) else r.get(k)
    if isinstance(r.get("diff"), (int, float)) and math.isfinite(r["diff"]):
        out["diff"] = f"{r['diff'] * m.scale:+.3g}"
    return out


def tuning_section(doc: Doc, rs: ResultsSet) -> None:
    doc.add("\n## 5. Tuning\n")
    studies = tuning_studies(rs.root)
    if not studies:
        doc.skipped["tuning"] = "no tuning study under tune/"
        doc.add("_No tuning study under `tune/` (run `piop tune`)._\n")
    for sdir in studies:
        _study(doc, sdir)


def decisions_section(doc: Doc, rs: ResultsSet) -> None:
    doc.add("\n## 6. Decision log\n")
    actions, reasons, jobs_rows = decision_summary(rs)
    doc.sections.append("decisions")
    acols = [("policy", "policy"), ("decisions", "actions / run")] + [
        (k, f"{k} / run") for k in ("start", "throttle", "pause", "resume") if any(k in a for a in actions)
    ]
    acols += [(k, f"{k} / run") for k in ("rejected", "forced") if any(k in a for a in actions)]
    doc.add(md_table(actions, acols))
    doc.add("\nMost frequent reasons (numbers masked as #):\n")
    doc.add(md_table(reasons, [("policy", "policy"), ("reason", "reason"), ("per_run", "per run"), ("share_pct", "% of actions")]))
    doc.add("\nBackup jobs (snapshot to completion):\n")
    doc.add(
        md_table(
            jobs_rows,
            [
                ("policy", "policy"),
                ("kind", "kind"),
                ("jobs_per_run", "jobs / run"),
                ("mean_min", "mean min"),
                ("p95_min", "p95 min"),
                ("mean_gb", "mean GB"),
                ("paused_pct", "% paused"),
            ],
        )
    )


def footer(doc: Doc) -> None:
    doc.add("\n---\n")
    if doc.skipped:
        doc.add("Skipped: " + "; ".join(f"{k} ({v})" for k, v in doc.skipped.items()) + "\n")
    doc.add(f"This report: {describe_command(provenance())}\n")

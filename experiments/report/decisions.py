"""The decision log summarised: actions and reasons per policy, backup job statistics."""

from __future__ import annotations

import math
import re

import pandas as pd

from experiments.report.load import ResultsSet


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
                jobs_rows.append(
                    {
                        "policy": pol,
                        "kind": kind,
                        "jobs_per_run": len(g) / n,
                        "mean_min": float(dur.mean()),
                        "p95_min": float(dur.quantile(0.95)),
                        "mean_gb": float(g["moved_bytes"].mean() / 1e9) if "moved_bytes" in g else math.nan,
                        "paused_pct": float(100.0 * (g["pauses"] > 0).mean()) if "pauses" in g else math.nan,
                    }
                )
    return actions, reasons, jobs_rows

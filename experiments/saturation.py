"""The terminal's word on saturated tiers: which runs' policies found that no schedule meets
every RPO, who misses and what capacity would have sufficed.

The policy writes its saturation report into `summary.json` (`meta.policy_summary.saturation`,
see `schedulers.predictive.fleet.SaturationLog`); a user should not have to open that file to
learn that the backup infrastructure is undersized, so `piop run` and `piop compare` print
one line per saturated run from it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path


def saturation_line(run: str, sat: dict) -> str | None:
    """One line for a run's saturation report, or None when its tiers kept up."""
    if not sat or not sat.get("saturated"):
        return None
    misses = sat.get("misses_h") or {}
    worst = next(iter(misses.items()), None)
    who = f"{sat.get('volumes_missing', len(misses))} volume(s) miss their RPO"
    if worst:
        who += f" (worst {worst[0]}, late by {worst[1]:.2f} h)"
    if sat.get("source_limited"):
        who += f"; {len(sat['source_limited'])} limited by their own source, which no tier capacity helps"
    need = sat.get("needs") or {}
    suffice = f"; would suffice: {need['slots']:g} slots, {need['ingest_mbps']:,.0f} MB/s of ingest" if need else ""
    return f"{run}: tiers saturated from {sat.get('first_h', 0):.1f} h, no schedule meets every RPO: {who}{suffice}"


def saturation_lines(folder: Path, runs: Iterable[str]) -> list[str]:
    """The lines for the runs `runs` of results folder `folder` (runs without a summary are skipped)."""
    lines = []
    for run in runs:
        path = Path(folder) / run / "summary.json"
        try:
            meta = json.loads(path.read_text()).get("meta", {})
        except (OSError, ValueError):
            continue
        line = saturation_line(run, (meta.get("policy_summary") or {}).get("saturation") or {})
        if line:
            lines.append(line)
    return lines

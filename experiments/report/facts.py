"""What the runs of a report actually were, read from their folders: simulated duration,
history, fleet, load notes, and the command that made them.

The report describes the runs from their own records (each run's resolved
`config.yaml`, `volumes.parquet`, `summary.json` meta), never from the config's
free-text description, which speaks of the config's defaults (e.g. "for 7 days") even
when `--duration-h 24` ran.
"""

from __future__ import annotations

from collections import Counter

import pandas as pd
import yaml

from experiments.load_spans import unlocated_notes
from experiments.report.load import ResultsSet, Run


def plural(n: int, one: str, many: str | None = None) -> str:
    """`1 seed`, `2 seeds`, `3 policies`."""
    return f"{n} {one if n == 1 else (many or one + 's')}"


def _hours(h: float) -> str:
    return f"{h:g} h" + (f" ({h / 24:g} days)" if h >= 48 and h % 24 == 0 else "")


def _run_config(run: Run) -> dict:
    try:
        return yaml.safe_load((run.path / "config.yaml").read_text()) or {}
    except (OSError, yaml.YAMLError):
        return {}


def _sources(load: dict) -> list[dict]:
    """The leaf source descriptions of a run's meta `load`."""
    if not isinstance(load, dict):
        return []
    if isinstance(load.get("sources"), list):
        return [x for s in load["sources"] for x in _sources(s)]
    return [load]


def _fleet(run: Run) -> str:
    """`12 volumes: 4 database, 5 vm, 3 fileserver (synthetic)`, from the run's own files."""
    kinds: Counter = Counter()
    try:
        v = pd.read_parquet(run.path / "volumes.parquet", columns=["volume", "kind"])
        kinds.update(v["kind"].astype(str))
    except (OSError, ValueError, KeyError):
        pass
    origin = []
    for s in _sources(run.summary.get("meta", {}).get("load")):
        if s.get("source") == "trace":
            origin.append(f"replayed from {s.get('title') or s.get('family')}")
        elif s.get("generator") or s.get("workload"):
            origin.append("synthetic")
    n = sum(kinds.values())
    what = ", ".join(f"{c} {k}" for k, c in sorted(kinds.items()))
    return f"{plural(n, 'volume')}: {what}" + (f" ({', '.join(dict.fromkeys(origin))})" if origin else "") if n else "fleet not recorded"


def run_facts(rs: ResultsSet) -> dict:
    """`duration`, `history`, `fleet` (text) and `notes` (load caveats) of the runs."""
    cfgs = [_run_config(r) for r in rs.runs]
    durations = sorted({float(c["duration_h"]) for c in cfgs if c.get("duration_h") is not None})
    histories = sorted({float(c.get("history_h") or 0.0) for c in cfgs})
    if not durations:
        duration = "duration not recorded"
    elif len(durations) == 1:
        duration = _hours(durations[0])
    else:
        duration = " or ".join(_hours(d) for d in durations) + " (the runs differ)"
    history = ""
    if histories and max(histories) > 0:
        history = f", after {' or '.join(_hours(h) for h in histories)} of load the forecasters had already seen"
    notes = list(dict.fromkeys(n for r in rs.runs[:1] for n in unlocated_notes(r.summary.get("meta", {}).get("load"))))
    return {"duration": duration, "history": history, "fleet": _fleet(rs.runs[0]), "notes": notes}


def describe_command(cmd: dict) -> str:
    """`piop compare ...` (piop 0.1.0, commit abc1234 with uncommitted changes, 2026-01-01T00:00:00+00:00)."""
    bits = [f"piop {cmd.get('piop_version', '?')}"]
    if cmd.get("git_commit"):
        bits.append(f"commit {str(cmd['git_commit'])[:10]}" + (" with uncommitted changes" if cmd.get("git_dirty") else ""))
    if cmd.get("time"):
        bits.append(str(cmd["time"]))
    where = f" in `{cmd['cwd']}`" if cmd.get("cwd") else ""
    return f"`{cmd.get('command') or ' '.join(cmd.get('argv', []))}`{where} ({', '.join(bits)})"

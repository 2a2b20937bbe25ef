"""A study's outcome as console tables: the front (chosen trial starred) and tuned vs untuned."""

from __future__ import annotations

from experiments.metrics import metric, short_name
from experiments.tune.front import TuneOutcome

#: column-header prefixes of the tuned settings, shortened
_SHORT = {"param:params.": "", "param:forecaster_params.": "fc.", "param:retrain.": "retrain.", "param:": ""}

Columns = list[tuple[str, str, str]]


def _shorten(k: str) -> str:
    prefix = next(p for p in _SHORT if k.startswith(p))
    return _SHORT[prefix] + k.removeprefix(prefix)


def front_table(outcome: TuneOutcome) -> tuple[list[dict], Columns]:
    """Rows and columns (key, header, format) of the Pareto front."""
    names = outcome.tuning.objective_names
    front = outcome.front
    chosen = (outcome.chosen or {}).get("number")
    rows = []
    for r in front.to_dict(orient="records"):
        row = {"number": ("* " if r["number"] == chosen else "") + str(r["number"])}
        row.update({n: r[n] for n in names})
        row.update(
            {k: (("-" if v != v else f"{v:.4g}") if isinstance(v, float) else str(v)) for k, v in r.items() if k.startswith("param:")}
        )
        rows.append(row)
    pcols = [k for k in front.columns if k.startswith("param:")] if not front.empty else []
    cols = [("number", "trial", "{}")] + [(n, short_name(n), metric(n).fmt) for n in names] + [(p, _shorten(p), "{}") for p in pcols]
    return rows, cols


IMPROVEMENT_COLUMNS: Columns = [
    ("metric", "objective", "{}"),
    ("untuned", "untuned", "{:.5g}"),
    ("tuned", "tuned", "{:.5g}"),
    ("diff", "diff", "{:+.5g}"),
    ("rel_pct", "relative %", "{:+.1f}"),
]

"""Markdown tables for the report: one cell format for every number."""

from __future__ import annotations

import math
from collections.abc import Sequence


def md_table(rows: Sequence[dict], columns: Sequence[tuple[str, str]]) -> str:
    """A Markdown table; `columns` are (key, header)."""
    if not rows:
        return "_(none)_\n"
    head = "| " + " | ".join(h for _, h in columns) + " |"
    sep = "|" + "|".join("---" if i == 0 else "---:" for i in range(len(columns))) + "|"
    body = ["| " + " | ".join(cell(r.get(k)) for k, _ in columns) + " |" for r in rows]
    return "\n".join([head, sep, *body]) + "\n"


def cell(v) -> str:
    """A table cell: 4 significant digits, '-' for missing or non-finite, pipes escaped."""
    if v is None:
        return "-"
    if isinstance(v, float):
        if not math.isfinite(v):
            return "-"
        return f"{v:.4g}"
    return str(v).replace("|", "\\|")

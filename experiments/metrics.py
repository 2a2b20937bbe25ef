"""How the fleet metrics of a run are shown: labels, units, scale, bounds, direction, format.

One table of display metadata for the console tables (`piop run`, `piop compare`), the
report's figures and tables, and the tuning plots; metrics it does not list get a plain
entry. Results files (summary.json, parquet) keep the simulator's values; a metric's
`scale` turns a stored value into its display `unit` (impact is stored as a fraction,
`lat(prod+backup) / lat(prod) - 1`, and shown in %), and every place that shows a value
goes through `Metric.fmt` (or `Metric.value` for plots), so a table, a figure and the
terminal never disagree on the unit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Display:
    """How one value of a metric is written: scaled into its unit, then `spec`-formatted.

    Used wherever a format string was (`fmt.format(value)`), so callers that format with
    a metric's `fmt` show the value in the metric's unit.
    """

    spec: str
    scale: float = 1.0
    low: float | None = None
    high: float | None = None

    def format(self, value: float) -> str:
        return self.spec.format(value * self.scale)

    def clip(self, value: float) -> float:
        """`value` (stored units) kept inside the metric's possible range."""
        if self.low is not None and value < self.low:
            return self.low
        if self.high is not None and value > self.high:
            return self.high
        return value


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    unit: str
    higher_is_better: bool
    spec: str = "{:.2f}"  # format of the displayed (scaled) value
    scale: float = 1.0  # displayed value = stored value x scale, in `unit`
    low: float | None = 0.0  # the metric cannot go below this (stored units); None: unbounded
    high: float | None = None  # ... nor above this

    @property
    def fmt(self) -> Display:
        return Display(self.spec, self.scale, self.low, self.high)

    @property
    def header(self) -> str:
        """`label (unit)`: a table column or axis label."""
        return f"{self.label} ({self.unit})" if self.unit else self.label

    def value(self, stored: float) -> float:
        """A stored value in the display unit (for plots)."""
        return stored * self.scale

    def show(self, stored: float | None) -> str:
        """A stored value as text in the display unit ('-' when missing)."""
        if stored is None or not math.isfinite(stored):
            return "-"
        return self.fmt.format(stored)


_PCT = {"low": 0.0, "high": 100.0}
_IMPACT = "% latency increase"

# fleet metrics compared by default (the order of tables and plots)
METRICS: list[Metric] = [
    Metric("rpo_compliance_pct", "RPO compliance", "% of volume-time", True, **_PCT),
    Metric("rpo_violation_h", "RPO violation time", "volume-hours", False),
    Metric("worst_rp_age_h", "worst restore-point age", "h", False),
    Metric("rto_compliance_pct", "RTO compliance", "% of volume-time", True, **_PCT),
    Metric("impact_io_mean", "mean production impact", f"{_IMPACT}, IO-weighted", False, "{:.2f}", 100.0),
    Metric("impact_p99", "p99 production impact", _IMPACT, False, "{:.2f}", 100.0),
    Metric("io_over_threshold_pct", "I/O above impact threshold", "% of production I/O", False, **_PCT),
    Metric("backup_tb", "backup data moved", "TB", False, "{:.3f}"),
    Metric("storage_cost", "backup storage cost", "$ per month", False, "{:.1f}"),
]
METRIC_BY_KEY = {m.key: m for m in METRICS}
METRIC_BY_KEY.update(
    {
        m.key: m
        for m in (
            Metric("rpo_violation_pct", "time outside RPO", "% of volume-time", False, "{:.3f}", **_PCT),
            Metric("rto_violation_pct", "time outside RTO", "% of volume-time", False, "{:.3f}", **_PCT),
            Metric("impact_p95", "p95 production impact", _IMPACT, False, "{:.2f}", 100.0),
            Metric("rpo_violations", "RPO violations", "count", False, "{:.0f}"),
            Metric("added_latency_io_ms", "added latency", "IO-seconds", False, "{:,.0f}", 1e-3),
        )
    }
)
# the console tables (the JSON and parquet files have every metric)
TABLE_METRICS = [
    "rpo_compliance_pct",
    "rpo_violation_h",
    "rto_compliance_pct",
    "impact_io_mean",
    "impact_p99",
    "io_over_threshold_pct",
    "backup_tb",
    "storage_cost",
]

# per-workload metrics, from volumes.parquet (weighted over the kind's volumes)
WORKLOAD_METRICS = ["rpo_compliance_pct", "rpo_violation_h", "rto_compliance_pct", "impact_io_mean", "io_over_threshold_pct"]

_SHORT = {
    "rpo_compliance_pct": "RPO %",
    "rpo_violation_h": "RPO viol. h",
    "worst_rp_age_h": "worst age h",
    "rto_compliance_pct": "RTO %",
    "impact_io_mean": "impact mean %",
    "impact_p99": "impact p99 %",
    "io_over_threshold_pct": "IO > thr %",
    "backup_tb": "backup TB",
    "storage_cost": "cost $/mo",
    "rpo_violations": "RPO viol.",
    "impact_p95": "impact p95 %",
}


def metric(key: str) -> Metric:
    """The display metadata of a metric (a plain, unbounded one for metrics not listed)."""
    return METRIC_BY_KEY.get(key) or Metric(key, key.replace("_", " "), "", False, "{:.4g}", low=None)


def short_name(key: str) -> str:
    """The narrow column header of a metric in console tables (its unit included)."""
    return _SHORT.get(key, key)


def _finite(*xs) -> bool:
    return all(x is not None and math.isfinite(x) for x in xs)


def format_ci(mean: float, lo: float, hi: float, fmt: str | Display) -> str:
    """`mean ± half-width`, or the mean alone when there is no interval.

    With a metric's `fmt` (a `Display`) the values are scaled into its unit, and an
    interval that crosses the metric's bound (a CI below 0 of a quantity that cannot be
    negative) is written clipped, `mean [lo, hi]`, instead of a symmetric ± that would
    claim impossible values.
    """
    if not _finite(mean):
        return "-"
    if not _finite(lo, hi):
        return fmt.format(mean)
    if isinstance(fmt, Display) and (fmt.clip(lo) != lo or fmt.clip(hi) != hi):
        return f"{fmt.format(mean)} [{fmt.format(fmt.clip(lo))}, {fmt.format(fmt.clip(hi))}]"
    return f"{fmt.format(mean)} ± {fmt.format((hi - lo) / 2)}"


def no_spread(row: dict) -> bool:
    """Two or more pairs whose differences are all equal: the CI has zero width and the
    paired t-test is undefined (no variance), whatever p a library returns for it."""
    n = row.get("n")
    return (n is None or n >= 2) and _finite(row.get("lo"), row.get("hi")) and row["lo"] == row["hi"]


def verdict(row: dict, m: Metric) -> str:
    """'better' / 'worse' when a paired CI excludes zero; when every seed gave the same
    difference (no test possible) 'identical' if it is 0, else 'no spread'; else '-'."""
    if no_spread(row):
        return "identical" if row.get("diff") == 0 else "no spread"
    if _finite(row.get("lo"), row.get("hi")) and (row["lo"] > 0 or row["hi"] < 0):
        return "better" if (row["diff"] > 0) == m.higher_is_better else "worse"
    return "-"


def paired_cells(row: dict, m: Metric | None = None) -> dict[str, str]:
    """The cells of one paired-difference row (`diff`, `ci`, `rel`, `p`, `verdict`), the
    difference in the metric's display unit; with no spread the p-value is '–'."""
    m = m or metric(row["metric"])
    s = m.scale
    diff, lo, hi = row.get("diff"), row.get("lo"), row.get("hi")
    flat = no_spread(row)
    p = row.get("p")
    return {
        "diff": f"{diff * s:+.3g}" if _finite(diff) else "-",
        "ci": "no spread" if flat else (f"[{lo * s:+.3g}, {hi * s:+.3g}]" if _finite(lo, hi) else "-"),
        "rel": f"{row['rel_pct']:+.1f}%" if _finite(row.get("rel_pct")) else "-",
        "p": "–" if flat or not _finite(p) else f"{p:.2g}",
        "verdict": verdict(row, m),
    }

"""Confidence intervals across seeds and paired differences against a baseline policy.

Every run of a comparison is one (policy, seed); a seed fixes the synthetic load, so two
policies run on the same seed saw the same production I/O. Differences are therefore
paired by seed: the CI of `metric(policy, seed) - metric(baseline, seed)` is much tighter
than the difference of two independent CIs when seeds vary a lot among themselves.

Intervals use Student's t distribution over seeds (few seeds, unknown variance). With a
single seed there is no interval (`lo`/`hi` are NaN), with zero spread it is a point.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy import stats as _st


@dataclass(frozen=True)
class CI:
    mean: float
    lo: float
    hi: float
    n: int
    sd: float

    @property
    def half_width(self) -> float:
        return (self.hi - self.lo) / 2.0 if math.isfinite(self.lo) and math.isfinite(self.hi) else math.nan

    def as_dict(self) -> dict:
        return asdict(self)


def t_ci(values: Iterable[float], level: float = 0.95) -> CI:
    """Mean and two-sided `level` CI of the mean (t distribution); NaNs are dropped."""
    if not 0.0 < level < 1.0:
        raise ValueError(f"confidence level must be in (0, 1), not {level}")
    x = np.asarray([v for v in values if v is not None], dtype=float)
    x = x[np.isfinite(x)]
    n = int(x.size)
    if n == 0:
        return CI(math.nan, math.nan, math.nan, 0, math.nan)
    mean = float(x.mean())
    if n == 1:
        return CI(mean, math.nan, math.nan, 1, math.nan)
    sd = float(x.std(ddof=1))
    half = float(_st.t.ppf(0.5 + level / 2.0, n - 1)) * sd / math.sqrt(n)
    return CI(mean, mean - half, mean + half, n, sd)


def paired_p_value(diffs: Sequence[float]) -> float:
    """Two-sided p-value of a paired t-test (mean difference = 0); NaN when undefined."""
    d = np.asarray(diffs, dtype=float)
    d = d[np.isfinite(d)]
    if d.size < 2:
        return math.nan
    if np.allclose(d, d[0]):  # no spread: the t-test is undefined, not p = 0
        return math.nan
    return float(_st.ttest_1samp(d, 0.0).pvalue)


def summarise(
    runs: pd.DataFrame, metrics: Sequence[str], by: str = "policy", level: float = 0.95, order: Sequence[str] | None = None
) -> pd.DataFrame:
    """One row per group (`by`): for each metric its mean, CI bounds and n over the rows."""
    groups = list(order) if order is not None else list(dict.fromkeys(runs[by]))
    rows = []
    for g in groups:
        sub = runs[runs[by] == g]
        row: dict = {by: g, "n": int(len(sub))}
        for m in metrics:
            ci = t_ci(sub[m] if m in sub else [], level)
            row[m] = ci.mean
            row[f"{m}_lo"] = ci.lo
            row[f"{m}_hi"] = ci.hi
        rows.append(row)
    return pd.DataFrame(rows)


def paired_differences(
    runs: pd.DataFrame,
    metrics: Sequence[str],
    baseline: str,
    by: str = "policy",
    pair: str = "seed",
    level: float = 0.95,
    order: Sequence[str] | None = None,
) -> pd.DataFrame:
    """One row per (non-baseline group, metric): mean of `x - baseline` over common `pair`s.

    Columns: `by`, metric, diff, lo, hi, n (pairs), rel_pct (diff / baseline mean x 100)
    and p (paired t-test). Seeds that either side lacks are left out of that pair.
    """
    base = runs[runs[by] == baseline].set_index(pair)
    groups = [g for g in (list(order) if order is not None else list(dict.fromkeys(runs[by]))) if g != baseline]
    rows = []
    for g in groups:
        other = runs[runs[by] == g].set_index(pair)
        common = base.index.intersection(other.index)
        for m in metrics:
            if m not in base or m not in other:
                continue
            d = (other.loc[common, m].astype(float) - base.loc[common, m].astype(float)).to_numpy()
            ci = t_ci(d, level)
            b = float(base.loc[common, m].astype(float).mean()) if len(common) else math.nan
            rel = 100.0 * ci.mean / abs(b) if b and math.isfinite(b) else math.nan
            rows.append({by: g, "metric": m, "diff": ci.mean, "lo": ci.lo, "hi": ci.hi, "n": ci.n, "rel_pct": rel, "p": paired_p_value(d)})
    return pd.DataFrame(rows, columns=[by, "metric", "diff", "lo", "hi", "n", "rel_pct", "p"])

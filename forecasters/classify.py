"""Burst / sustained classification of observed and forecast load.

Definition (one rule for observed series, forecasts and the actual future, so their
labels can be compared):

- **Baseline.** Per volume and target (IOPS, MB/s): the median `m` of the trailing
  `baseline_s` (default one day) of observed load before the point of reference, and
  its robust spread `s = 1.4826 * MAD` (median absolute deviation).
- **High.** A step is *high* when IOPS or MB/s exceeds `m + max(k * s, min_rel * m, abs_floor)`
  (defaults k = 3, min_rel = 0.5: at least 50 % above the median, so a flat, quiet
  volume does not call noise a burst).
- **Runs.** Consecutive high steps form a run. A run of fewer than `sustained_s / step_s`
  steps (default 1 h = 12 steps of 5 min) is a **burst** (high and short); a longer one
  is **sustained**; other steps are **normal** (`LoadLabel`).
- **Forecasts / actual future.** The baseline is the one at the forecast origin (only
  observed data), fixed over the horizon. A run that starts before the origin counts its
  observed high steps too. A run still going at the end of the horizon or series is
  labelled by its length so far (so a short censored run reads as a burst). A forecast is
  labelled on its mean path, or, when calibrated (`forecasters.calibration`), on its
  calibrated `label_level` quantile path: high where the calibrated chance of passing the
  threshold is at least `1 - label_level`.
- **Observed series** (`label_series`): the baseline is recomputed every
  `refresh_s` (default 1 h) from the trailing window before that point (causal).

Precision/recall (`precision_recall`) compares labels step by step.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from common.units import DAY_S
from forecasters.series import steps, targets
from sim.types import LoadHistory, LoadLabel


@dataclass(frozen=True)
class BurstRule:
    baseline_s: float = DAY_S
    k: float = 3.0
    min_rel: float = 0.5
    abs_floor: float = 1e-9
    sustained_s: float = 3600.0
    refresh_s: float = 3600.0


DEFAULT_RULE = BurstRule()


def thresholds(y_window: np.ndarray, rule: BurstRule | None = None) -> np.ndarray:
    """High-load thresholds `[V, 2]` from a trailing window `[n, V, 2]` of observations."""
    if y_window.shape[0] == 0:
        return np.full(y_window.shape[1:], np.inf)
    med, mad = median_mad(y_window)
    return _thresholds(med, mad, rule)


def _thresholds(med: np.ndarray, mad: np.ndarray, rule: BurstRule | None) -> np.ndarray:
    rule = rule or DEFAULT_RULE
    mad = mad * 1.4826
    return med + np.maximum(np.maximum(rule.k * mad, rule.min_rel * med), rule.abs_floor)


def median_mad(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`np.median(y, 0)` and `np.median(|y - median|, 0)` of a non-empty `y` `[n, ...]`: the same numbers
    (a zero median may differ in sign, as np.median's own does between memory layouts), faster.

    Every simulated step labels a forecast, so this runs for every volume at every step (see
    `sorted_median_mad`). Non-float64 input takes `np.median` itself.
    """
    n = y.shape[0]
    if y.dtype != np.float64:
        med, mad = _median_mad_ref(np.ascontiguousarray(y.reshape(n, -1).T))
    else:
        y2 = y.reshape(n, -1)
        with np.errstate(over="ignore"):
            lanes = y2.T.astype(np.float32, order="C")
        # every value a float32 (the histories' own type): sort half the bytes, in the same order
        med, mad = sorted_median_mad(lanes if np.array_equal(lanes.T, y2) else y2.T.copy())
    return med.reshape(y.shape[1:]), mad.reshape(y.shape[1:])


def sorted_median_mad(lanes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`median_mad` of the float64 values of each row of `lanes` `[L, n]` (float32 or float64,
    sorted in place).

    The median is the middle of the sorted row; the absolute deviations are two sorted runs
    (falling left of the middle, rising right of it), so their median is a selection between
    the two runs (a binary search per row), not a second sort. Rows with NaN or infinity take
    `np.median` itself.
    """
    s = lanes
    s.sort(axis=-1)
    n = s.shape[1]
    h = n // 2
    with np.errstate(invalid="ignore"):  # rows with infinities are redone below
        mid = s[:, h].astype(np.float64)  # float32 values are read as the float64 they are
        med = (s[:, h - 1].astype(np.float64) + mid) / 2 if n % 2 == 0 else mid
        mad = _deviation_median(s, med)
    bad = ~(np.isfinite(s[:, 0]) & np.isfinite(s[:, -1]))  # NaN sorts last, infinities to the ends
    if bad.any():
        med[bad], mad[bad] = _median_mad_ref(s[bad].astype(np.float64))
    return med, mad


def _median_mad_ref(lanes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    med = np.median(lanes, axis=-1)
    return med, np.median(np.abs(lanes - med[:, None]), axis=-1)


def _deviation_median(s: np.ndarray, med: np.ndarray) -> np.ndarray:
    """Median of `|s - med|` in float64 per row of the sorted `s` `[L, n]` (`med` its median).

    Left of column h = n // 2 the deviations fall (A, read right to left), from h on they rise
    (B). The h smallest deviations are A's first i and B's first h - i for the i where A's next
    is not below B's last taken; the median reads the largest taken and the smallest not taken.
    """
    n = s.shape[1]
    h = n // 2

    flat = s.ravel()
    first = np.arange(s.shape[0]) * n

    def dev(col: np.ndarray) -> np.ndarray:
        return np.abs(flat[first + np.minimum(np.maximum(col, 0), n - 1)].astype(np.float64) - med)

    lo = np.zeros(s.shape[0], np.intp)
    hi = np.full(s.shape[0], h, np.intp)
    while True:
        active = lo < hi
        if not active.any():
            break
        mid = (lo + hi) // 2
        more = dev(h - 1 - mid) < dev(2 * h - 1 - mid)  # A[mid] < B[h - mid - 1]: take more of A
        lo = np.where(active & more, mid + 1, lo)
        hi = np.where(active & ~more, mid, hi)
    i = lo
    inf = np.inf
    upper = np.minimum(np.where(i < h, dev(h - 1 - i), inf), np.where(2 * h - i < n, dev(2 * h - i), inf))
    if n % 2:
        return upper
    lower = np.maximum(np.where(i >= 1, dev(h - i), -inf), np.where(h - i >= 1, dev(2 * h - 1 - i), -inf))
    return (lower + upper) / 2


def high_mask(values: np.ndarray, thr: np.ndarray) -> np.ndarray:
    """`values` `[..., V, 2]` against `thr` `[V, 2]`: high when either target is above."""
    return (values[..., 0] > thr[:, 0]) | (values[..., 1] > thr[:, 1])


def runs_to_labels(high: np.ndarray, sustained_steps: int) -> np.ndarray:
    """Label runs of True along axis 0 of `high` `[N, V]`: burst if shorter than `sustained_steps`."""
    n, v = high.shape
    # one long 1-D sequence per volume, separated by a False so runs never join volumes
    flat = np.zeros((v, n + 1), bool)
    flat[:, :n] = high.T
    flat = flat.ravel()
    prev = np.empty_like(flat)
    prev[:1] = False
    prev[1:] = flat[:-1]
    run_id = np.cumsum(flat & ~prev, dtype=np.int32 if flat.size < 2**31 else np.int64)
    run_id *= flat
    length_at = np.bincount(run_id).astype(np.int32)[run_id]
    code = np.where(length_at >= sustained_steps, np.int8(LoadLabel.SUSTAINED), np.int8(LoadLabel.BURST))
    return np.where(flat, code, np.int8(LoadLabel.NORMAL)).reshape(v, n + 1)[:, :n].T.astype(np.int8)


def label_future(y_hist: np.ndarray, future: np.ndarray, step_s: float, rule: BurstRule | None = None) -> np.ndarray:
    """Labels `[V, H]` for a future `[V, H, 2]` (forecast or actual) after history `y_hist` `[T, V, 2]`."""
    rule = rule or DEFAULT_RULE
    if y_hist.shape[0] == 0:
        return np.zeros(future.shape[:2], np.int8)
    thr = thresholds(y_hist[-steps(rule.baseline_s, step_s) :], rule)
    return _label_runs(thr, y_hist[-steps(rule.sustained_s, step_s) :], future, step_s, rule)


def _label_runs(thr: np.ndarray, tail: np.ndarray, future: np.ndarray, step_s: float, rule: BurstRule) -> np.ndarray:
    """Labels of `future` against `thr`, continuing the high runs of the observed `tail` `[<= sus, V, 2]`."""
    sus = steps(rule.sustained_s, step_s)
    high = np.concatenate([high_mask(tail, thr), high_mask(np.transpose(future, (1, 0, 2)), thr)], axis=0)
    return runs_to_labels(high, sus)[tail.shape[0] :].T.copy()


def label_forecast(history: LoadHistory, mean: np.ndarray, rule: BurstRule | None = None) -> np.ndarray:
    """Labels `[V, H]` of a forecast `mean` `[V, H, 2]` issued at the end of `history`."""
    rule = rule or DEFAULT_RULE
    if not history.n_steps:
        return np.zeros(mean.shape[:2], np.int8)
    step_s = history.step_s
    w, sus = steps(rule.baseline_s, step_s), steps(rule.sustained_s, step_s)
    if not (history.iops.dtype == history.mbps.dtype == np.float32):
        return label_future(targets(history.tail(max(w, sus))), mean, step_s, rule)
    # float32 histories (the simulator's): the numbers of `label_future(targets(..))`, read
    # straight from the history (no float64 [T, V, 2] copy), one row per (target, volume)
    win = history.tail(w)
    v, n = win.iops.shape[1], win.n_steps
    lanes = np.empty((2 * v, n), np.float32)  # rows: iops of each volume, then MB/s
    lanes[:v], lanes[v:] = win.iops.T, win.mbps.T
    med, mad = sorted_median_mad(lanes)
    thr = _thresholds(med.reshape(2, -1).T, mad.reshape(2, -1).T, rule)
    last = history.tail(sus)
    return _label_runs(thr, np.stack([last.iops, last.mbps], -1), mean, step_s, rule)


def label_series(history: LoadHistory, rule: BurstRule | None = None) -> np.ndarray:
    """Causal labels `[T, V]` of an observed history (baseline refreshed every `refresh_s`)."""
    rule = rule or DEFAULT_RULE
    y = targets(history)
    t, v = y.shape[0], y.shape[1]
    w = steps(rule.baseline_s, history.step_s)
    every = steps(rule.refresh_s, history.step_s)
    high = np.zeros((t, v), bool)
    for start in range(0, t, every):
        thr = thresholds(y[max(0, start - w) : start], rule)
        high[start : start + every] = high_mask(y[start : start + every], thr)
    return runs_to_labels(high, steps(rule.sustained_s, history.step_s))


def precision_recall(pred: np.ndarray, true: np.ndarray, label: str = "burst") -> tuple[float, float, int, int]:
    """Step-level precision and recall of `label` ("burst", "sustained" or "high" = either).

    Returns (precision, recall, predicted positives, actual positives); NaN where undefined.
    """
    if label == "high":
        p, a = pred != LoadLabel.NORMAL, true != LoadLabel.NORMAL
    else:
        code = {"burst": LoadLabel.BURST, "sustained": LoadLabel.SUSTAINED}[label]
        p, a = pred == code, true == code
    tp = int(np.sum(p & a))
    n_p, n_a = int(np.sum(p)), int(np.sum(a))
    return (tp / n_p if n_p else float("nan"), tp / n_a if n_a else float("nan"), n_p, n_a)

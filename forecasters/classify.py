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
    rule = rule or DEFAULT_RULE
    if y_window.shape[0] == 0:
        return np.full(y_window.shape[1:], np.inf)
    med = np.median(y_window, axis=0)
    mad = np.median(np.abs(y_window - med), axis=0) * 1.4826
    return med + np.maximum(np.maximum(rule.k * mad, rule.min_rel * med), rule.abs_floor)


def high_mask(values: np.ndarray, thr: np.ndarray) -> np.ndarray:
    """`values` `[..., V, 2]` against `thr` `[V, 2]`: high when either target is above."""
    return np.any(values > thr, axis=-1)


def runs_to_labels(high: np.ndarray, sustained_steps: int) -> np.ndarray:
    """Label runs of True along axis 0 of `high` `[N, V]`: burst if shorter than `sustained_steps`."""
    n, v = high.shape
    # one long 1-D sequence per volume, separated by a False so runs never join volumes
    flat = np.concatenate([high.T, np.zeros((v, 1), bool)], axis=1).ravel()
    prev = np.concatenate([[False], flat[:-1]])
    run_id = np.cumsum(flat & ~prev) * flat
    lengths = np.bincount(run_id)
    length_at = lengths[run_id]
    lab = np.where(flat, np.where(length_at >= sustained_steps, LoadLabel.SUSTAINED, LoadLabel.BURST), LoadLabel.NORMAL)
    return lab.reshape(v, n + 1)[:, :n].T.astype(np.int8)


def label_future(y_hist: np.ndarray, future: np.ndarray, step_s: float, rule: BurstRule | None = None) -> np.ndarray:
    """Labels `[V, H]` for a future `[V, H, 2]` (forecast or actual) after history `y_hist` `[T, V, 2]`."""
    rule = rule or DEFAULT_RULE
    v, h = future.shape[0], future.shape[1]
    if y_hist.shape[0] == 0:
        return np.zeros((v, h), np.int8)
    thr = thresholds(y_hist[-steps(rule.baseline_s, step_s) :], rule)
    sus = steps(rule.sustained_s, step_s)
    tail = y_hist[-sus:]  # observed steps a run may have started in
    high = np.concatenate([high_mask(tail, thr), high_mask(np.transpose(future, (1, 0, 2)), thr)], axis=0)
    return runs_to_labels(high, sus)[tail.shape[0] :].T.copy()


def label_forecast(history: LoadHistory, mean: np.ndarray, rule: BurstRule | None = None) -> np.ndarray:
    """Labels `[V, H]` of a forecast `mean` `[V, H, 2]` issued at the end of `history`."""
    rule = rule or DEFAULT_RULE
    if not history.n_steps:
        return np.zeros(mean.shape[:2], np.int8)
    need = max(steps(rule.baseline_s, history.step_s), steps(rule.sustained_s, history.step_s))
    return label_future(targets(history.tail(need)), mean, history.step_s, rule)


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

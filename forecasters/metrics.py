"""Forecast error metrics over backtest arrays.

Arrays are `[n_origins, V, H, 2]` (last axis iops, mbps). "Step" metrics compare the
forecast and the actual value at one horizon step; "mean" metrics compare the forecast
mean over the first `w` steps with the actual mean over them (the load of the next hour
or next 6 h, which is what a scheduler plans with).
"""

from __future__ import annotations

import numpy as np


def at_step(a: np.ndarray, h: int) -> np.ndarray:
    """Values at horizon step `h` (1-based): `[n_origins, V, 2]`."""
    return a[:, :, h - 1]


def window_mean(a: np.ndarray, w: int) -> np.ndarray:
    """Mean over the first `w` steps: `[n_origins, V, 2]`."""
    return a[:, :, :w].mean(axis=2)


def mae(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    """Mean absolute error over origins (axis 0): `[V, 2]`."""
    return np.mean(np.abs(pred - true), axis=0)


def smape(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    """Symmetric MAPE in percent over origins (0 where both are 0): `[V, 2]`."""
    den = np.abs(pred) + np.abs(true)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.where(den > 0, 200.0 * np.abs(pred - true) / den, 0.0)
    return r.mean(axis=0)


def relative(err: np.ndarray, base_err: np.ndarray) -> np.ndarray:
    """err / base_err elementwise, NaN where the baseline's error is 0 (nothing to beat)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(base_err > 0, err / np.where(base_err > 0, base_err, 1.0), np.nan)


def coverage(upper: np.ndarray, true: np.ndarray) -> np.ndarray:
    """Share of actual values at or below the upper quantile, over origins and steps: `[V, 2]`."""
    return np.mean(true <= upper + 1e-12, axis=(0, 2))


def coverage_spread(per_volume: np.ndarray, nominal: float) -> dict[str, float]:
    """How per-volume coverage spreads around `nominal`: quantiles over volumes and the share within 5 points."""
    c = np.asarray(per_volume, np.float64)
    c = c[np.isfinite(c)]
    if not c.size:
        return {
            "coverage_nominal": float(nominal),
            "coverage_vol_min": float("nan"),
            "coverage_vol_p10": float("nan"),
            "coverage_vol_p90": float("nan"),
            "coverage_within_5pts": float("nan"),
        }
    return {
        "coverage_nominal": float(nominal),
        "coverage_vol_min": float(c.min()),
        "coverage_vol_p10": float(np.quantile(c, 0.1)),
        "coverage_vol_p90": float(np.quantile(c, 0.9)),
        "coverage_within_5pts": float(np.mean(np.abs(c - nominal) <= 0.05 + 1e-9)),
    }

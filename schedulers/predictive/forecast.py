"""The forecast one decision plans on, and where the clock stands in it.

Plans are made on the context's forecast, or, before a forecaster has one (early in a
run, or none configured), on a flat forecast of the recently observed load: the policy
still plans, on the assumption that load stays as it was.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from common.units import HOUR_S
from sim.types import DecisionContext, Forecast

#: the model name of a flat forecast of observed load
FLAT_MODEL = "observed-ewma (no forecast yet)"


def flat_forecast(t: float, step_s: float, horizon: int, mean: np.ndarray, upper: np.ndarray) -> Forecast:
    """A forecast holding `mean` / `upper` (`[volumes, (iops, mbps)]`) for `horizon` steps from `t`."""
    return Forecast(
        origin_t=t,
        step_s=step_s,
        mean=np.repeat(mean[:, None, :], horizon, axis=1),
        upper=np.repeat(upper[:, None, :], horizon, axis=1),
        labels=np.zeros((mean.shape[0], horizon), np.int8),
        model=FLAT_MODEL,
    )


def filled(fc: Forecast, mean: np.ndarray, upper: np.ndarray) -> Forecast:
    """`fc` with its gaps (NaN: a model with no answer for a volume or step) filled by the flat
    observed load `mean` / `upper` (`[volumes, (iops, mbps)]`); `fc` itself when it has none."""
    m, u = np.asarray(fc.mean, float), np.asarray(fc.upper, float)
    gap_m, gap_u = np.isnan(m), np.isnan(u)
    if not (gap_m.any() or gap_u.any()):
        return fc
    m = np.where(gap_m, mean[:, None, :], m)
    u = np.where(gap_u | gap_m, np.maximum(upper[:, None, :], m), u)
    return Forecast(fc.origin_t, fc.step_s, m, u, fc.labels, fc.quantile, fc.model)


def flat_steps(fallback_horizon_h: float, step_s: float) -> int:
    """Steps of a flat forecast over `fallback_horizon_h` hours (at least one)."""
    return max(1, round(fallback_horizon_h * HOUR_S / step_s))


def same_step(origin_t: float, t: float, step_s: float) -> bool:
    """Whether `origin_t` and `t` fall in the same history step (a flat forecast is kept that long)."""
    return math.floor(origin_t / step_s) == math.floor(t / step_s)


def plan_horizon(fc: Forecast, horizon_h: float | None) -> int:
    """Steps of `fc` the plans look at: all, or those within `horizon_h` hours."""
    h = fc.horizon
    if horizon_h is not None:
        h = min(h, max(1, round(horizon_h * HOUR_S / fc.step_s)))
    return h


def step_index(fc: Forecast, t: float, h: int) -> tuple[int, float]:
    """(the step of `fc` holding `t`, within the first `h`; seconds of it already elapsed)."""
    i0 = min(max(math.floor((t - fc.origin_t) / fc.step_s + 1e-9), 0), h - 1)
    elapsed = min(max(t - (fc.origin_t + i0 * fc.step_s), 0.0), float(fc.step_s))
    return i0, elapsed


@dataclass(frozen=True)
class Frame:
    """What every plan and every control step of one decision share."""

    ctx: DecisionContext
    fc: Forecast
    flat: bool  # `fc` is a flat forecast of observed load
    h: int  # planning horizon (steps of `fc`)
    i0: int  # the current step
    elapsed: float  # seconds of the current step already gone
    threshold: float  # the impact rates are planned for
    obs: np.ndarray | None  # [volumes, 2] last tick's load, where it may raise the current step's upper load (now-cast)
    max_iops: np.ndarray
    max_mbps: np.ndarray

    def upper_now(self, vols: np.ndarray) -> np.ndarray:
        """Upper load `[len(vols), 2]` of the current step: the forecast's, or the last
        observed tick where that is higher (now-cast, once a tick of this step was observed)."""
        up = np.asarray(self.fc.upper)[vols, self.i0]
        return np.maximum(up, self.obs[vols]) if self.obs is not None else up

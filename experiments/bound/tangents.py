"""Piecewise-linear minorants of the cheapest cost of moving `Y` MB inside one step.

Within a step (a run of ticks) let `G(Y) = min sum_k cost_k(y_k)` over `sum y_k = Y`,
`0 <= y_k <= cap_k dt`: the least impact of moving `Y` MB in the step, however spread.
For any `lam > 0`, `G(Y) >= L(lam) + lam Y` with `L(lam) = sum_k min_y [cost_k(y) - lam y]`
(weak duality), and the line touches `G` at `Y(lam) = sum_k y_k(lam)`. The maximum of such
lines and of 0 is a convex piecewise-linear minorant of `G`; `segments` writes it as
increasing slopes and widths, the form the LP takes (cheapest segments fill first).
"""

from __future__ import annotations

import numpy as np

from experiments.bound.costs import TickCosts


def step_starts(n_ticks: int, step_ticks: int) -> np.ndarray:
    return np.arange(0, n_ticks, max(1, step_ticks))


def step_lines(costs: TickCosts, starts: np.ndarray, lam: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Intercepts `L` and touch points `Y` (MB), `[steps, k]`, of the lines of slopes `lam[steps, k]`."""
    n_steps = starts.size
    sizes = np.diff(np.append(starts, costs.n))
    per_tick = np.repeat(np.arange(n_steps), sizes)
    L = np.empty_like(lam)
    Y = np.empty_like(lam)
    for j in range(lam.shape[1]):
        value, y = costs.lagrangian(lam[per_tick, j])
        L[:, j] = np.add.reduceat(value, starts)
        Y[:, j] = np.add.reduceat(y, starts)
    return L, Y


def step_caps(costs: TickCosts, starts: np.ndarray) -> np.ndarray:
    """Most MB each step can move (every tick at its cap)."""
    return np.add.reduceat(costs.cap * costs.dt, starts)


def segments(lam: np.ndarray, L: np.ndarray, cap: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(slopes, widths) `[steps, k + 1]` of `max(0, max_j L_j + lam_j Y)` on `[0, cap]`, rounded down.

    Lines sorted by slope; the switch from line `j` to `j + 1` is placed at or after the
    point where every later line beats every earlier one (running maximum of consecutive
    crossings, nudged up), so the written function never exceeds the true maximum.
    """
    order = np.lexsort((L, lam), axis=1)  # by slope, then intercept: a repeated line follows its twin
    lam = np.take_along_axis(lam, order, axis=1)
    L = np.take_along_axis(L, order, axis=1)
    slopes = np.concatenate([np.zeros((lam.shape[0], 1)), lam], axis=1)
    icpt = np.concatenate([np.zeros((lam.shape[0], 1)), np.minimum(L, 0.0)], axis=1)
    d_lam = np.diff(slopes, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        # equal slopes: the later line is at least as high everywhere (0) or never (inf)
        same = np.where(icpt[:, 1:] >= icpt[:, :-1], 0.0, np.inf)
        cross = np.where(d_lam > 0, (icpt[:, :-1] - icpt[:, 1:]) / d_lam, same)
    cross = np.maximum.accumulate(np.maximum(cross, 0.0), axis=1)
    cross = cross * (1.0 + 1e-12) + 1e-9
    cap = cap[:, None]
    bounds = np.minimum(np.concatenate([np.zeros_like(cap), cross, cap], axis=1), cap)
    widths = np.diff(bounds, axis=1)
    return slopes, np.maximum(widths, 0.0)


def step_slope_range(costs: TickCosts, starts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per step: (least marginal cost at zero rate, largest at full headroom), halved and doubled.

    Every line that can touch the step's cost curve away from 0 and the cap has a slope
    in between; a step with nothing to pay for gets (1, 1).
    """
    live = (costs.cap > 0) & (costs.io > 0)
    lo = np.where(live, costs.slope(np.zeros(costs.n)), np.inf)
    hi = np.where(live, costs.slope(costs.cap, "left"), 0.0)
    lo = np.minimum.reduceat(lo, starts)
    hi = np.maximum.reduceat(hi, starts)
    dead = ~np.isfinite(lo) | (hi <= 0)
    return np.where(dead, 1.0, 0.5 * lo), np.where(dead, 1.0, 2.0 * np.maximum(hi, lo))


def slope_grid(lo: np.ndarray, hi: np.ndarray, k: int) -> np.ndarray:
    """`[steps, k]` slopes spaced evenly on a log scale from `lo` to `hi` per step."""
    f = np.linspace(0.0, 1.0, k)[None, :]
    return np.exp(np.log(lo)[:, None] * (1.0 - f) + np.log(hi)[:, None] * f)


def touch_slope(
    costs: TickCosts, starts: np.ndarray, target: np.ndarray, lo: np.ndarray, hi: np.ndarray, iters: int = 32
) -> tuple[np.ndarray, np.ndarray]:
    """Per step, a slope whose allocation moves at least `target` MB, and that allocation's true cost.

    Bisection on a log scale between `lo` and `hi` (the allocation grows with the slope);
    returns the upper end, whose cost is that of a real way to move >= target in the step.
    """
    n_steps = starts.size
    sizes = np.diff(np.append(starts, costs.n))
    per_tick = np.repeat(np.arange(n_steps), sizes)
    a = np.log(np.broadcast_to(lo, n_steps)).copy()
    b = np.log(np.broadcast_to(hi, n_steps)).copy()
    for _ in range(iters):
        mid = 0.5 * (a + b)
        _, y = costs.lagrangian(np.exp(mid)[per_tick])
        enough = np.add.reduceat(y, starts) >= target
        b = np.where(enough, mid, b)
        a = np.where(enough, a, mid)
    lam = np.exp(b)
    r = costs.best_rate(lam[per_tick])
    return lam, np.add.reduceat(costs.cost(r), starts)


def pick_lines(lam: np.ndarray, L: np.ndarray, Y: np.ndarray, cap: np.ndarray, every: int, y_points: int) -> tuple[np.ndarray, np.ndarray]:
    """A subset of candidate lines per step: every `every`-th slope, and those touching nearest `y_points` MB marks.

    Slopes alone leave wide gaps where the cost is nearly linear in MB; marks spread
    over the step's capacity (log-spaced from 1e-4 of it) close them. `lam`, `L`, `Y`: `[steps, candidates]`,
    `Y` non-decreasing along the candidates.
    """
    marks = cap[:, None] * np.geomspace(1e-4, 1.0, y_points)[None, :]
    near = np.minimum((Y[:, None, :] < marks[:, :, None]).sum(axis=2), Y.shape[1] - 1)
    idx = np.concatenate([np.tile(np.arange(0, lam.shape[1], every), (lam.shape[0], 1)), near], axis=1)
    return np.take_along_axis(lam, idx, axis=1), np.take_along_axis(L, idx, axis=1)

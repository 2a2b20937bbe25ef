"""Solve the relaxed problem: tangent minorants, the LP, and cutting-plane refinement.

Start per step with lines from a log-spaced grid of slopes over the step's range and lines
touching at log-spaced amounts of its capacity; after each LP, add for every step the
line touching its cost curve at the MB the LP moved there (`touch_slope`), and stop when
the LP's bound is within `rel_tol` of the cost of moving those MB for real (the tangent
gap). Every LP value is a lower bound; refinement only tightens it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from experiments.bound import lp
from experiments.bound.demand import full_extra_mb, tube
from experiments.bound.instance import Instance, VolumeInput
from experiments.bound.tangents import (
    pick_lines,
    segments,
    slope_grid,
    step_caps,
    step_lines,
    step_slope_range,
    step_starts,
    touch_slope,
)


@dataclass
class Solved:
    """Numerators (sum of io x impact) of the relaxed problem: per volume and in total."""

    ok: bool
    message: str
    bound: float  # rigorous lower bound of the relaxed optimum
    upper: float  # cost of moving the LP's per-step MB for real (the tangent gap's top)
    per_volume: list[float]  # each volume's share of the bound (its own bound when not coupled)
    moved_mb: list[np.ndarray]  # per volume: MB the LP moves in each step
    rounds: int
    lp_s: float
    lines: int  # most lines per step at the end
    messages: list[str] = field(default_factory=list)


def step_problem(
    v: VolumeInput, step_ticks: int, fulls: int, grid: int = 64, every: int = 4, y_points: int = 8
) -> tuple[lp.StepProblem, np.ndarray, np.ndarray]:
    """One volume's step problem with its initial lines; also the slope range for refinement."""
    c = v.costs
    starts = step_starts(c.n, step_ticks)
    ends = np.append(starts[1:], c.n) - 1
    released, due = tube(v.release_mb, ends, v.rpo_ticks)
    lo, hi = step_slope_range(c, starts)
    cand = slope_grid(lo, hi, grid)
    L, Y = step_lines(c, starts, cand)
    lam, L = pick_lines(cand, L, Y, step_caps(c, starts), every, y_points)
    extra = fulls * full_extra_mb(v.release_mb, v.window, v.used_mb)
    p = lp.StepProblem(v.volume_id, starts, np.diff(np.append(starts, c.n)) * c.dt, step_caps(c, starts), released, due, extra, lam, L)
    return p, lo, hi


def _segments(p: lp.StepProblem):
    return segments(p.lam, p.intercept, p.cap_mb)


def refine(
    volumes: list[VolumeInput],
    problems: list[lp.StepProblem],
    ranges: list[tuple[np.ndarray, np.ndarray]],
    ingest_mbps: float | None,
    rel_tol: float,
    max_rounds: int,
    abs_tol: float = 0.0,
) -> Solved:
    """Solve, add touching lines, re-solve, until the tangent gap is within `rel_tol x upper + abs_tol`."""
    lp_s = 0.0
    sol = None
    upper = np.inf
    rounds = 0
    for rounds in range(1, max_rounds + 1):
        segs = [_segments(p) for p in problems]
        sol = lp.solve(problems, [s[0] for s in segs], [s[1] for s in segs], ingest_mbps)
        lp_s += sol.solve_s
        if not sol.ok:
            return Solved(
                False, sol.message, float("inf"), float("inf"), [float("inf")] * len(problems), [], rounds, lp_s, problems[0].lam.shape[1]
            )
        upper = sum(_add_touching_lines(v, p, lo, hi, moved) for v, p, (lo, hi), moved in zip(volumes, problems, ranges, sol.moved_mb))
        if upper - sol.bound <= rel_tol * upper + abs_tol:
            break
    share = _shares(problems, sol) if ingest_mbps is not None and len(problems) > 1 else None
    per_volume = share if share is not None else [sol.bound] if len(problems) == 1 else []
    return Solved(True, sol.message, sol.bound, upper, per_volume, sol.moved_mb, rounds, lp_s, max(p.lam.shape[1] for p in problems))


def _add_touching_lines(v: VolumeInput, p: lp.StepProblem, lo: np.ndarray, hi: np.ndarray, moved: np.ndarray) -> float:
    """Add to each step the line touching its cost curve at the MB moved there; return the cost of moving them.

    Only steps that move bytes are evaluated; the others get a copy of their first line
    (a repeated line changes nothing), which keeps the arrays rectangular.
    """
    active = moved > 0
    lam, icpt = p.lam[:, 0].copy(), p.intercept[:, 0].copy()
    upper = 0.0
    if active.any():
        sizes = np.diff(np.append(p.starts, v.costs.n))
        sub = v.costs.take(np.flatnonzero(np.repeat(active, sizes)))
        sub_starts = np.concatenate([[0], np.cumsum(sizes[active])[:-1]])
        touch, cost = touch_slope(sub, sub_starts, moved[active], lo[active], hi[active])
        L, _ = step_lines(sub, sub_starts, touch[:, None])
        lam[active], icpt[active] = touch, L[:, 0]
        upper = float(cost.sum())
    p.lam = np.concatenate([p.lam, lam[:, None]], axis=1)
    p.intercept = np.concatenate([p.intercept, icpt[:, None]], axis=1)
    return upper


def _shares(problems: list[lp.StepProblem], sol: lp.LPSolution) -> list[float]:
    """Each volume's part of a coupled bound: its minorant at the MB it moved, rescaled to sum to the bound."""
    parts = []
    for p, moved in zip(problems, sol.moved_mb):
        lines = np.maximum(0.0, (p.intercept + p.lam * moved[:, None]).max(axis=1))
        parts.append(float(lines.sum()))
    total = sum(parts)
    return [x * sol.bound / total if total > 0 else 0.0 for x in parts]


def _per_volume(volumes: list[VolumeInput], problems: list[lp.StepProblem], ranges, rel_tol: float, max_rounds: int) -> list[Solved]:
    """Refine each volume until the fleet's tangent gap is within `rel_tol`, sparing volumes that weigh little.

    After one round each, a volume stops once its gap is within `rel_tol / 2 x (its upper +
    B / n)`, B the fleet's first-round bound (at most its final upper): the gaps then sum to
    at most `rel_tol` x the fleet's upper, as if every volume were held to `rel_tol`.
    """
    first = [refine([v], [p], [r], None, 0.0, 1) for v, p, r in zip(volumes, problems, ranges)]
    if max_rounds <= 1 or not all(s.ok for s in first):
        return first
    share = sum(s.bound for s in first) / len(volumes)
    out = []
    for v, p, r, s in zip(volumes, problems, ranges, first):
        if s.upper - s.bound <= rel_tol / 2 * (s.upper + share):
            out.append(s)
            continue
        more = refine([v], [p], [r], None, rel_tol / 2, max_rounds - 1, rel_tol / 2 * share)
        more.rounds += 1
        more.lp_s += s.lp_s
        out.append(more)
    return out


def solve_instance(
    inst: Instance, step_ticks: int = 30, coupled: bool = False, fulls: int = 0, rel_tol: float = 1e-3, max_rounds: int = 12, grid: int = 64
) -> tuple[Solved, Solved, bool | None]:
    """(the bound asked for, the per-volume bound, whether the tiers' ingest binds (None: not asked)).

    Per volume first (the sum of per-volume optima); with `coupled`, if those volumes
    together exceed the tiers' total ingest in some step, the coupled LP is solved,
    starting from the lines the per-volume passes refined.
    """
    built = [step_problem(v, step_ticks, fulls, grid) for v in inst.volumes]
    problems = [b[0] for b in built]
    ranges = [(b[1], b[2]) for b in built]
    parts = _per_volume(inst.volumes, problems, ranges, rel_tol, max_rounds)
    bad = [(v.volume_id, s.message) for v, s in zip(inst.volumes, parts) if not s.ok]
    out = Solved(
        not bad,
        "; ".join(f"{vid}: {m}" for vid, m in bad) or parts[0].message,
        sum(s.bound for s in parts),
        sum(s.upper for s in parts),
        [s.bound for s in parts],
        [m for s in parts for m in s.moved_mb],
        max(s.rounds for s in parts),
        sum(s.lp_s for s in parts),
        max(s.lines for s in parts),
    )
    if not coupled or bad or len(inst.volumes) < 2:
        return out, out, None
    together = np.sum(out.moved_mb, axis=0)
    if (together <= inst.ingest_mbps * problems[0].seconds * (1 + 1e-9)).all():
        out.messages.append("the tiers' ingest never binds: the coupled bound is the per-volume one")
        return out, out, False
    joint = refine(inst.volumes, problems, ranges, inst.ingest_mbps, rel_tol, max_rounds)
    joint.lp_s += out.lp_s
    return joint, out, True

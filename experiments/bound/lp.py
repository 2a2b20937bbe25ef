"""The relaxed problem as one linear program, solved by HiGHS, with a rigorous dual bound.

Per volume and step `s`: segment variables `seg[s, j]` in `[0, width]` priced at the
increasing slopes of the step's cost minorant (their sum is the MB moved in the step),
the cumulative MB served `Z[s]` in `[due[s], released[s]]`, and, when fulls are asked
for, `F[s] >= 0` MB of full-backup bytes moved in the step and `W[s]` still to move
after it (a chain, so no row spans the whole run). Rows:

    Z[s] - Z[s-1] - sum_j seg[s, j] + F[s] = 0        (flow; Z[-1] = 0)
    F[s] + W[s] - W[s-1] = 0                            (fulls: W[-1] = extra, W[last] = 0)
    sum_volumes sum_j seg[s, j] <= ingest * seconds(s)  (coupled version only)

Every variable is boxed, so any multipliers `y` (equalities) and `mu >= 0` (inequalities)
give the valid lower bound `sum_j min(d_j lo_j, d_j hi_j) + y b_eq - mu b_ub` with
`d = c - A_eq' y + A_ub' mu`; with HiGHS's duals this matches the optimum, and it does not
rely on the solver's tolerances.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.optimize import linprog

from common.units import GB, MB

#: the LP works in GB (values of a few thousand at most: well scaled for HiGHS)
_UNIT = GB / MB


@dataclass
class StepProblem:
    """One volume's relaxed problem over steps; amounts in MB, costs in IO-weighted impact."""

    volume_id: str
    starts: np.ndarray  # first tick of each step
    seconds: np.ndarray  # length of each step
    cap_mb: np.ndarray  # most MB each step can move
    released_mb: np.ndarray  # cumulative MB that may have been served by each step's end
    due_mb: np.ndarray  # cumulative MB that must have been served by then
    extra_mb: float  # full-backup MB to move somewhere in the run (0: none asked)
    lam: np.ndarray  # [steps, k] slopes of the cost minorant's lines (per MB)
    intercept: np.ndarray  # [steps, k] their intercepts

    @property
    def n_steps(self) -> int:
        return int(self.starts.size)


@dataclass
class Columns:
    """Where one volume's variables sit in the LP's column vector."""

    seg: slice  # [steps * (k + 1)], step-major
    z: slice
    f: slice | None
    k1: int  # segments per step
    end: int  # one past the volume's last column


@dataclass
class LPSolution:
    ok: bool
    message: str
    value: float  # HiGHS's optimum (IO-weighted impact units)
    bound: float  # the rigorous dual bound (<= the LP's true optimum)
    moved_mb: list[np.ndarray]  # per volume: MB moved per step
    solve_s: float


def _volume_block(p: StepProblem, slopes: np.ndarray, widths: np.ndarray, col0: int, row0: int):
    """Cost, bounds and flow-row entries of one volume, starting at column `col0`, row `row0`."""
    s, k1 = slopes.shape
    n_seg = s * k1
    seg = slice(col0, col0 + n_seg)
    z = slice(seg.stop, seg.stop + s)
    has_f = p.extra_mb > 0
    f = slice(z.stop, z.stop + s) if has_f else None
    w = slice(z.stop + s, z.stop + 2 * s) if has_f else None  # full-backup MB still to move after each step
    e = p.extra_mb / _UNIT
    cost = [slopes.ravel() * _UNIT, np.zeros(s)] + ([np.zeros(2 * s)] if has_f else [])
    lo = [np.zeros(n_seg), p.due_mb / _UNIT] + ([np.zeros(2 * s)] if has_f else [])
    hi = [widths.ravel() / _UNIT, p.released_mb / _UNIT] + ([np.full(s, e), np.r_[np.full(s - 1, e), 0.0]] if has_f else [])
    steps = np.arange(s)
    rows = [np.repeat(steps, k1) + row0, steps + row0, steps[1:] + row0]
    cols = [np.arange(seg.start, seg.stop), np.arange(z.start, z.stop), np.arange(z.start, z.stop - 1)]
    vals = [np.full(n_seg, -1.0), np.ones(s), np.full(s - 1, -1.0)]
    if has_f:  # flow: + F[s]; chain: F[s] + W[s] - W[s-1] = 0 (W[-1] = extra), a sparse way to say sum F = extra
        chain = steps + row0 + s
        rows += [steps + row0, chain, chain, chain[1:]]
        cols += [np.arange(f.start, f.stop), np.arange(f.start, f.stop), np.arange(w.start, w.stop), np.arange(w.start, w.stop - 1)]
        vals += [np.ones(s), np.ones(s), np.ones(s), np.full(s - 1, -1.0)]
    rhs = np.zeros(2 * s if has_f else s)
    if has_f:
        rhs[s] = e
    return Columns(seg, z, f, k1, (w or z).stop), cost, lo, hi, (rows, cols, vals), rhs


def solve(
    problems: list[StepProblem],
    slopes: list[np.ndarray],
    widths: list[np.ndarray],
    ingest_mbps: float | None = None,
    method: str = "highs-ds",
) -> LPSolution:
    """Assemble and solve; `ingest_mbps` couples the volumes through the tiers' total ingest per step.

    HiGHS's dual simplex without presolve: about half the time of the default on these
    path-shaped LPs (measured on a week of 5-minute steps).
    """
    t0 = time.perf_counter()
    cost, lo, hi, rows, cols, vals, b_eq, layout = [], [], [], [], [], [], [], []
    col = row = 0
    for p, sl, wd in zip(problems, slopes, widths):
        c, block_cost, block_lo, block_hi, (r, cc, v), rhs = _volume_block(p, sl, wd, col, row)
        layout.append(c)
        cost += block_cost
        lo += block_lo
        hi += block_hi
        rows += r
        cols += cc
        vals += v
        b_eq.append(rhs)
        col = c.end
        row += rhs.size
    c_vec = np.concatenate(cost)
    ref = float(np.median(c_vec[c_vec > 0])) if (c_vec > 0).any() else 1.0
    c_vec = c_vec / ref
    a_eq = sp.csr_array((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(row, col))
    b_eq_vec = np.concatenate(b_eq)
    a_ub = b_ub = None
    if ingest_mbps is not None and len(problems) > 1:
        a_ub, b_ub = _ingest_rows(problems, layout, col, ingest_mbps)
    lo_vec, hi_vec = np.concatenate(lo), np.concatenate(hi)
    if (lo_vec > hi_vec * (1 + 1e-12) + 1e-12).any():  # deadlines before releases: no schedule meets the RPO
        return LPSolution(
            False,
            "a due amount exceeds what can have been released (RPO shorter than a job's turnaround)",
            float("inf"),
            float("inf"),
            [],
            time.perf_counter() - t0,
        )
    hi_vec = np.maximum(hi_vec, lo_vec)
    res = linprog(
        c_vec,
        A_ub=a_ub,
        b_ub=b_ub,
        A_eq=a_eq,
        b_eq=b_eq_vec,
        bounds=np.stack([lo_vec, hi_vec], axis=1),
        method=method,
        options={"presolve": False},
    )
    if res.status != 0:
        return LPSolution(False, str(res.message), float("inf"), float("inf"), [], time.perf_counter() - t0)
    y = res.eqlin.marginals
    mu = np.maximum(-res.ineqlin.marginals, 0.0) if a_ub is not None else np.zeros(0)
    d = c_vec - a_eq.T @ y + (a_ub.T @ mu if a_ub is not None else 0.0)
    safe = float(np.minimum(d * lo_vec, d * hi_vec).sum() + y @ b_eq_vec - (mu @ b_ub if a_ub is not None else 0.0))
    moved = [res.x[c.seg].reshape(-1, c.k1).sum(axis=1) * _UNIT for c in layout]
    return LPSolution(True, str(res.message), float(res.fun) * ref, min(safe, float(res.fun)) * ref, moved, time.perf_counter() - t0)


def _ingest_rows(problems: list[StepProblem], layout: list[Columns], n_cols: int, ingest_mbps: float):
    """Per step: the MB all volumes move together stay within the tiers' total ingest."""
    s = problems[0].n_steps
    if any(p.n_steps != s for p in problems):
        raise ValueError("coupled volumes must share their steps")
    rows, cols = [], []
    for c in layout:
        n = c.seg.stop - c.seg.start
        rows.append(np.repeat(np.arange(s), c.k1))
        cols.append(np.arange(c.seg.start, c.seg.start + n))
    a_ub = sp.csr_array((np.ones(sum(r.size for r in rows)), (np.concatenate(rows), np.concatenate(cols))), shape=(s, n_cols))
    return a_ub, ingest_mbps * problems[0].seconds / _UNIT

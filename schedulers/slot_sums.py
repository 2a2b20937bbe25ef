"""Slot-seconds a pool gives by each deadline: `sum_k max(tau - free_k, 0)`, summed as NumPy sums it.

The EDF test needs, for every deadline `tau` (thousands on a large fleet), the slot time the
pool's `k` slots give from now: `np.maximum(tau[:, None] - free[None, :], 0).sum(axis=1)`. On a
pool of a thousand slots that is a `[deadlines, slots]` matrix per test. Most of its columns are
alike: a slot free now (`free_k == 0`) gives `max(tau, 0)`, and a slot that frees after the
latest deadline gives 0. NumPy sums each row pairwise (blocks of at most 128 values on eight
accumulators, halves above that), so the same sums, to the last bit, follow from doing those
additions on whole columns: a block of free slots costs a few vector additions, a block of late
slots none, and only the blocks that mix kinds are built and summed by NumPy itself.
"""

from __future__ import annotations

import numpy as np

_BLOCK = 128  # NumPy's pairwise-sum block (PW_BLOCKSIZE)
_UNROLL = 8  # ... and its accumulators


def slot_avail(free_s: np.ndarray, tau: np.ndarray) -> np.ndarray:
    """`np.maximum(tau[:, None] - free_s[None, :], 0.0).sum(axis=1)` for `free_s` sorted ascending, bit for bit."""
    free_s = np.asarray(free_s, float)
    tau = np.asarray(tau, float)
    if tau.size == 0 or free_s.size == 0 or not (np.all(np.isfinite(tau)) and np.all(np.isfinite(free_s))) or np.any(np.signbit(tau)):
        return _dense(free_s, tau, 0, free_s.size)
    if np.any(np.diff(free_s) < 0) or free_s[0] < 0:
        return _dense(free_s, tau, 0, free_s.size)
    zeros = int(np.searchsorted(free_s, 0.0, side="right"))  # slots free now: max(tau - 0, 0) = tau
    late = int(np.searchsorted(free_s, tau.max(), side="left"))  # from here every term is +0.0
    return 0.0 + _pairwise(free_s, tau, 0, free_s.size, zeros, late, {})


def _dense(free_s: np.ndarray, tau: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """NumPy's own row sums of columns `[lo, hi)`."""
    return np.maximum(tau[:, None] - free_s[None, lo:hi], 0.0).sum(axis=1)


def _block(free_s: np.ndarray, tau: np.ndarray, lo: int, n: int, zeros: int) -> np.ndarray:
    """NumPy's `pairwise_sum` of a block of `n` columns (8 <= n <= 128) that mixes kinds, its eight
    accumulators kept lane-major (`[8, deadlines]`, long contiguous rows): the groups of eight slots
    all free now give every accumulator the same sum of `tau`s, formed once; the others add their
    terms `max(tau - free, 0)` group by group, as NumPy's loop adds them. Every term is finite and
    none is -0.0 (`tau` >= +0.0, `free_s` >= 0), so the maximum has no NaN or zero sign to choose."""
    full = n - n % _UNROLL
    g0 = min(max(zeros - lo, 0), full) // _UNROLL  # leading groups of slots free now
    f = free_s[lo : lo + n]
    lanes = np.empty((_UNROLL, tau.size))
    if g0:
        acc = tau
        for _ in range(g0 - 1):
            acc = acc + tau
        lanes[:] = acc
    x = np.empty((_UNROLL, tau.size))
    zero = np.zeros((_UNROLL, 1))
    for g in range(g0, full // _UNROLL):
        np.subtract(tau, f[g * _UNROLL : (g + 1) * _UNROLL, None], out=x)
        np.maximum(x, zero, out=x)
        if g:
            lanes += x
        else:
            lanes[:] = x
    res = ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]))
    for c in range(full, n):
        res = res + np.maximum(tau - f[c], 0.0)
    return res


def _pairwise(free_s: np.ndarray, tau: np.ndarray, lo: int, n: int, zeros: int, late: int, free_now: dict) -> np.ndarray:
    """NumPy's `pairwise_sum` of columns `[lo, lo + n)` of every row (without its initial 0.0).

    A run of `n` slots all free now sums to the same, wherever it lies: `free_now` keeps those
    sums by `n` (the halving meets the same few lengths again and again)."""
    if lo >= late:  # every term +0.0, and so every partial sum
        return np.zeros(tau.size)
    if lo + n <= zeros and n in free_now:
        return free_now[n]
    if n > _BLOCK:
        n2 = n // 2
        n2 -= n2 % _UNROLL
        res = _pairwise(free_s, tau, lo, n2, zeros, late, free_now) + _pairwise(free_s, tau, lo + n2, n - n2, zeros, late, free_now)
    elif n >= _UNROLL and lo + n <= zeros:  # every term is tau (tau - 0.0, at least 0): the accumulators alike
        r = tau.copy()
        for _ in range(_UNROLL, n - n % _UNROLL, _UNROLL):
            r = r + tau
        res = ((r + r) + (r + r)) + ((r + r) + (r + r))
        for _ in range(n % _UNROLL):
            res = res + tau
    elif n >= _UNROLL:  # a mixed block (NumPy's initial 0.0 changes no sum of non-negative terms but -0.0, absent here)
        return _block(free_s, tau, lo, n, zeros)
    else:  # a short one: NumPy sums it
        return _dense(free_s, tau, lo, lo + n)
    if lo + n <= zeros:
        free_now[n] = res
    return res

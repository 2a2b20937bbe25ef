"""The exact optimum of tiny instances by enumeration, with the simulator's job rules.

Every schedule of every volume is tried, tick by tick: at the start of a tick a volume
with no job may snapshot (start an incremental, sized by its working-set curve over the
writes since its previous snapshot); a job moves bytes from the tick after its snapshot,
at a rate chosen from `levels + 1` even fractions of the tick's cap (`min(rate, cap)` as
the simulator throttles, the last tick moving only what is left), and completes in the
tick its bytes run out; at each tick's end the newest completed snapshot must be at
most the RPO old. With `ingest_mbps` the volumes' rates together stay within it (one
shared tier). Memoised on (tick, state), so "a handful of ticks, 1-2 volumes" is fast.
"""

from __future__ import annotations

from functools import cache

import numpy as np

from experiments.bound.instance import Instance, VolumeInput

# one volume's state: (newest completed snapshot tick, running job's snapshot tick or -1, MB left)
State = tuple[int, int, float]


def _interval_mb(v: VolumeInput, a: int, b: int) -> float:
    """Bytes (MB) of an incremental snapshotting at tick b after one at tick a."""
    if v.changed is None:
        raise ValueError(f"volume {v.volume_id}: enumeration needs a working-set curve (exact extents are not supported)")
    return float(v.changed.mb(float(v.writes[a:b].sum())))


def _moves(v: VolumeInput, k: int, state: State, levels: int) -> list[tuple[State, float, float]]:
    """(next state, cost, rate) for each choice of volume `v` in tick `k` (before the RPO check)."""
    done, snap, left = state
    options: list[tuple[State, float, float]] = []
    if snap < 0:  # idle: stay idle, or snapshot now (moving starts next tick)
        options.append(((done, -1, 0.0), 0.0, 0.0))
        options.append(((done, k, _interval_mb(v, done, k)), 0.0, 0.0))
        return options
    if snap == k:  # snapshotted this tick: nothing moves yet
        return [(state, 0.0, 0.0)]
    cap = float(v.costs.cap[k])
    one = v.costs.take(np.array([k]))
    for level in range(levels + 1):
        rate = cap * level / levels
        can = rate * v.costs.dt
        moved = min(left, can)
        cost = float(one.cost(np.array([moved / v.costs.dt]))[0])
        if left <= can:
            options.append(((snap, -1, 0.0), cost, rate))
        else:
            options.append(((done, snap, round(left - moved, 9)), cost, rate))
    return options


def brute_force(inst: Instance, levels: int = 4, ingest_mbps: float | None = None) -> float:
    """Least total added IO-weighted impact (the mean's numerator) over every schedule meeting every RPO.

    Returns inf when no schedule on the grid meets the RPOs.
    """
    vols = inst.volumes
    n = vols[0].costs.n
    if ingest_mbps is None:  # independent volumes: the sum of their optima
        return float(sum(_solve([v], n, levels, np.inf) for v in vols))
    return _solve(vols, n, levels, ingest_mbps)


def _solve(vols: list[VolumeInput], n: int, levels: int, ingest: float) -> float:
    @cache
    def best(k: int, states: tuple[State, ...]) -> float:
        if k == n:
            return 0.0
        out = np.inf
        for combo in _combos([_moves(v, k, s, levels) for v, s in zip(vols, states)], ingest):
            nxt = tuple(c[0] for c in combo)
            if any(k + 1 - s[0] > v.rpo_ticks for v, s in zip(vols, nxt)):
                continue
            out = min(out, sum(c[1] for c in combo) + best(k + 1, nxt))
        return out

    return float(best(0, tuple((0, -1, 0.0) for _ in vols)))


def _combos(choices: list[list[tuple[State, float, float]]], ingest: float):
    """Every joint choice whose rates fit the ingest limit."""
    if not choices:
        yield ()
        return
    for first in choices[0]:
        if first[2] > ingest * (1 + 1e-12):
            continue
        for rest in _combos(choices[1:], ingest - first[2]):
            yield (first, *rest)

"""The fleet-scale kernels give the same bits as the plain formulations they replace.

The lookahead's node-major relaxation (`_relax_fused`, used from 256 volumes) against the
volume-major one (hop costs in batches, then one `argmin` per node), and the EDF test's slot
sums against NumPy's own row sums, on inputs shaped like a fleet's: several RPOs (some short
enough that far hops are never allowed), blocked steps, unreachable nodes, volumes that do not
grow, start times on the forecast grid and off it.
"""

from __future__ import annotations

import numpy as np
import pytest

from schedulers.predictive import lookahead as la
from schedulers.predictive.params import PredictiveParams
from schedulers.slot_sums import slot_avail


def _fleet(seed: int, pcount: int, m: int, grid: bool, rpos=(1800.0, 5400.0, 13680.0, 20520.0, 41040.0)) -> tuple:
    """Inputs of `_shortest_paths` for `pcount` volumes and `m` candidate starts."""
    rng = np.random.default_rng(seed)
    step = 300.0
    origin = 1.7e9 + 0.25 if grid else 1.7e9 + 0.1
    s_t = origin + np.arange(m) * (step if grid else step + 1e-3 * rng.random(m))
    s_t[0] = origin - 123.4  # now, inside the current step
    io = rng.gamma(2.0, 5e6, (pcount, m)) * rng.choice([0.0, 1.0, 40.0], (pcount, 1), p=[0.05, 0.8, 0.15])
    wj = np.concatenate([np.zeros((pcount, 1)), np.cumsum(io, axis=1)[:, :-1]], axis=1)
    r_start = rng.uniform(5.0, 300.0, (pcount, m)) * (rng.random((pcount, m)) > 0.05)
    cpb = np.where(rng.random((pcount, m)) < 0.1, np.inf, rng.gamma(2.0, 3.0, (pcount, m)))
    first_cost = np.where(rng.random((pcount, m)) < 0.3, np.inf, rng.gamma(2.0, 50.0, (pcount, m)))
    rpo_left = rng.choice(rpos, pcount)
    growth = rng.uniform(0.0, 3e3, pcount) * (rng.random(pcount) > 0.1)
    alpha = rng.uniform(0.6, 1.1, pcount)
    return first_cost, wj, s_t, r_start, cpb, rpo_left, growth, alpha


def _bits(a: np.ndarray) -> bytes:
    return np.ascontiguousarray(a).tobytes()


@pytest.mark.parametrize("rpos", [(1800.0, 5400.0, 13680.0, 20520.0, 41040.0), (1800.0, 5400.0)])
@pytest.mark.parametrize("grid", [True, False])
@pytest.mark.parametrize("overhead", [0.0, 0.5])
@pytest.mark.parametrize("seed", [1, 2])
def test_node_major_relaxation_gives_the_same_bits(monkeypatch, seed, overhead, grid, rpos):
    """(With RPOs all shorter than the horizon, the hops no volume can take are left out.)"""
    p = PredictiveParams(job_overhead_gb=overhead)
    args = _fleet(seed, 300, 40, grid, rpos)
    fused = la._shortest_paths(p, *args)
    monkeypatch.setattr(la, "_FUSED", 10**9)  # the volume-major relaxation
    plain = la._shortest_paths(p, *args)
    assert np.isfinite(plain[0]).any() and (plain[1] >= 0).any()  # paths with several hops were found
    for got, want in zip(fused, plain):
        assert got.shape == want.shape and got.dtype == want.dtype
        assert _bits(got) == _bits(want)


def test_node_major_relaxation_is_used_and_reuses_its_buffers(monkeypatch):
    """Fleets of different sizes one after another (the work buffers grow and are reused)."""
    p = PredictiveParams()
    calls = []
    real = la._relax_fused
    monkeypatch.setattr(la, "_relax_fused", lambda *a: calls.append(a[0].shape) or real(*a))
    out = [la._shortest_paths(p, *_fleet(s, n, m, True)) for s, n, m in ((3, 260, 20), (4, 400, 30), (5, 256, 12))]
    assert calls == [(260, 20), (400, 30), (256, 12)]
    monkeypatch.setattr(la, "_FUSED", 10**9)
    for (s, n, m), got in zip(((3, 260, 20), (4, 400, 30), (5, 256, 12)), out):
        want = la._shortest_paths(p, *_fleet(s, n, m, True))
        assert all(_bits(g) == _bits(w) for g, w in zip(got, want))


@pytest.mark.parametrize("busy", [0, 3, 40, 300, 1000])
def test_slot_sums_match_numpy_row_sums(busy):
    rng = np.random.default_rng(busy)
    k = 1000
    free = np.sort(np.concatenate([np.zeros(k - busy), rng.uniform(0.0, 9000.0, busy) * (rng.random(busy) > 0.1)]))
    tau = np.sort(np.concatenate([rng.uniform(0.0, 30000.0, 900), [0.0, 1.0, 5.0]]))
    want = np.maximum(tau[:, None] - free[None, :], 0.0).sum(axis=1)
    assert _bits(slot_avail(free, tau)) == _bits(want)


def test_slot_sums_of_odd_pools_match_numpy_row_sums():
    rng = np.random.default_rng(7)
    for k in (1, 7, 8, 9, 129, 255, 257, 333):
        for zeros in sorted({0, 1, k // 3, k - 1, k}):
            free = np.sort(np.concatenate([np.zeros(zeros), rng.uniform(1.0, 500.0, k - zeros)]))
            tau = np.sort(rng.uniform(0.0, 800.0, 50))
            want = np.maximum(tau[:, None] - free[None, :], 0.0).sum(axis=1)
            assert _bits(slot_avail(free, tau)) == _bits(want), (k, zeros)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_few_volume_relaxation_gives_the_same_bits(monkeypatch, seed):
    """The fixed-point relaxation of a few volumes against the node-by-node one."""
    p = PredictiveParams(job_overhead_gb=0.5 * (seed - 1))
    args = _fleet(seed, 6, 40, seed != 2)
    few = la._shortest_paths(p, *args)
    monkeypatch.setattr(la, "_FEW", 0)
    plain = la._shortest_paths(p, *args)
    assert (plain[1] >= 0).any()
    assert all(_bits(g) == _bits(w) for g, w in zip(few, plain))

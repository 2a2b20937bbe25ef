"""LSTM prediction inputs and burst labels: the fast paths give the reference paths' numbers, bit for bit.

The simulator's fleet metrics depend on every forecast and label, so a faster path must not
change a single bit: each test here compares one against the plain computation it replaces.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from forecasters.classify import BurstRule, label_forecast, label_future, median_mad, thresholds
from forecasters.lstm.features import EPS, Sizes, arrays, day_candidates, median_of, median_small
from forecasters.lstm.origin import day_sum, day_sum_is_torch_order, origin_candidates
from forecasters.series import steps, targets
from sim.types import LoadHistory

STEP = 300.0


def history(iops: np.ndarray, mbps: np.ndarray) -> LoadHistory:
    z = np.zeros_like(iops)
    return LoadHistory(STEP, 1704067200.0, np.arange(iops.shape[0]) * STEP, iops, mbps, z + 20, z + 50, z + 1, ["vm"] * iops.shape[1])


def load(rng: np.random.Generator, t: int, v: int) -> np.ndarray:
    """Daily cycles with bursts, exact zeros, negative zeros and one huge value."""
    tod = np.arange(t)[:, None] * STEP / 86400.0
    y = 10.0 * (1.2 + np.sin(2 * np.pi * (tod + rng.uniform(0, 1, v)))) * rng.lognormal(0, 0.5, (t, v))
    y[rng.random((t, v)) < 0.03] *= 30.0
    y[rng.random((t, v)) < 0.05] = 0.0
    y[rng.random((t, v)) < 0.05] = -0.0
    y[t // 2, 0] = 3e38
    return y.astype(np.float32)


def same(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.shape == b.shape and torch.equal(a, b) and torch.equal(a.signbit(), b.signbit())


@pytest.mark.parametrize("v, days, n", [(1, 3, 5), (3, 7, 72), (17, 7, 2), (5, 3, 1), (4, 5, 13)])
def test_origin_candidates_equal_the_day_candidates_path(v, days, n):
    """The in-place candidates of the prediction equal `day_candidates` + log scaling."""
    rng = np.random.default_rng(v * 100 + days)
    sz = Sizes.of(3600.0, 6 * 3600.0, STEP)
    t = days * sz.D + sz.P + 40
    a = arrays(history(load(rng, t, v), load(rng, t, v)), cov_from=t - sz.W)
    scale = a.y[max(0, t - sz.WK) :].mean(0) + EPS
    recent = a.y[-6 * sz.P :]
    last = torch.stack([recent[-sz.P :].mean(0), recent[-sz.P :].median(0).values, recent.median(0).values], 1)
    got = origin_candidates(a, sz, days, scale, n, last)
    h = torch.arange(1, n + 1)
    j = t + h - 1
    dayc = day_candidates(a, j - sz.D * torch.ceil(h / sz.D).long(), sz, days, runs=True)
    week = dayc[:, :, 0] if t < sz.WK else a.y[(j - sz.WK * torch.ceil(h / sz.WK).long()).clamp(min=0)]
    sc = scale[None, :, None, :]

    def log_scaled(x: torch.Tensor) -> torch.Tensor:
        return torch.log1p(x.clamp(min=0.0) / sc)

    want = torch.cat([log_scaled(last[None]).expand(n, -1, -1, -1), log_scaled(dayc[:, :, :1]), log_scaled(week[:, :, None])], 2)
    want = torch.cat([want, log_scaled(dayc[:, :, 1:])], 2)
    assert got is not None and same(got, want)
    assert origin_candidates(a, sz, days + 1, scale, n, last) is None  # the oldest day's hour is before the history


@pytest.mark.parametrize("threads", [1, 2])
def test_day_sum_is_the_reduction_order(threads):
    """`day_sum` / days is the k-day mean of `day_candidates` at prediction (2+ steps), for any width."""
    if not day_sum_is_torch_order():
        pytest.skip("this machine's torch sums the day axis in another order: predictions take torch's own reduction")
    prev = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        g = torch.Generator().manual_seed(threads)
        for v, days, n in [(1, 7, 2), (2, 5, 3), (9, 7, 72), (33, 4, 17), (1000, 7, 72), (6, 9, 5), (3, 1, 4), (8, 12, 6)]:
            yd = torch.rand(days, n, v, 2, generator=g) * torch.rand(days, 1, v, 2, generator=g) * 100
            yd[torch.rand(yd.shape, generator=g) < 0.1] = -0.0
            want = yd.transpose(0, 1).contiguous().movedim(2, 0).mean(2).transpose(0, 1)
            assert same(day_sum(list(yd.unbind(0))) / days, want), (v, days, n)
    finally:
        torch.set_num_threads(prev)


def test_median_of_is_the_sorting_network():
    for n in (1, 2, 3, 4, 7, 12, 16):
        x = torch.randn(n, 40, 3)
        x[x.abs() < 0.3] = 0.0
        assert same(median_of(list(x.unbind(0))), x.median(0).values)
        assert same(median_small(x, 0), x.median(0).values)


def windows(rng: np.random.Generator):
    """Observation windows: float32 values (the histories' type), float64 values, ties, zeros of
    both signs, NaN and infinities, and odd and even lengths."""
    for n in (1, 2, 3, 12, 287, 288):
        yield rng.lognormal(2, 1.5, (n, 30, 2)).astype(np.float32).astype(np.float64)
        yield rng.lognormal(2, 1.5, (n, 30, 2))
        yield rng.integers(0, 4, (n, 30, 2)).astype(np.float64) * np.where(rng.random((n, 30, 2)) < 0.5, -1.0, 1.0)
        w = rng.lognormal(0, 1, (n, 30, 2))
        w[rng.random(w.shape) < 0.05] = np.nan
        w[rng.random(w.shape) < 0.05] = np.inf
        w[rng.random(w.shape) < 0.02] = -np.inf
        yield w


def test_median_mad_and_thresholds_equal_np_median():
    rng = np.random.default_rng(0)
    rule = BurstRule()
    for w in windows(rng):
        with np.errstate(invalid="ignore"):
            med = np.median(w, axis=0)
            mad = np.median(np.abs(w - med), axis=0)
            got = median_mad(w)
            thr = thresholds(w, rule)
        assert np.array_equal(got[0], med, equal_nan=True) and np.array_equal(got[1], mad, equal_nan=True)
        want = med + np.maximum(np.maximum(rule.k * (mad * 1.4826), rule.min_rel * med), rule.abs_floor)
        assert np.array_equal(thr, want, equal_nan=True)
    assert np.array_equal(thresholds(np.zeros((0, 4, 2))), np.full((4, 2), np.inf))


@pytest.mark.parametrize("t", [1, 11, 12, 300, 700])
def test_label_forecast_reads_float32_histories_like_the_float64_path(t):
    rng = np.random.default_rng(t)
    h = history(load(rng, t, 25), load(rng, t, 25))
    rule = BurstRule()
    mean = rng.lognormal(2.5, 1.2, (25, 72, 2))
    need = max(steps(rule.baseline_s, STEP), steps(rule.sustained_s, STEP))
    with np.errstate(invalid="ignore", over="ignore"):
        want = label_future(targets(h.tail(need)), mean, STEP, rule)
        got = label_forecast(h, mean, rule)
    assert got.dtype == want.dtype and np.array_equal(got, want)
    if t >= 300:
        assert np.any(got != 0)  # some steps are high: the comparison has something to compare

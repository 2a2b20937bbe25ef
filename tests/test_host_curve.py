"""`sim.curve.LatencyCurve`: the measured latency curve behind the device model's functions."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim import devices
from sim.curve import LatencyCurve, monotone

SSD = devices.DEVICE_CLASSES["ssd"]


def mm1_curve(n: int = 60) -> LatencyCurve:
    """Points sampled from the device class's own M/M/1 curve."""
    u = np.linspace(0.0, 0.95, n)
    return LatencyCurve.fit(u, devices.latency_of_utilisation(u, SSD.base_latency_ms), SSD.max_iops, SSD.max_mbps)


def test_monotone_is_pava():
    assert monotone([1, 3, 2, 4]).tolist() == [1, 2.5, 2.5, 4]
    assert monotone([5, 4, 3]).tolist() == [4, 4, 4]
    assert monotone([1, 2, 3]).tolist() == [1, 2, 3]
    assert monotone([3, 1], w=[3, 1]).tolist() == [2.5, 2.5]


def test_fit_merges_equal_utilisations_and_makes_latency_monotone():
    c = LatencyCurve.fit([0.1, 0.5, 0.3, 0.5, 0.9], [1.0, 3.0, 4.0, 5.0, 10.0], 1000, 100)
    assert c.u == (0.1, 0.3, 0.5, 0.9)
    assert np.all(np.diff(c.latency) >= 0) and c.latency[-1] == 10.0
    assert c.latency[1] == c.latency[2] == pytest.approx(4.0)  # 4 and mean(3, 5) pooled
    with pytest.raises(ValueError):
        LatencyCurve(1000, 100, (0.5, 0.2), (1.0, 2.0))


def test_shape_outside_the_points():
    c = LatencyCurve.fit([0.2, 0.5], [1.0, 2.0], 1000, 100)
    assert c.latency_of_utilisation(0.0) == pytest.approx(1.0)  # held below the first point
    assert c.latency_of_utilisation(0.35) == pytest.approx(1.5)
    assert c.latency_of_utilisation(0.75) == pytest.approx(2.0 * 0.5 / 0.25)  # M/M/1 tail from the last point
    assert c.latency_of_utilisation(1.0) == c.latency_of_utilisation(devices.U_MAX)


def test_same_functions_as_the_device_class_on_an_mm1_curve():
    c = mm1_curve(200)
    rng = np.random.default_rng(1)
    iops = rng.uniform(0, 0.5 * SSD.max_iops, 50)
    mbps = rng.uniform(0, 0.5 * SSD.max_mbps, 50)
    backup = rng.uniform(0, 100, 50)
    args = (SSD.max_iops, SSD.max_mbps)
    assert np.allclose(c.latency_ms(iops, mbps), devices.latency_ms(iops, mbps, *args, SSD.base_latency_ms), rtol=2e-3)
    assert np.allclose(c.impact(iops, mbps, backup), devices.impact(iops, mbps, backup, *args), rtol=1e-2, atol=1e-3)
    assert np.allclose(c.rate_for_impact(iops, mbps, 0.2), devices.rate_for_impact(iops, mbps, *args, 0.2), rtol=1e-2, atol=0.5)


@settings(max_examples=80, deadline=None)
@given(
    st.lists(st.floats(0.0, 0.95), min_size=2, max_size=12, unique=True),
    st.lists(st.floats(0.05, 50.0), min_size=12, max_size=12),
    st.floats(0, 200),
    st.floats(0, 0.5),
)
def test_rate_for_impact_respects_the_bound(us, lats, prod_mbps, m):
    c = LatencyCurve.fit(us, lats[: len(us)], 10_000, 500)
    r = float(c.rate_for_impact(100.0, prod_mbps, m))
    assert r >= 0
    assert float(c.impact(100.0, prod_mbps, r)) <= m + 1e-9
    # and it is the largest such rate: a little more breaks the bound, unless the curve is flat there
    more = r + 1.0
    if float(c.latency_of_utilisation(c.utilisation(100 + more, prod_mbps + more))) > c.latency_ms(100.0, prod_mbps) * (1 + m) + 1e-9:
        assert float(c.impact(100.0, prod_mbps, more)) > m - 1e-9


def test_round_trip_through_a_dict():
    c = LatencyCurve.fit([0.0, 0.4, 0.8], [0.3, 0.5, 2.0], 50_000, 900)
    d = c.to_dict()
    assert LatencyCurve.from_dict(d, 50_000, 900) == c

"""Tests of the synthetic workload generators (workloads/synthetic)."""

from __future__ import annotations

import json

import numpy as np
import pytest

import workloads.synthetic as ws
from workloads.base import SERIES, LoadSource
from workloads.registry import SYNTHETIC

KINDS = ["database", "vm", "fileserver"]
DAY_TICKS_60 = 1440  # ticks per day at tick_s = 60


def make(kind: str, count: int = 6, tick_s: float = 60.0, seed: int = 7, **params) -> LoadSource:
    return SYNTHETIC.create(kind, count=count, tick_s=tick_s, seed=seed, id_prefix=f"{kind}-", **params)


def hours_and_dow(n_ticks: int, tick_s: float) -> tuple[np.ndarray, np.ndarray]:
    """Local (UTC) hour and weekday (Monday = 0) of each tick's midpoint, default epoch (a Monday)."""
    t = (np.arange(n_ticks) + 0.5) * tick_s
    return (t / 3600.0) % 24.0, (t // 86400).astype(int) % 7


def test_registry_has_all_kinds():
    for kind in KINDS:
        assert kind in SYNTHETIC
        src = make(kind)
        assert isinstance(src, LoadSource)
        assert src.volumes[0].kind == kind
    assert ws.KINDS["database"] is ws.DatabaseWorkload


@pytest.mark.parametrize("kind", KINDS)
def test_same_seed_same_series_different_seed_differs(kind):
    a = make(kind, seed=1).block(100, 700)
    b = make(kind, seed=1).block(100, 700)
    c = make(kind, seed=2).block(100, 700)
    for s in SERIES:
        assert np.array_equal(getattr(a, s), getattr(b, s)), s
    assert not np.array_equal(a.read_iops, c.read_iops)
    assert not np.array_equal(a.write_mbps, c.write_mbps)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("tick_s", [10.0, 7.0])
def test_block_boundaries_do_not_change_values(kind, tick_s):
    whole = make(kind, tick_s=tick_s).block(0, 1000)
    src = make(kind, tick_s=tick_s)  # a fresh source: no cache shared with `whole`
    tail = src.block(500, 500)
    for s in SERIES:
        assert np.array_equal(getattr(whole, s)[500:], getattr(tail, s)), s
    # odd pieces, requested out of order, on one (caching) source
    pieces = [(731, 269), (0, 1), (1, 359), (360, 371)]
    got = {a: src.block(a, n) for a, n in pieces}
    for s in SERIES:
        joined = np.concatenate([getattr(got[a], s) for a, _ in sorted(pieces)])
        assert np.array_equal(joined, getattr(whole, s)), s
    assert tail.start_tick == 500


@pytest.mark.parametrize("kind", KINDS)
def test_far_future_blocks_are_served_and_pure(kind):
    start = 50_000_000  # ~16 years of 10 s ticks: the series has no end
    src = make(kind, tick_s=10.0)
    a = src.block(start, 400)
    b = make(kind, tick_s=10.0).block(start + 150, 100)
    for s in SERIES:
        assert np.isfinite(getattr(a, s)).all()
        assert np.array_equal(getattr(a, s)[150:250], getattr(b, s)), s
    assert a.iops.mean() > 0


@pytest.mark.parametrize("kind", KINDS)
def test_shapes_dtypes_ranges(kind):
    src = make(kind, count=9)
    b = src.block(3, 2 * DAY_TICKS_60)
    assert b.n_ticks == 2 * DAY_TICKS_60
    for s in SERIES:
        a = getattr(b, s)
        assert a.shape == (2 * DAY_TICKS_60, 9), s
        assert a.dtype == np.float32, s
        assert np.isfinite(a).all(), s
        assert (a >= 0).all(), s
    assert b.cpu_pct.max() <= 100 and b.mem_pct.max() <= 100
    assert src.block(10, 0).read_iops.shape == (0, 9)
    with pytest.raises(ValueError):
        src.block(-1, 5)
    assert len(src.volumes) == 9
    assert len({v.volume_id for v in src.volumes}) == 9
    assert all(v.volume_id.startswith(f"{kind}-") for v in src.volumes)


@pytest.mark.parametrize("kind", KINDS)
def test_volumes_differ_from_each_other(kind):
    b = make(kind, count=4).block(0, DAY_TICKS_60)
    means = b.iops.mean(axis=0)
    assert len(set(np.round(means, 3))) == 4
    assert not np.array_equal(b.read_iops[:, 0], b.read_iops[:, 1])


@pytest.mark.parametrize("kind", KINDS)
def test_scale_multiplies_load(kind):
    a = make(kind).block(0, DAY_TICKS_60)
    b = make(kind, scale=2.0).block(0, DAY_TICKS_60)
    np.testing.assert_allclose(b.read_iops, 2.0 * a.read_iops, rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(b.write_mbps, 2.0 * a.write_mbps, rtol=1e-4, atol=1e-3)


def test_metadata_per_kind():
    db, vm, fs = make("database"), make("vm"), make("fileserver")
    m = db.volumes[0]
    assert m.app["engine"] == "postgres" and m.app["role"] in ("primary", "replica")
    assert 300 <= m.app["checkpoint_interval_s"] <= 900 and "batch_window" in m.app
    assert m.write_io_bytes == 8 * 1024
    assert vm.volumes[0].app["os"] in ("linux", "windows") and "tenant" in vm.volumes[0].app
    assert vm.volumes[0].write_io_bytes == 32 * 1024
    assert fs.volumes[0].app["protocol"] in ("smb", "nfs") and fs.volumes[0].app["users"] >= 1
    assert fs.volumes[0].write_io_bytes == 64 * 1024
    # the database hot set is more skewed than the file server's
    assert m.working_set.zipf_s > fs.volumes[0].working_set.zipf_s


@pytest.mark.parametrize("kind", KINDS)
def test_describe_is_json(kind):
    d = make(kind, scale=1.5).describe()
    json.dumps(d)
    assert d["kind"] == kind and d["count"] == 6 and d["seed"] == 7 and d["params"]["scale"] == 1.5


@pytest.mark.parametrize("kind", KINDS)
def test_unknown_param_is_a_value_error_naming_it(kind):
    with pytest.raises(ValueError, match="bogus_knob") as err:
        make(kind, bogus_knob=3)
    assert "scale" in str(err.value)  # lists the known ones


def test_errors_name_kind_parameter_rule_and_value():
    """One wording for every room's parameter errors: `<where>: <name>: <rule> (got <value>)`."""
    with pytest.raises(ValueError, match=r"^vm workload: scale: must be >= 0 \(got -1\.0\)$"):
        make("vm", scale=-1)
    with pytest.raises(ValueError, match=r"^database workload: unknown parameter\(s\) bogus; known: .*scale"):
        make("database", bogus=1)
    with pytest.raises(ValueError, match=r"^constant workload: unknown parameter\(s\) bogus"):
        SYNTHETIC.create("constant", count=1, tick_s=10.0, bogus=1)


def test_bad_param_values_raise():
    with pytest.raises(ValueError, match="checkpoint_interval_min_s"):
        make("database", checkpoint_interval_min_s=1000, checkpoint_interval_max_s=500)
    with pytest.raises(ValueError, match="scale"):
        make("vm", scale=-1)
    with pytest.raises(ValueError, match="copy_mbps"):
        make("fileserver", copy_mbps="lots")


def test_database_daily_rhythm():
    n = 5 * DAY_TICKS_60  # Monday to Friday
    b = make("database", count=20).block(0, n)
    h, _ = hours_and_dow(n, 60.0)
    load = b.iops.mean(axis=1)
    business = load[(h >= 10) & (h < 16)].mean()
    early = load[(h >= 3.5) & (h < 4.5)].mean()
    assert business > 2.0 * early
    # CPU follows the query load
    assert np.corrcoef(b.cpu_pct.ravel(), b.read_iops.ravel())[0, 1] > 0.6


def test_fileserver_weekday_vs_weekend():
    n = 14 * 288  # two weeks of 5-minute ticks
    b = make("fileserver", count=10, tick_s=300.0).block(0, n)
    _, dow = hours_and_dow(n, 300.0)
    load = b.iops.mean(axis=1)
    assert load[dow < 5].mean() > 2.0 * load[dow >= 5].mean()
    assert b.mbps.mean(axis=1)[dow < 5].mean() > 2.0 * b.mbps.mean(axis=1)[dow >= 5].mean()
    # network follows the data read and written
    assert np.corrcoef(b.net_mbps.ravel(), b.read_mbps.ravel())[0, 1] > 0.9


def test_database_batch_window_raises_read_mbps():
    n = 7 * DAY_TICKS_60
    h, _ = hours_and_dow(n, 60.0)
    src = make("database", count=8)
    b = src.block(0, n)
    no_batch = make("database", count=8, batch_read_mbps=0.0).block(0, n)
    for col, vol in enumerate(src.volumes):
        start, min_h = vol.app["batch_start_h"], vol.app["batch_min_h"]
        in_window = (h >= start + 0.5) & (h < start + min_h)  # the batch always runs here
        after = (h >= 5.5) & (h < 6.5)  # always over by now
        r = b.read_mbps[:, col]
        assert r[in_window].mean() > 2.0 * r[after].mean()
        assert r[in_window].mean() > 2.0 * no_batch.read_mbps[:, col][in_window].mean()
        np.testing.assert_allclose(r[after], no_batch.read_mbps[:, col][after], rtol=1e-5)


def test_database_checkpoints_are_periodic_write_spikes():
    tick_s = 10.0
    n = 8640  # Monday, one day of 10 s ticks
    src = make("database", count=3, tick_s=tick_s)
    b = src.block(0, n)
    h, _ = hours_and_dow(n, tick_s)
    for col, vol in enumerate(src.volumes):
        w = b.write_iops[:, col].astype(np.float64)
        windows = np.lib.stride_tricks.sliding_window_view(np.pad(w, 30, mode="edge"), 61)
        spike = w > 1.5 * np.median(windows, axis=1)
        day = (h >= 8) & (h < 20)
        onsets = np.nonzero(spike[1:] & ~spike[:-1] & day[1:])[0] + 1
        interval_ticks = vol.app["checkpoint_interval_s"] / tick_s
        expected = 12 * 3600 / vol.app["checkpoint_interval_s"]
        assert abs(len(onsets) - expected) <= 2, (len(onsets), expected)
        gaps = np.diff(onsets)
        assert np.abs(np.median(gaps) - interval_ticks) <= 1


def test_vm_patch_window_raises_load():
    n = 14 * DAY_TICKS_60
    h, dow = hours_and_dow(n, 60.0)
    load = make("vm", count=30, boot_storms_per_week=0.0).block(0, n).iops.mean(axis=1)
    night = (h >= 22.5) | (h < 1.5)
    patch = night & (((dow == 1) & (h >= 22.5)) | ((dow == 2) & (h < 1.5)))
    assert load[patch].mean() > 1.3 * load[night & ~patch].mean()

"""Property tests: the latency model, fair sharing, restore chains and CBT sizing."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.cbt import ChunkBitmap, FleetTracker
from sim.chains import RestorePoint, VolumeChain
from sim.devices import DEVICE_CLASSES, U_MAX, impact, latency_ms, rate_for_impact, utilisation
from sim.tiers import waterfill
from sim.types import BackupKind
from workloads.base import WorkingSet

devices = st.sampled_from(list(DEVICE_CLASSES.values()))
frac = st.floats(0.0, 0.95)


@given(devices, frac, frac, st.floats(0, 5000), st.floats(0, 5000))
def test_impact_nonnegative_and_monotone_in_rate(dev, fi, fm, r1, r2):
    iops, mbps = fi * dev.max_iops, fm * dev.max_mbps
    lo, hi = sorted((r1, r2))
    a = impact(iops, mbps, lo, dev.max_iops, dev.max_mbps)
    b = impact(iops, mbps, hi, dev.max_iops, dev.max_mbps)
    assert a >= 0 and b >= a - 1e-12
    assert impact(iops, mbps, 0.0, dev.max_iops, dev.max_mbps) == 0.0


@given(devices, frac, frac)
def test_latency_grows_with_load_and_is_bounded(dev, f1, f2):
    lo, hi = sorted((f1, f2))
    l1 = latency_ms(lo * dev.max_iops, 0, dev.max_iops, dev.max_mbps, dev.base_latency_ms)
    l2 = latency_ms(hi * dev.max_iops, 0, dev.max_iops, dev.max_mbps, dev.base_latency_ms)
    assert dev.base_latency_ms <= l1 <= l2 <= dev.base_latency_ms / (1 - U_MAX) + 1e-9
    assert 0 <= utilisation(1e12, 1e12, dev.max_iops, dev.max_mbps) <= U_MAX


@given(devices, st.floats(0, 0.9), st.floats(0, 0.9), st.floats(0.01, 5.0))
def test_rate_for_impact_respects_the_bound(dev, fi, fm, m):
    iops, mbps = fi * dev.max_iops, fm * dev.max_mbps
    r = rate_for_impact(iops, mbps, dev.max_iops, dev.max_mbps, m)
    assert r >= 0
    assert impact(iops, mbps, r, dev.max_iops, dev.max_mbps) <= m + 1e-6
    # and it is not needlessly timid: 5% more rate breaks the bound unless capped by U_MAX
    more = impact(iops, mbps, r * 1.05 + 1e-3, dev.max_iops, dev.max_mbps)
    assert more > m - 1e-6 or utilisation(iops + r, mbps + r, dev.max_iops, dev.max_mbps) >= U_MAX - 1e-6


@given(st.lists(st.floats(0, 1000), min_size=1, max_size=12), st.floats(1, 3000))
def test_waterfill_is_feasible_and_fair(caps, total):
    caps = np.array(caps)
    alloc = waterfill(caps, total)
    assert (alloc <= caps + 1e-9).all() and (alloc >= 0).all()
    assert alloc.sum() <= total + 1e-6
    if caps.sum() > total:
        assert alloc.sum() == np.float64(alloc.sum()) and abs(alloc.sum() - total) < 1e-6
        # a job below its cap gets at least as much as any other job
        unsat = alloc < caps - 1e-9
        if unsat.any():
            assert alloc[unsat].min() >= alloc.max() - 1e-6


kinds = st.sampled_from([BackupKind.FULL, BackupKind.INCREMENTAL, BackupKind.DIFFERENTIAL])


@settings(max_examples=200)
@given(st.lists(st.tuples(kinds, st.floats(1e6, 1e11)), min_size=1, max_size=30))
def test_restore_chain_shape(seq):
    chain = VolumeChain()
    chain.add(RestorePoint(BackupKind.FULL, 0.0, 0.0, 1e11, 0))
    for i, (k, size) in enumerate(seq, start=1):
        chain.add(RestorePoint(k, float(i), float(i), size, 0))
    c = chain.restore_chain()
    assert c[0].kind == BackupKind.FULL
    assert c[-1] is chain.points[-1]  # restores the newest point
    assert sum(p.kind == BackupKind.DIFFERENTIAL for p in c) <= 1
    assert all(p.kind == BackupKind.INCREMENTAL for p in c[2:])
    assert [p.snapshot_t for p in c] == sorted(p.snapshot_t for p in c)
    secs = chain.restore_seconds([100.0], 10.0)
    assert secs == sum(p.bytes / 100e6 + 10.0 for p in c)
    assert sum(p.kind == BackupKind.FULL for p in chain.points) <= 2  # retention


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 2e5), st.sampled_from(["none", "incr", "diff", "full"])), min_size=1, max_size=20), st.integers(0, 2**31))
def test_cbt_sizes_are_ordered(steps, seed):
    used = np.array([10e9])
    tr = FleetTracker(used, [WorkingSet()], np.array([65536.0]), 1 << 20, seed)
    for writes, action in steps:
        tr.add_writes(np.array([writes]))
        b, f = tr.dirty_bytes()
        assert 0 <= b[0] <= f[0] <= used[0] + (1 << 20) * 4
        if action == "incr":
            assert tr.start_backup(0, BackupKind.INCREMENTAL) == b[0]
            assert tr.dirty_bytes()[0][0] == 0 and tr.dirty_bytes()[1][0] == f[0]
        elif action == "diff":
            assert tr.start_backup(0, BackupKind.DIFFERENTIAL) == f[0]
        elif action == "full":
            assert tr.start_backup(0, BackupKind.FULL) == used[0]
            assert tr.dirty_bytes()[1][0] == 0


@given(st.lists(st.tuples(st.integers(0, 1 << 30), st.integers(1, 1 << 22)), min_size=1, max_size=50))
def test_bitmap_marks_exactly_the_touched_chunks(extents):
    chunk = 1 << 20
    bm = ChunkBitmap(16)
    off = np.array([e[0] for e in extents], np.int64)
    ln = np.array([e[1] for e in extents], np.int64)
    bm.mark(off, ln, chunk)
    brute = set()
    for o, n in extents:
        brute.update(range(o // chunk, (o + n - 1) // chunk + 1))
    assert bm.counts() == (len(brute), len(brute))
    assert set(np.flatnonzero(bm.since_backup)) == brute

"""Property tests: the latency model, fair sharing, restore chains, CBT sizing and bitmaps."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from common.bitmap import ChunkBitmap, chunk_indices
from sim.cbt import FleetTracker
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
@given(
    st.lists(st.tuples(st.floats(0, 2e5), st.sampled_from(["none", "incr", "diff", "full"])), min_size=1, max_size=20),
    st.integers(0, 2**31),
)
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


extent_lists = st.lists(st.tuples(st.integers(0, 1 << 30), st.integers(0, 1 << 22)), min_size=1, max_size=50)


def _brute_chunks(extents, chunk: int) -> set[int]:
    brute = set()
    for o, n in extents:
        if n > 0:  # a zero-length write dirties no chunk
            brute.update(range(o // chunk, (o + n - 1) // chunk + 1))
    return brute


@settings(deadline=None)
@given(extent_lists, st.sampled_from([4096, 1 << 20]))
def test_bitmap_marks_exactly_the_touched_chunks(extents, chunk):
    off = np.array([e[0] for e in extents], np.int64)
    ln = np.array([e[1] for e in extents], np.int64)
    brute = _brute_chunks(extents, chunk)
    for bm in (ChunkBitmap(chunk, n_chunks=16), ChunkBitmap(chunk)):  # dense (grows), sparse
        bm.mark(off, ln)
        assert bm.dirty_chunks == len(brute)
        assert set(bm.chunks.tolist()) == brute
        assert bm.written_bytes == int(ln.sum())
    assert set(chunk_indices(off, ln, chunk).tolist()) == brute


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 2**31), st.integers(1, 12), st.sampled_from([4096, 1 << 20]))
def test_dense_and_sparse_bitmaps_agree_on_random_writes(seed, batches, chunk):
    rng = np.random.default_rng(seed)
    n_chunks = 1 + int(rng.integers(1, 5000))
    dense, sparse = ChunkBitmap(chunk, n_chunks=n_chunks), ChunkBitmap(chunk)
    for _ in range(batches):
        k = int(rng.integers(0, 200))
        off = rng.integers(0, n_chunks * chunk, k)  # some land past the end: the dense one grows
        ln = np.where(rng.random(k) < 0.1, 0, rng.integers(1, 4 * chunk, k))
        dense.mark(off, ln)
        sparse.mark(off, ln)
        assert dense.dirty_chunks == sparse.dirty_chunks
        np.testing.assert_array_equal(dense.chunks, sparse.chunks)
        if rng.random() < 0.2:
            dense.clear()
            sparse.clear()
            assert dense.dirty_bytes == sparse.dirty_bytes == 0


def test_zero_length_write_dirties_no_chunk():
    for bm in (ChunkBitmap(4096, n_chunks=8), ChunkBitmap(4096)):
        bm.mark(np.array([0, 8192, 1 << 40]), np.array([0, 0, 0]))
        assert bm.dirty_chunks == 0 and bm.written_bytes == 0
        bm.mark(np.array([8192]), np.array([1]))
        assert bm.chunks.tolist() == [2]
    # the simulator's exact tracking follows the same rule: an incremental of zero-length writes is empty
    tr = FleetTracker(np.array([1e9]), [WorkingSet()], np.array([4096.0]), 1 << 20, 0)
    tr.mark_extents(0, np.array([0, 5 << 20], np.int64), np.array([0, 0], np.int64))
    assert tr.dirty_bytes()[0][0] == 0
    assert tr.start_backup(0, BackupKind.INCREMENTAL) == 0.0
    tr.mark_extents(0, np.array([(5 << 20) - 1], np.int64), np.array([2], np.int64))  # straddles two chunks
    assert tr.start_backup(0, BackupKind.DIFFERENTIAL) == 2 * (1 << 20)

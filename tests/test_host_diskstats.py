"""Rates from /proc/diskstats counters: wraps, resets, device changes (crafted sequences and the real file)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from host import diskstats
from host.diskstats import FIELDS, Counters, DiskTracker, interval_rates
from host.record import Recorder

INDEX = {n: i for i, n in enumerate(FIELDS)}


def counters(name="sda", major=8, minor=0, **vals) -> Counters:
    v = [0] * len(FIELDS)
    for k, x in vals.items():
        v[INDEX[k]] = x
    return Counters(name, major, minor, tuple(v))


def line(c: Counters) -> str:
    return f"{c.major:4d} {c.minor:7d} {c.name} " + " ".join(map(str, c.values)) + " 0 0 0 0 0 0"


def test_parse_real_file_and_rates_are_sane():
    snap = diskstats.read()
    if not snap:
        pytest.skip("/proc/diskstats is empty here")
    c = next(iter(snap.values()))
    assert len(c.values) == len(FIELDS) and all(isinstance(x, int) and x >= 0 for x in c.values)
    d = interval_rates(c, c, 1.0)
    assert d.reset is None and d.rates.read_iops == 0 and d.rates.util_pct == 0


def test_plain_interval_figures():
    a = counters(reads=100, sectors_read=800, read_ms=50, writes=10, sectors_written=2048, write_ms=30, io_ms=200, weighted_ms=400)
    b = counters(reads=300, sectors_read=2800, read_ms=150, writes=60, sectors_written=4096, write_ms=80, io_ms=700, weighted_ms=1400)
    r = interval_rates(a, b, 2.0).rates
    assert r.read_iops == 100 and r.write_iops == 25
    assert r.read_mbps == pytest.approx(2000 * 512 / 1e6 / 2) and r.write_mbps == pytest.approx(2048 * 512 / 1e6 / 2)
    assert r.util_pct == pytest.approx(25.0)  # 500 ms busy in 2 s
    assert r.await_ms == pytest.approx(150 / 250) and r.svctm_ms == pytest.approx(500 / 250)
    assert r.queue == pytest.approx(0.5)


def test_32_bit_wrap_of_a_millisecond_field_and_64_bit_wrap_of_a_count():
    a = counters(reads=10, io_ms=2**32 - 100, sectors_read=2**64 - 1000)
    b = counters(reads=20, io_ms=400, sectors_read=1000)
    d = interval_rates(a, b, 1.0)
    assert d.reset is None and sorted(d.wrapped) == ["io_ms", "sectors_read"]
    assert d.rates.util_pct == pytest.approx(50.0)  # 500 ms across the wrap
    assert d.rates.read_mbps == pytest.approx(2000 * 512 / 1e6)
    # a 32-bit kernel's count wraps at 2**32
    d = interval_rates(counters(reads=2**32 - 5), counters(reads=5), 1.0)
    assert d.rates.read_iops == 10 and d.wrapped == ["reads"]


def test_reset_gives_no_rate_not_a_negative_or_a_spike():
    busy = counters(reads=10**9, sectors_read=8 * 10**9, io_ms=10**8, read_ms=10**8, weighted_ms=10**8)
    fresh = counters(reads=50, sectors_read=400, io_ms=30, read_ms=30, weighted_ms=30)
    d = interval_rates(busy, fresh, 10.0)
    assert d.rates is None and "went down" in d.reset
    # one counter down by an implausible amount (not a wrap: prev far from the top)
    d = interval_rates(counters(reads=10**6), counters(reads=5), 1.0)
    assert d.rates is None and "not by a wrap" in d.reset
    # a jump no device can do (another device took the name)
    d = interval_rates(counters(reads=5), counters(reads=10**12), 1.0)
    assert d.rates is None and "implausible" in d.reset


def test_tracker_device_removed_added_and_renumbered():
    tr = DiskTracker()
    tr.update(0.0, {"sda": counters(reads=10), "sdb": counters("sdb", 8, 16, reads=10)})
    rates, ev = tr.update(1.0, {"sda": counters(reads=20)})
    assert set(rates) == {"sda"} and [(e.device, e.kind) for e in ev] == [("sdb", "removed")]
    rates, ev = tr.update(2.0, {"sda": counters(reads=30), "sdb": counters("sdb", 8, 16, reads=1)})
    assert set(rates) == {"sda"} and [(e.device, e.kind) for e in ev] == [("sdb", "added")]  # baseline only
    rates, ev = tr.update(3.0, {"sda": counters(reads=40), "sdb": counters("sdb", 8, 32, reads=2)})
    assert set(rates) == {"sda"} and ev[0].kind == "reset" and "device number" in ev[0].detail


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5000), st.sampled_from(["ok", "ok", "ok", "reset"])), min_size=2, max_size=40))
def test_no_negative_rate_and_no_spike_whatever_happens(steps):
    """At most 5000 reads per 1 s step; a 32-bit counter starting near its top wraps, resets restart it.

    Whatever the sequence, no interval may show a negative rate or more than really happened.
    The busy time is consistent with the reads (4 billion reads took hours of device time).
    """
    tr = DiskTracker()
    reads, io = 2**32 - 20_000, 10**7
    for t, (n, what) in enumerate(steps):
        if what == "reset":
            reads, io = 0, 0
        reads = (reads + n) % 2**32
        io += min(1000, n) + 1
        rates, _ = tr.update(float(t), {"sda": counters(reads=reads, io_ms=io)})
        for r in rates.values():
            assert 0 <= r.read_iops <= 5000
            assert 0 <= r.util_pct <= 100


def test_recorder_on_a_crafted_diskstats_file_with_a_reset(tmp_path: Path):
    """The whole recording path fed a crafted sequence: the reset interval has no row, none is negative."""
    src = tmp_path / "diskstats"
    seq = [
        counters(reads=1000, writes=100, sectors_read=8000, io_ms=100),
        counters(reads=1100, writes=150, sectors_read=9000, io_ms=200),
        counters(reads=30, writes=2, sectors_read=240, io_ms=5),  # device re-attached: counters restarted
        counters(reads=130, writes=52, sectors_read=1240, io_ms=105),
    ]
    src.write_text(line(seq[0]) + "\n")
    rec = Recorder(tmp_path / "s.piop", ["sda"], 0.05, 30, diskstats_path=str(src))
    rec.open()
    try:
        for c in seq:
            src.write_text(line(c) + "\n")
            rec.sample()
    finally:
        rec.close()
    con = sqlite3.connect(tmp_path / "s.piop")
    rows = con.execute("SELECT t, dt, read_iops, write_iops FROM samples ORDER BY t").fetchall()
    kinds = [k for (k,) in con.execute("SELECT kind FROM events ORDER BY t")]
    assert len(rows) == 2  # intervals 0->1 and 2->3; the reset interval 1->2 has none
    assert all(r[2] >= 0 and r[3] >= 0 for r in rows)
    assert rows[0][2] * rows[0][1] == pytest.approx(100) and rows[1][2] * rows[1][1] == pytest.approx(100)
    assert kinds.count("reset") == 1


def test_a_reboot_between_runs_makes_the_first_sample_a_baseline(tmp_path: Path):
    """After a reboot the counters restarted: even when they happen to be higher, nothing is measured across it."""
    src = tmp_path / "diskstats"
    store = tmp_path / "s.piop"
    runs = {"before": [(5000, 900), (5100, 950)], "after": [(9000, 2000), (9100, 2050)]}
    for boot, seq in runs.items():
        src.write_text(line(counters(reads=seq[0][0], io_ms=seq[0][1])) + "\n")
        rec = Recorder(store, ["sda"], 0.05, 30, diskstats_path=str(src))
        rec.boot = boot  # the kernel's boot_id as each run saw it
        rec.open()
        try:
            got = []
            for reads, io in seq:
                src.write_text(line(counters(reads=reads, io_ms=io)) + "\n")
                got.append(rec.sample())
        finally:
            rec.close()
        assert got == [0, 1]  # a baseline, then one measured interval
    con = sqlite3.connect(store)
    kinds = [k for (k,) in con.execute("SELECT kind FROM events ORDER BY rowid")]
    assert kinds == ["start", "start", "reboot"]
    iops = [round(r * dt) for r, dt in con.execute("SELECT read_iops, dt FROM samples ORDER BY t")]
    assert iops == [100, 100]  # never 9000 - 5100 across the reboot

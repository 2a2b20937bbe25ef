"""Trace replay: readers, aggregation, CBT, resampling, cache, bad input, `piop trace`.

Real-file tests read ../shared/traces (or $PIOP_TRACES) and are skipped with a reason
where it is absent; bad-input tests craft small files in tmp_path. Every test gets its
own cache folder ($PIOP_CACHE).
"""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from cli_helpers import ROOT

from workloads.base import SERIES, LoadSource
from workloads.registry import TRACES
from workloads.traces import (
    ChunkBitmap,
    TraceError,
    TraceFormatError,
    TraceSource,
    detect_family,
    make,
    unique_written_bytes,
)
from workloads.traces import parse as parse_mod

TRACES_DIR = Path(os.environ.get("PIOP_TRACES", ROOT.parent / "shared" / "traces"))
SAMPLES = TRACES_DIR / "format_samples"
MSR = SAMPLES / "msr-cambridge1-sample.csv"
SYSTOR = SAMPLES / "systor17-traces-sample.csv.gz"
TENCENT = SAMPLES / "cloud_storage-sample.bz2"
ALIBABA = TRACES_DIR / "alibaba_clusterdata_v2018" / "machine_usage.csv"
BITBRAINS = TRACES_DIR / "bitbrains_gwa_t12_rnd"
BB_DUP = BITBRAINS / "2013-7" / "20.csv.gz"


def need(*paths: Path):
    missing = [p for p in paths if not p.exists()]
    return pytest.mark.skipif(bool(missing), reason=f"real traces not found: {missing[0] if missing else ''} (set PIOP_TRACES)")


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PIOP_CACHE", str(tmp_path / "cache"))


def all_ticks(src: TraceSource):
    return src.block(0, src.n_ticks)


def collect_extents(src: TraceSource, col: int, start: int = 0, n: int | None = None):
    b = src.block(start, src.n_ticks if n is None else n)
    e = b.extents[col]
    return e.offset, e.length


# ----------------------------------------------------------------------------- registry


def test_registry_names_and_protocol():
    import workloads.traces  # noqa: F401  (registration)

    for name in ("auto", "bitbrains", "alibaba", "msr", "systor", "tencent"):
        assert name in TRACES


@need(MSR)
def test_factory_signature_start_epoch_and_protocol():
    src = TRACES.create("msr", path=str(MSR), tick_s=10.0, seed=3)
    assert isinstance(src, LoadSource)
    first = pd.read_csv(MSR, header=None)[0].min()
    assert src.start_epoch == pytest.approx((first - 116444736000000000) / 1e7, abs=1e-6)
    assert src.volumes[0].volume_id == "hm_0" and src.volumes[0].kind == "fileserver"
    d = src.describe()
    json.dumps(d)  # JSON-able
    assert d["family"] == "msr" and d["records"] == 1000 and d["past_end"] == "zeros"


def test_unknown_parameter_and_bad_values(tmp_path):
    f = tmp_path / "t.csv"
    f.write_text("128166385295514663,hm,0,Write,9056014336,2048,2833\n")
    with pytest.raises(TraceError, match="unknown parameter"):
        make("msr", path=f, tick_s=10, months=["2013-7"])
    with pytest.raises(TraceError, match="tick_s"):
        make("msr", path=f, tick_s=0)
    with pytest.raises(TraceError, match="no volume 'nope'"):
        make("msr", path=f, tick_s=10, volumes=["nope"])
    with pytest.raises(TraceError, match="no such file"):
        make("auto", path=tmp_path / "missing.csv", tick_s=10)
    with pytest.raises(TraceError, match=r"^top: must be a positive integer \(got 0\)$"):
        make("msr", path=f, tick_s=10, top=0)
    with pytest.raises(TraceError, match="unknown trace family 'nope'"):
        make("nope", path=f, tick_s=10)
    # each family's own parameters are known to it only
    from workloads.traces import PARAMS

    assert "reorder_s" in PARAMS["msr"] and "reorder_s" not in PARAMS["bitbrains"]
    assert {"months", "resample"} <= set(PARAMS["bitbrains"]) and "epoch" in PARAMS["alibaba"]
    with pytest.raises(TraceError, match="trace family 'bitbrains': unknown parameter"):
        make("bitbrains", path=f, tick_s=10, reorder_s=1)


# ----------------------------------------------------------------------------- detection


@need(MSR, SYSTOR, TENCENT, ALIBABA, BB_DUP)
def test_detect_families():
    assert detect_family(MSR) == "msr"
    assert detect_family(SYSTOR) == "systor"
    assert detect_family(TENCENT) == "tencent"
    assert detect_family(ALIBABA) == "alibaba"
    assert detect_family(ALIBABA.parent) == "alibaba"
    assert detect_family(BB_DUP) == "bitbrains"
    assert detect_family(BITBRAINS) == "bitbrains"
    assert detect_family(BITBRAINS / "2013-8") == "bitbrains"
    with pytest.raises(TraceError, match="several trace families"):
        detect_family(SAMPLES)


def test_detect_unknown_format(tmp_path):
    f = tmp_path / "notes.csv"
    f.write_text("hello,world\nthis is,not a trace\n")
    with pytest.raises(TraceFormatError, match="unknown trace format"):
        make("auto", path=f, tick_s=10)


# ----------------------------------------------------------------------------- request-level: real files


@need(MSR)
def test_msr_totals_and_per_tick_match_raw():
    raw = pd.read_csv(MSR, header=None, names=["ts", "host", "disk", "type", "offset", "size", "resp"])
    src = make("msr", path=MSR, tick_s=10.0)
    b = all_ticks(src)
    tick = (raw.ts - raw.ts.min()) // 100_000_000
    for typ, ops_s, mb_s in (("Read", "read_iops", "read_mbps"), ("Write", "write_iops", "write_mbps")):
        sel = raw[raw.type == typ]
        ops = np.bincount(tick[raw.type == typ], minlength=src.n_ticks)
        byt = np.bincount(tick[raw.type == typ], weights=sel["size"], minlength=src.n_ticks)
        np.testing.assert_allclose(getattr(b, ops_s)[:, 0] * 10.0, ops, rtol=1e-6)
        np.testing.assert_allclose(getattr(b, mb_s)[:, 0] * 10.0 * 1e6, byt, rtol=1e-6)
    app = src.volumes[0].app
    assert app["read_bytes"] == raw[raw.type == "Read"]["size"].sum()  # exact integer totals
    assert app["write_bytes"] == raw[raw.type == "Write"]["size"].sum()
    assert app["records"] == len(raw)
    assert src.n_ticks == int(tick.max()) + 1
    assert not b.cpu_pct.any() and not b.net_mbps.any()  # no covariates in the trace


@need(MSR)
def test_msr_cbt_unique_bytes_exact():
    raw = pd.read_csv(MSR, header=None, names=["ts", "host", "disk", "type", "offset", "size", "resp"])
    w = raw[raw.type == "Write"]
    src = make("msr", path=MSR, tick_s=10.0)
    off, ln = collect_extents(src, 0)
    assert len(off) == len(w) and off.dtype == np.int64
    np.testing.assert_array_equal(np.sort(off), np.sort(w.offset.to_numpy()))
    written = int(w["size"].sum())
    assert int(ln.sum()) == written
    # brute force: a set of 512-byte sectors (MSR requests are sector aligned)
    assert (w.offset % 512 == 0).all() and (w["size"] % 512 == 0).all()
    sectors = set()
    for o, n in zip(w.offset, w["size"], strict=True):
        sectors.update(range(o // 512, (o + n) // 512))
    unique = unique_written_bytes((off, ln), 1)
    assert unique == 512 * len(sectors)
    assert unique <= written
    for chunk in (4096, 1 << 20):
        chunks = set()
        for o, n in zip(w.offset, w["size"], strict=True):
            chunks.update(range(o // chunk, (o + n - 1) // chunk + 1))
        assert unique_written_bytes((off, ln), chunk) == chunk * len(chunks)
        bm = ChunkBitmap(chunk)  # incremental, block by block
        for k in range(0, src.n_ticks, 3):
            e = src.block(k, 3).extents[0]
            bm.mark(e)
        assert bm.dirty_bytes == chunk * len(chunks) and bm.written_bytes == written


@need(SYSTOR, TENCENT)
@pytest.mark.parametrize("path,unit", [(SYSTOR, 1), (TENCENT, 512)])
def test_request_totals_equal_raw_sum(path, unit):
    src = make("auto", path=path, tick_s=1.0)
    if path == SYSTOR:
        raw = pd.read_csv(path)
        is_w, size, vol = raw.IOType == "W", raw.Size, "LUN" + raw.LUN.astype(str)
    else:
        raw = pd.read_csv(path, header=None, names=["ts", "offset", "size", "type", "vol"])
        is_w, size, vol = raw.type == 1, raw["size"] * unit, raw.vol.astype(str)
    assert src.records == len(raw) and src.malformed == 0
    assert len(src.volumes) == vol.nunique()
    b = all_ticks(src)
    assert float(b.read_mbps.sum(dtype=np.float64)) * 1e6 == pytest.approx(size[~is_w].sum(), rel=1e-6)
    assert float(b.write_mbps.sum(dtype=np.float64)) * 1e6 == pytest.approx(size[is_w].sum(), rel=1e-6)
    assert sum(v.app["read_bytes"] + v.app["write_bytes"] for v in src.volumes) == size.sum()
    ext_bytes = sum(int(e.length.sum()) for e in b.extents.values())
    assert ext_bytes == size[is_w].sum()


@need(SYSTOR)
def test_systor_reorder_tolerance():
    src = make("systor", path=SYSTOR, tick_s=1.0)  # completion-ordered: timestamps run back a little
    assert src.malformed == 0
    with pytest.raises(TraceFormatError, match="out of order"):
        make("systor", path=SYSTOR, tick_s=1.0, reorder_s=0.0)


@need(TENCENT)
def test_tencent_top_selection_and_kinds():
    raw = pd.read_csv(TENCENT, header=None, names=["ts", "offset", "size", "type", "vol"])
    by = (raw.groupby("vol")["size"].sum() * 512).sort_values(ascending=False, kind="stable")
    src = make("tencent", path=TENCENT, tick_s=10.0, top=5, kinds={"1063": "database"}, id_prefix="cbs-")
    ids = [v.app["trace_volume"] for v in src.volumes]
    assert set(ids) == {str(v) for v in by.index[:5]}
    totals = [v.app["read_bytes"] + v.app["write_bytes"] for v in src.volumes]
    assert totals == sorted(totals, reverse=True) == by.iloc[:5].tolist()  # most active first
    assert all(v.volume_id.startswith("cbs-") for v in src.volumes)
    sel = make("tencent", path=TENCENT, tick_s=10.0, volumes=["1063", "1058"], kinds={"1063": "database"})
    assert [v.volume_id for v in sel.volumes] == ["1063", "1058"]
    assert [v.kind for v in sel.volumes] == ["database", "vm"]


# ----------------------------------------------------------------------------- block contract


def _assert_blocks_equal(a, b):
    for s in SERIES:
        np.testing.assert_array_equal(getattr(a, s), getattr(b, s), err_msg=s)
    assert set(a.extents) == set(b.extents)
    for c in a.extents:
        for f in ("tick", "offset", "length"):
            np.testing.assert_array_equal(getattr(a.extents[c], f), getattr(b.extents[c], f))


def _concat(blocks):
    from workloads.base import Extents, LoadBlock

    out = {s: np.concatenate([getattr(b, s) for b in blocks]) for s in SERIES}
    ext = {}
    if blocks[0].extents:
        for c in blocks[0].extents:
            parts = []
            off = 0
            for b in blocks:
                e = b.extents[c]
                parts.append((e.tick + off, e.offset, e.length))
                off += b.n_ticks
            ext[c] = Extents(*(np.concatenate([p[i] for p in parts]) for i in range(3)))
            ext[c].tick = ext[c].tick.astype(np.int32)
    return LoadBlock(start_tick=blocks[0].start_tick, extents=ext, **out)


@need(MSR, BB_DUP, ALIBABA)
@pytest.mark.parametrize("family,path,tick", [("msr", MSR, 1.0), ("bitbrains", BB_DUP, 60.0), ("alibaba", ALIBABA, 60.0)])
def test_block_is_pure_function_of_tick_range(family, path, tick):
    src = make(family, path=path, tick_s=tick, top=3)
    n = min(src.n_ticks + 50, 3000)
    whole = src.block(0, n)
    rng = np.random.default_rng(7)
    cuts = np.sort(rng.choice(np.arange(1, n), size=6, replace=False))
    edges = [0, *cuts.tolist(), n]
    parts = [src.block(a, b - a) for a, b in zip(edges[:-1], edges[1:], strict=True)]
    _assert_blocks_equal(whole, _concat(parts))
    # past the end: zeros (request-level) or loop (interval); any start tick is served
    far = src.block(src.n_ticks + 5, 10)
    if family == "msr":
        assert not any(getattr(far, s).any() for s in SERIES)
        assert all(e.tick.size == 0 for e in far.extents.values())
    else:
        _assert_blocks_equal(far, src.block(5, 10))
    if family == "msr":
        for e in whole.extents.values():
            assert e.tick.dtype == np.int32 and (np.diff(e.tick) >= 0).all()


@need(MSR)
def test_request_loop_repeats_extents():
    src = make("msr", path=MSR, tick_s=10.0, loop=True)
    a = src.block(0, src.n_ticks)
    b = src.block(src.n_ticks, src.n_ticks)
    _assert_blocks_equal(a, b)


@need(MSR)
def test_time_scale_conserves_requests():
    base = make("msr", path=MSR, tick_s=10.0)
    slow = make("msr", path=MSR, tick_s=10.0, time_scale=4.0)
    assert slow.n_ticks > 3 * base.n_ticks - 4
    tot = lambda s: float(all_ticks(s).write_iops.sum(dtype=np.float64)) * 10.0  # noqa: E731
    assert tot(slow) == pytest.approx(tot(base), rel=1e-6) == pytest.approx(492, rel=1e-6)
    assert slow.describe()["time_scale"] == 4.0


@need(MSR)
def test_start_param_aligns_tick_zero():
    first = (pd.read_csv(MSR, header=None)[0].min() - 116444736000000000) / 1e7
    src = make("msr", path=MSR, tick_s=10.0, start=first - 95.0)
    assert src.start_epoch == pytest.approx(first - 95.0, abs=1e-6)
    b = src.block(0, 9)
    assert not b.iops.any()  # the 95 s before the trace
    assert src.block(9, 1).iops.sum() > 0
    late = make("msr", path=MSR, tick_s=10.0, start=first + 60.0)  # records before start are dropped
    assert late.describe()["records_before_start_dropped"] > 0
    assert float(all_ticks(late).iops.sum()) * 10 == pytest.approx(1000 - late.describe()["records_before_start_dropped"], rel=1e-6)


# ----------------------------------------------------------------------------- interval: Bitbrains


def _bitbrains_raw(path: Path) -> pd.DataFrame:
    with gzip.open(path, "rt") as f:
        lines = f.read().splitlines()
    rows = [[float(x) for x in ln.split(";")] for ln in lines[1:]]
    cols = ["ts", "cores", "cap", "cpu_mhz", "cpu_pct", "mem_cap", "mem", "rd", "wr", "rx", "tx"]
    return pd.DataFrame(rows, columns=cols)


@need(BB_DUP)
def test_bitbrains_dedup_units_and_resampling():
    raw = _bitbrains_raw(BB_DUP)
    dup = raw.groupby("ts").mean().sort_index()  # average per timestamp
    assert len(raw) - len(dup) > 4000  # the file has thousands of duplicate timestamps
    src = make("bitbrains", path=BB_DUP, tick_s=300.0)
    d = src.describe()
    assert d["duplicate_timestamps_averaged"] == len(raw) - len(dup)
    assert d["samples"] == len(raw)
    assert src.start_epoch == dup.index[0]
    assert src.volumes[0].volume_id == "20" and src.volumes[0].kind == "vm"
    # independent resampling: the step function at 1-second resolution, averaged per tick
    t = dup.index.to_numpy().astype(np.int64)
    t0 = t[0]
    nominal = int(np.median(np.diff(t)))
    end = t[-1] + nominal
    secs = np.arange(t0, t0 + src.n_ticks * 300)
    idx = np.clip(np.searchsorted(t, secs, side="right") - 1, 0, None)
    for col, series, scale in (("wr", "write_mbps", 1e-3), ("rd", "read_mbps", 1e-3), ("cpu_pct", "cpu_pct", 1.0)):
        per_sec = dup[col].to_numpy()[idx] * scale
        per_sec[secs >= end] = dup[col].to_numpy()[-1] * scale  # hold after the last interval
        expect = per_sec.reshape(src.n_ticks, 300).mean(axis=1)
        got = getattr(all_ticks(src), series)[:, 0]
        np.testing.assert_allclose(got, expect, rtol=2e-5, atol=1e-7, err_msg=col)
    # upsampling onto 60 s ticks is step-hold: every tick inside one sample interval has its value
    fine = make("bitbrains", path=BB_DUP, tick_s=60.0)
    b = fine.block(0, 5 * 24 * 60)
    starts = t0 + np.arange(b.n_ticks) * 60
    i = np.searchsorted(t, starts, side="right") - 1
    inside = (starts + 60 <= t[np.minimum(i + 1, len(t) - 1)]) & (i + 1 < len(t))
    np.testing.assert_allclose(b.write_mbps[inside, 0], dup.wr.to_numpy()[i[inside]] / 1000.0, rtol=1e-6)
    # derived IOPS: MB/s / the kind's I/O size (vm: 32 KiB)
    np.testing.assert_allclose(b.write_iops[:, 0], b.write_mbps[:, 0] * 1e6 / 32768, rtol=1e-5)
    assert "MB/s x 1e6 / I/O size" in d["models"]["iops"]


@need(BB_DUP)
def test_bitbrains_linear_and_gap_zero_modes():
    hold = make("bitbrains", path=BB_DUP, tick_s=300.0)
    lin = make("bitbrains", path=BB_DUP, tick_s=300.0, resample="linear")
    a, b = all_ticks(hold).write_mbps[:, 0], all_ticks(lin).write_mbps[:, 0]
    assert a.min() - 1e-6 <= b.min() and b.max() <= a.max() + 1e-6
    zero = make("bitbrains", path=BB_DUP, tick_s=300.0, gap_fill="zero")
    gaps = zero.describe()["gaps"]
    assert gaps == hold.describe()["gaps"] and gaps > 0
    assert float(all_ticks(zero).write_mbps.sum()) < float(all_ticks(hold).write_mbps.sum())


@need(BITBRAINS / "2013-7" / "20.csv.gz", BITBRAINS / "2013-8" / "20.csv.gz")
def test_bitbrains_months_concatenate_same_vm():
    src = make("bitbrains", path=BITBRAINS, tick_s=300.0, months=["2013-7", 8], volumes=["20"])
    assert [v.volume_id for v in src.volumes] == ["20"]
    r7, r8 = _bitbrains_raw(BITBRAINS / "2013-7" / "20.csv.gz"), _bitbrains_raw(BITBRAINS / "2013-8" / "20.csv.gz")
    assert src.volumes[0].app["samples"] == r7.ts.nunique() + r8.ts.nunique()
    assert src.start_epoch == r7.ts.min()
    end = r8.ts.max()
    assert src.start_epoch + src.n_ticks * 300 >= end
    assert src.describe()["gaps"] >= 1  # the day between the monthly files
    assert len(src.files) == 2 and src.describe()["selection"]["months"] == ["2013-7", 8]
    with pytest.raises(TraceError, match="no month"):
        make("bitbrains", path=BITBRAINS, tick_s=300.0, months=["2014-1"], volumes=["20"])


# ----------------------------------------------------------------------------- interval: Alibaba


@need(ALIBABA)
def test_alibaba_sorting_abnormal_and_model():
    src = make("alibaba", path=ALIBABA, tick_s=300.0, volumes=["m_1932", "m_1947"], epoch="2018-01-01")
    d = src.describe()
    assert d["abnormal_values"] == {"disk = -1 (missing)": 6, "disk > 100 (clipped)": 10}
    assert d["models"]["disk"].startswith("disk_io_percent is utilisation")
    raw = pd.read_csv(ALIBABA, header=None)
    sub = raw[raw[0].isin(["m_1932", "m_1947"])]
    t0 = sub[1].min()
    assert src.start_epoch == pd.Timestamp("2018-01-01", tz="UTC").timestamp() + t0
    m1932 = raw[raw[0] == "m_1932"]
    assert m1932[1].min() == 386640
    # a single tick covering exactly one sample of m_1932 (sorted, de-duplicated) carries its percent
    one = make("alibaba", path=ALIBABA, tick_s=10.0, volumes=["m_1932"])
    assert one.start_epoch == 386640.0
    s = m1932.sort_values(1).groupby(1)[8].mean()
    b = one.block(0, 1)
    pct = s.iloc[0]
    assert b.read_mbps[0, 0] + b.write_mbps[0, 0] == pytest.approx(pct / 100 * 500.0, rel=1e-5)
    assert b.cpu_pct[0, 0] == pytest.approx(m1932.sort_values(1).groupby(1)[2].mean().iloc[0], rel=1e-5)


def test_alibaba_unsorted_rows_are_sorted(tmp_path):
    rows = [
        ("m_1", 120, 30, 40, 5, 6, 1.0),
        ("m_1", 0, 10, 20, 1, 2, 2.0),
        ("m_1", 60, 20, 30, 3, 4, 3.0),
        ("m_1", 60, 40, 30, 3, 4, 5.0),
    ]
    text = "".join(f"{m},{t},{c},{mem},,,{ni},{no},{dk}\n" for m, t, c, mem, ni, no, dk in rows)
    f = tmp_path / "machine_usage.csv"
    f.write_text(text)
    src = make("alibaba", path=f, tick_s=60.0, nominal_mbps=100.0, read_fraction=1.0)
    b = src.block(0, 3)
    np.testing.assert_allclose(b.read_mbps[:, 0], [2.0, 4.0, 1.0])  # t=60 duplicated: mean of 3 and 5
    np.testing.assert_allclose(b.cpu_pct[:, 0], [10, 30, 30])
    assert src.describe()["duplicate_timestamps_averaged"] == 1
    assert not b.write_mbps.any()


# ----------------------------------------------------------------------------- cache


@need(MSR)
def test_cache_hit_on_second_run_keyed_by_content(tmp_path):
    a = make("msr", path=MSR, tick_s=10.0)
    assert not a.cache_hit
    b = make("msr", path=MSR, tick_s=10.0)
    assert b.cache_hit
    _assert_blocks_equal(all_ticks(a), all_ticks(b))
    cache = Path(os.environ["PIOP_CACHE"])
    assert any(p.name.startswith("msr-") for p in cache.iterdir())
    copy = tmp_path / "renamed.csv"
    copy.write_bytes(MSR.read_bytes())
    assert make("msr", path=copy, tick_s=10.0).cache_hit  # same content, other path
    assert not make("msr", path=MSR, tick_s=5.0).cache_hit  # another tick
    assert not make("msr", path=MSR, tick_s=10.0, cache=False).cache_hit


@need(BB_DUP)
def test_interval_cache_hit():
    a = make("bitbrains", path=BB_DUP, tick_s=300.0)
    b = make("bitbrains", path=BB_DUP, tick_s=60.0)  # the native series is cached whatever the tick
    assert not a.cache_hit and b.cache_hit


# ----------------------------------------------------------------------------- bad input (crafted)

GOOD = [
    "128166385295514663,hm,0,Write,9056014336,2048,2833",
    "128166385295514878,hm,0,Write,11855351808,512,2617",
    "128166385295515175,hm,0,Read,5548077056,4096,2320",
    "128166385395515175,hm,0,Read,5548081152,4096,2320",
    "128166385495515175,hm,0,Write,5548077056,8192,2320",
]


def _msr(tmp_path, lines, name="t.csv"):
    f = tmp_path / name
    f.write_text("\n".join(lines) + "\n")
    return f


@pytest.mark.parametrize(
    "bad,reason",
    [
        ("128166385295515200,hm,0,Write,5548077056", "truncated line"),
        ("128166385295515200,hm,0,Write,55480x7056,512,1", "non-numeric offset"),
        ("128166385295515200,hm,0,Write,5548077056,-512,1", "negative size"),
        ("128166385295515200,hm,0,Flush,5548077056,512,1", "unknown I/O type"),
        ("128166385195515200,hm,0,Write,5548077056,512,1", "out of order"),
        ("128166385295515200,hm,0,Write,5548077056,,1", "empty size"),
    ],
)
def test_bad_line_counted_reported_and_fatal_over_threshold(tmp_path, bad, reason):
    lines = GOOD[:3] + [bad] + GOOD[3:]
    f = _msr(tmp_path, lines)
    with pytest.raises(TraceFormatError) as err:
        make("msr", path=f, tick_s=10.0)
    msg = str(err.value)
    assert "t.csv" in msg and "line 4" in msg and reason in msg and "\n" not in msg
    src = make("msr", path=f, tick_s=10.0, max_bad_fraction=0.5)
    assert src.malformed == 1 and src.records == 5
    assert src.warnings[0].startswith("t.csv:4: ") and reason in src.warnings[0]
    good = pd.read_csv(_msr(tmp_path, GOOD, "good.csv"), header=None)
    assert src.volumes[0].app["write_bytes"] == good[good[3] == "Write"][5].sum()  # bad line left out, nothing else


def test_bad_lines_in_fast_and_slow_chunks_keep_line_numbers(tmp_path, monkeypatch):
    base = 128166385295514663
    lines = [f"{base + i * 1000},hm,0,{'Write' if i % 3 else 'Read'},{4096 * i},4096,1" for i in range(3000)]
    lines[1500] = lines[1500].replace(",4096,1", ",-4096,1")  # value error (fast path)
    lines[2600] = "garbage"  # structural error (slow path for that chunk)
    f = _msr(tmp_path, lines[:1000] + [""] + lines[1000:])  # a blank line shifts later numbers
    monkeypatch.setattr(parse_mod, "BLOCK_BYTES", 4096)  # many chunks
    src = make("msr", path=f, tick_s=1.0, max_bad_fraction=0.01, cache=False)
    assert src.malformed == 2
    assert [w.split(":")[1] for w in src.warnings[:2]] == ["1502", "2602"]
    monkeypatch.setattr(parse_mod, "BLOCK_BYTES", 2 << 20)
    big = make("msr", path=f, tick_s=1.0, max_bad_fraction=0.01, cache=False)
    _assert_blocks_equal(all_ticks(src), all_ticks(big))
    assert (
        big.volumes[0].app["write_bytes"] == src.volumes[0].app["write_bytes"] == 4096 * sum(1 for i in range(3000) if i % 3 and i != 2600)
    )


def test_bad_bitbrains_and_alibaba_lines(tmp_path):
    head = (
        "Timestamp [ms];\tCPU cores;\tCPU capacity provisioned [MHZ];\tCPU usage [MHZ];\tCPU usage [%];\tMemory capacity "
        "provisioned [KB];\tMemory usage [KB];\tDisk read throughput [KB/s];\tDisk write throughput [KB/s];\t"
        "Network received throughput [KB/s];\tNetwork transmitted throughput [KB/s]"
    )
    row = lambda t, w: f"{t};\t1;\t2000;\t100;\t5.0;\t1000;\t500;\t10;\t{w};\t1;\t1"  # noqa: E731
    lines = [head, row(1000, 100), row(1300, 200), row(1300, 400), row(1600, "abc"), row(1200, 1), row(1900, 300), row(2800, 500)]
    f = tmp_path / "7.csv.gz"
    with gzip.open(f, "wt") as g:
        g.write("\n".join(lines) + "\n")
    with pytest.raises(TraceFormatError, match=r"7\.csv\.gz.*line 5"):
        make("bitbrains", path=f, tick_s=300.0)
    src = make("bitbrains", path=f, tick_s=300.0, max_bad_fraction=0.5, max_gap_s=400.0)
    assert src.malformed == 2  # non-numeric, and a timestamp that goes back
    assert {w.split(": ")[1] for w in src.warnings[:2]} == {"non-numeric disk write throughput 'abc'", "timestamp out of order"}
    b = src.block(0, 7)
    # 1000: 0.1, 1300: mean(0.2, 0.4), 1600 dropped -> 1300 holds, 1900: 0.3, gap 1900..2800 held, 2800: 0.5
    np.testing.assert_allclose(b.write_mbps[:, 0], [0.1, 0.3, 0.3, 0.3, 0.3, 0.3, 0.5], rtol=1e-6)
    d = src.describe()
    assert d["duplicate_timestamps_averaged"] == 1 and d["gaps"] == 2  # 1300->1900 and 1900->2800
    ali = tmp_path / "machine_usage.csv"
    ali.write_text("m_1,0,10,20,,,1,2,5\nm_1,60,10,20,,,1,2\nm_1,120,10,20,,,1,2,-7\n")
    with pytest.raises(TraceFormatError, match="machine_usage.csv: 2 of 3 lines"):
        make("alibaba", path=ali, tick_s=60.0)


def test_chunk_bitmap_and_unique_bytes():
    off = np.array([0, 100, 150, 4096, 10_000, 10_000], np.int64)
    ln = np.array([200, 100, 10, 1, 0, 5000], np.int64)
    assert unique_written_bytes((off, ln)) == 200 + 1 + 5000  # [0, 200) covers [100, 200) and [150, 160)
    assert unique_written_bytes((off, ln), 4096) == 4096 * len({0, 1, 2, 3})
    bm = ChunkBitmap(4096)
    bm.mark(off[:3], ln[:3])
    bm.mark(off[3:], ln[3:])
    assert bm.dirty_chunks == 4 and bm.written_bytes == int(ln.sum())
    bm.clear()
    assert bm.dirty_bytes == 0


# ----------------------------------------------------------------------------- CLI


def _cli(*args):
    from typer.testing import CliRunner

    from experiments.trace_cli import trace_app

    return CliRunner().invoke(trace_app, [str(a) for a in args])


@need(MSR)
def test_cli_info_json_and_png(tmp_path):
    png = tmp_path / "msr.png"
    r = _cli("info", MSR, "--json", "--out", png)
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data["family"] == "msr" and data["records"] == 1000 and data["malformed_lines"] == 0
    assert data["volumes"] == 1 and data["volume_stats"][0]["volume"] == "hm_0"
    assert data["span"]["start"].startswith("2007-02-22T17:22")
    assert png.exists() and png.stat().st_size > 1000
    r = _cli("info", MSR, "--no-plot")
    assert r.exit_code == 0 and "hm_0" in r.stdout and "malformed lines 0" in r.stdout


@need(MSR)
def test_cli_convert_long_format(tmp_path):
    out = tmp_path / "o" / "msr.parquet"
    r = _cli("convert", MSR, out, "--tick", "5")
    assert r.exit_code == 0, r.output
    df = pd.read_parquet(out)
    assert list(df.columns) == ["tick", "time", "volume", *SERIES]
    src = make("msr", path=MSR, tick_s=5.0)
    assert len(df) == src.n_ticks
    assert df.write_iops.sum() * 5 == pytest.approx(492, rel=1e-6)
    assert df.time.iloc[1] - df.time.iloc[0] == pd.Timedelta(seconds=5)


def test_cli_user_errors_are_one_line(tmp_path):
    bad = _msr(tmp_path, GOOD[:2] + ["nonsense,line"] + GOOD[2:])
    for args in (
        ("info", tmp_path / "missing.csv"),
        ("info", bad, "--family", "msr"),
        ("convert", bad, tmp_path / "x.parquet", "--top", "0"),
    ):
        r = _cli(*args)
        assert r.exit_code == 2, r.output
        lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
        assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in r.output

"""Interval-metric traces: Bitbrains GWA-T-12 (5 min) and Alibaba machine_usage (~60 s).

Reading (once per set of files; the result is cached by content hash, see `cache.py`):

- Bitbrains: `;<TAB>`-separated, one header line, one VM per file (VM id = file stem;
  the same id in several month folders is the same VM, concatenated in time order).
  "Timestamp [ms]" holds Unix **seconds** (a known GWA-T-12 quirk; values above 1e11
  would be taken as real milliseconds). KB/s are read as 10^3 bytes/s, so MB/s =
  KB/s / 1000. cpu_pct = "CPU usage [%]"; mem_pct = memory usage / provisioned (KB);
  net_mbps = (received + transmitted) KB/s / 1000. Timestamps never go backwards in
  GWA-T-12, so one that does is a malformed line.
- Alibaba: no header, `machine_id, time_stamp, cpu_util_percent, mem_util_percent,
  mem_gps, mkpi, net_in, net_out, disk_io_percent`; time in seconds since the
  (undisclosed) trace start; rows unsorted by design (sorted here). -1 marks an
  abnormal value (taken as missing) and values above 100 are clipped to 100; both are
  counted. There is no read/write split, no MB/s and no IOPS: see `alibaba_standard`.

Cleaning: rows are sorted per volume by time; rows sharing a timestamp are averaged
(NaN-aware) and counted as duplicates; missing values are carried forward (backward
at a series' head) and counted. Resampling onto the simulation tick is `resample.py`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from workloads.traces import cache as cachemod
from workloads.traces.errors import BadLineLog, TraceFormatError
from workloads.traces.formats import ALIBABA_SPEC, BITBRAINS_SPEC
from workloads.traces.parse import ChunkParser, check_early, iter_chunks

#: the five standard interval columns, in this order
STANDARD = ("read_mbps", "write_mbps", "cpu_pct", "mem_pct", "net_mbps")

NATIVE_COLUMNS = {
    "bitbrains": STANDARD,
    "alibaba": ("disk_pct", "cpu_pct", "mem_pct", "net_in_pct", "net_out_pct"),
}


@dataclass
class NativeSeries:
    """Cleaned native-resolution samples of every volume read (sorted by volume, time)."""

    family: str
    names: list[str]
    vol: np.ndarray  # int32
    t: np.ndarray  # float64 seconds (Unix for Bitbrains, trace-relative for Alibaba)
    values: np.ndarray  # float32 [rows, 5] in NATIVE_COLUMNS[family]
    app: list[dict]
    meta: dict
    cache_hit: bool

    def bounds(self) -> np.ndarray:
        return np.searchsorted(self.vol, np.arange(len(self.names) + 1))


# ----------------------------------------------------------------------------- reading


def _read_bitbrains_file(path: Path, label: str, log: BadLineLog, max_bad_fraction: float) -> tuple[dict, int, dict]:
    parser = ChunkParser(BITBRAINS_SPEC, label, log)
    parts = []
    last = None
    header = False
    next_line = 1
    for chunk in iter_chunks(path):
        line0 = next_line
        if line0 == 1:
            end = chunk.find(b"\n")
            first = chunk[: end if end >= 0 else len(chunk)]
            if first.lstrip(b"\xef\xbb\xbf")[:1].isalpha():
                chunk, line0, header = (chunk[end + 1 :] if end >= 0 else b""), 2, True
        rows = parser.parse(line0, chunk)
        next_line = line0 + parser.chunk_lines
        check_early(log, parser.lines_seen, label, max_bad_fraction)
        if rows.n == 0:
            continue
        ts = rows.cols["ts"]
        pm = np.maximum.accumulate(ts)
        before = np.empty_like(ts)
        before[0] = ts[0] if last is None else last
        before[1:] = pm[:-1]
        if last is not None:
            np.maximum(before, last, out=before)
        last = pm[-1] if last is None else max(last, pm[-1])
        rows = parser.flag(rows, ts < before, "timestamp out of order", chunk, line0)
        parts.append(rows.cols)
    if parser.lines_seen == 0:
        raise TraceFormatError(f"{label}: no records (empty file?)")
    cols = {k: np.concatenate([p[k] for p in parts]) if parts else np.zeros(0) for k in (c.name for c in BITBRAINS_SPEC.columns)}
    ts = cols["ts"]
    note = {}
    if ts.size and float(np.median(ts)) > 1e11:
        ts = ts / 1000.0
        note["timestamps"] = "milliseconds"
    cap = cols["mem_cap_kb"]
    with np.errstate(divide="ignore", invalid="ignore"):
        mem_pct = np.where(cap > 0, 100.0 * cols["mem_kb"] / cap, np.nan)
    std = {
        "t": ts,
        "read_mbps": cols["rd_kbs"] / 1000.0,
        "write_mbps": cols["wr_kbs"] / 1000.0,
        "cpu_pct": cols["cpu_pct"],
        "mem_pct": mem_pct,
        "net_mbps": (cols["rx_kbs"] + cols["tx_kbs"]) / 1000.0,
    }
    app = {}
    if ts.size:
        app = {
            "cpu_cores": float(cols["cores"].max()),
            "cpu_capacity_mhz": round(float(cols["cap_mhz"].max()), 3),
            "mem_provisioned_kb": float(cap.max()),
        }
    return std, parser.lines_seen, {"header": header, **note, "app": app}


def _read_alibaba_file(path: Path, label: str, log: BadLineLog, max_bad_fraction: float, names: list[str], index: dict[str, int]):
    parser = ChunkParser(ALIBABA_SPEC, label, log)
    parts = []
    abnormal: dict[str, int] = {}
    line0 = 1
    for chunk in iter_chunks(path):
        rows = parser.parse(line0, chunk)
        line0 += parser.chunk_lines
        check_early(log, parser.lines_seen, label, max_bad_fraction)
        for k, n in rows.abnormal.items():
            abnormal[k] = abnormal.get(k, 0) + n
        if rows.n == 0:
            continue
        codes = []
        for m in rows.strings["machine"]:
            v = index.get(m)
            if v is None:
                v = index[m] = len(names)
                names.append(m)
            codes.append(v)
        lut = np.array(codes, np.int32)
        c = rows.cols
        vals = np.column_stack([c["disk"], c["cpu"], c["mem"], c["net_in"], c["net_out"]])
        parts.append((lut[c["machine"]], c["ts"], vals))
    if parser.lines_seen == 0:
        raise TraceFormatError(f"{label}: no records (empty file?)")
    return parts, parser.lines_seen, abnormal


def _clean(vol: np.ndarray, t: np.ndarray, vals: np.ndarray, n_vol: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
    """Sort by (volume, time), average rows sharing a timestamp, fill missing values."""
    order = np.lexsort((t, vol))
    vol, t, vals = vol[order], t[order], vals[order]
    stats = {"rows": int(t.size), "duplicates": 0, "filled": 0}
    if t.size == 0:
        return vol, t, vals.astype(np.float32), stats
    new = np.ones(t.size, bool)
    new[1:] = (vol[1:] != vol[:-1]) | (t[1:] != t[:-1])
    starts = np.flatnonzero(new)
    stats["duplicates"] = int(t.size - starts.size)
    if starts.size != t.size:
        ok = ~np.isnan(vals)
        sums = np.add.reduceat(np.where(ok, vals, 0.0), starts, axis=0)
        cnt = np.add.reduceat(ok.astype(np.int64), starts, axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            vals = np.where(cnt > 0, sums / np.maximum(cnt, 1), np.nan)
        vol, t = vol[starts], t[starts]
    missing = np.isnan(vals)
    if missing.any():
        stats["filled"] = int(missing.sum())
        n = t.size
        bounds = np.searchsorted(vol, np.arange(n_vol + 1))
        gstart = bounds[vol]
        gend = bounds[vol + 1]
        ar = np.arange(n)
        for k in np.flatnonzero(missing.any(axis=0)):
            ok = ~missing[:, k]
            prev = np.maximum.accumulate(np.where(ok, ar, -1))
            nxt = np.minimum.accumulate(np.where(ok, ar, n)[::-1])[::-1]
            src = np.where(prev >= gstart, prev, np.where(nxt < gend, nxt, -1))
            col = vals[:, k].copy()
            col[~ok] = np.where(src[~ok] >= 0, vals[np.maximum(src[~ok], 0), k], 0.0)
            vals[:, k] = col
    return vol, t, vals.astype(np.float32), stats


def read_native(
    family: str, files: list[Path], ids: list[str] | None, labels: list[str], max_bad_fraction: float, use_cache: bool
) -> NativeSeries:
    """Read (or fetch from the cache) the cleaned native series of `files`.

    `ids[i]` names the volume of file i (Bitbrains); Alibaba volumes come from the rows.
    """
    digests = cachemod.file_digests(files)
    key = {"kind": "interval", "family": family, "files": [[lb, d] for lb, d in zip(labels, digests, strict=True)], "ids": ids}
    folder = cachemod.entry_dir(family, key)
    if use_cache and (folder / "meta.json").exists():
        series = _load_native(family, folder, True)
    else:
        series = _read_native(family, files, ids, labels, max_bad_fraction)
        if use_cache:
            try:
                with cachemod.building(folder) as tmp:
                    _store_native(series, tmp)
            except OSError:
                pass  # an unwritable cache only costs time
    for label, lines, logd in series.meta["files"]:
        BadLineLog.from_dict(logd).check(label, int(lines), max_bad_fraction)
    return series


@dataclass
class _Samples:
    """Samples of every file read so far, and what reading them found."""

    names: list[str] = field(default_factory=list)
    index: dict[str, int] = field(default_factory=dict)
    vols: list[np.ndarray] = field(default_factory=list)
    ts: list[np.ndarray] = field(default_factory=list)
    vals: list[np.ndarray] = field(default_factory=list)
    app_by_vol: dict[int, dict] = field(default_factory=dict)
    abnormal: dict[str, int] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)
    headers: int = 0
    dups: int = 0


def _take_bitbrains(acc: _Samples, path: Path, label: str, vid: str | None, log: BadLineLog, max_bad_fraction: float) -> int:
    """Read one Bitbrains file (one VM, `vid`) into `acc`; returns its number of lines."""
    assert vid is not None
    std, lines, info = _read_bitbrains_file(path, label, log, max_bad_fraction)
    log.check(label, lines, max_bad_fraction)
    v = acc.index.setdefault(vid, len(acc.index))
    if v == len(acc.names):
        acc.names.append(vid)
    n = std["t"].size
    x = np.column_stack([std[c] for c in STANDARD]).astype(np.float32) if n else np.zeros((0, 5), np.float32)
    fv, ft, fx, fst = _clean(np.full(n, v, np.int32), std["t"], x, v + 1)
    acc.dups += fst["duplicates"]
    acc.vols.append(fv)
    acc.ts.append(ft)
    acc.vals.append(fx)
    app = acc.app_by_vol.setdefault(v, {})
    for k, x in info["app"].items():
        app[k] = max(app.get(k, x), x)
    acc.headers += info["header"]
    if "timestamps" in info:
        acc.notes["timestamps"] = "some files hold real milliseconds; divided by 1000"
    return lines


def _take_alibaba(acc: _Samples, path: Path, label: str, vid: str | None, log: BadLineLog, max_bad_fraction: float) -> int:
    """Read one Alibaba file (many machines) into `acc`; returns its number of lines."""
    parts, lines, abn = _read_alibaba_file(path, label, log, max_bad_fraction, acc.names, acc.index)
    log.check(label, lines, max_bad_fraction)
    for k, n in abn.items():
        acc.abnormal[k] = acc.abnormal.get(k, 0) + n
    for v, t, x in parts:
        acc.vols.append(v)
        acc.ts.append(t)
        acc.vals.append(x.astype(np.float32))
    return lines


#: how each family's files are read into `_Samples`
_READERS: dict[str, Callable[[_Samples, Path, str, str | None, BadLineLog, float], int]] = {
    "bitbrains": _take_bitbrains,
    "alibaba": _take_alibaba,
}


def _read_native(family: str, files: list[Path], ids: list[str] | None, labels: list[str], max_bad_fraction: float) -> NativeSeries:
    acc = _Samples()
    take = _READERS[family]
    file_meta = []
    for i, (path, label) in enumerate(zip(files, labels, strict=True)):
        log = BadLineLog()
        lines = take(acc, path, label, ids[i] if ids is not None else None, log, max_bad_fraction)
        file_meta.append([label, lines, log.to_dict()])
    vol = np.concatenate(acc.vols) if acc.vols else np.zeros(0, np.int32)
    t = np.concatenate(acc.ts) if acc.ts else np.zeros(0)
    x = np.concatenate(acc.vals) if acc.vals else np.zeros((0, 5))
    vol, t, x, stats = _clean(vol, t, x, len(acc.names))
    stats["duplicates"] += acc.dups
    stats["rows"] += acc.dups
    if t.size == 0:
        raise TraceFormatError(f"{labels[0] if labels else family}: no valid records")
    meta = {
        "family": family,
        "names": acc.names,
        "files": file_meta,
        "stats": stats,
        "abnormal": acc.abnormal,
        "notes": acc.notes,
        "headers": acc.headers,
        "app": [acc.app_by_vol.get(i, {}) for i in range(len(acc.names))],
    }
    return NativeSeries(family, acc.names, vol, t, x, meta["app"], meta, False)


def _store_native(series: NativeSeries, folder: Path) -> None:
    cols = {"vol": series.vol, "t": series.t}
    for i, c in enumerate(NATIVE_COLUMNS[series.family]):
        cols[c] = series.values[:, i]
    pq.write_table(pa.table(cols), folder / "series.parquet")
    cachemod.write_json(folder / "meta.json", series.meta)


def _load_native(family: str, folder: Path, hit: bool) -> NativeSeries:
    meta = cachemod.read_json(folder / "meta.json")
    tbl = pq.read_table(folder / "series.parquet")
    vals = np.column_stack([tbl.column(c).to_numpy() for c in NATIVE_COLUMNS[family]]).astype(np.float32)
    return NativeSeries(family, meta["names"], tbl.column("vol").to_numpy(), tbl.column("t").to_numpy(), vals, meta["app"], meta, hit)


# ----------------------------------------------------------------------------- conversions


def alibaba_standard(values: np.ndarray, nominal_mbps: float, read_fraction: float, nic_mbps: float) -> np.ndarray:
    """Alibaba native columns -> STANDARD columns (float64).

    disk_io_percent is a utilisation: MB/s = percent / 100 x `nominal_mbps` (a nominal
    device), split `read_fraction` / 1 - `read_fraction` between reads and writes (the
    trace has no split). net_in / net_out are normalised to 0-100: net MB/s =
    (net_in + net_out) / 100 x `nic_mbps`.
    """
    v = values.astype(np.float64)
    disk = v[:, 0] / 100.0 * nominal_mbps
    return np.column_stack([disk * read_fraction, disk * (1.0 - read_fraction), v[:, 1], v[:, 2], (v[:, 3] + v[:, 4]) / 100.0 * nic_mbps])

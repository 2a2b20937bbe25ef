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
at a series' head) and counted.

Resampling onto the simulation tick (`IntervalSeries`) happens block by block, so the
series never exists at the (fine) simulation tick in memory. A sample at `t_i` covers
`[t_i, t_{i+1})` (the last one covers one median interval):

- `resample="hold"` (default): the tick's value is the time-weighted mean of that step
  function over the tick. For ticks shorter than the sampling interval this is plain
  step-hold; for longer ticks it averages. It conserves the integral (bytes moved).
- `resample="linear"`: piecewise-linear interpolation through the centres of the
  sample intervals, evaluated at tick centres (smoother; does not conserve bytes).

Gaps: an interval longer than `max_gap_s` is a gap (default: 1.5 x the volume's median
sampling interval for Bitbrains, i.e. at least one sample missing; 10 x for Alibaba,
whose sampling is irregular). `gap_fill="hold"` (default)
keeps the last value through it; `gap_fill="zero"` keeps it for one median interval,
then zero until the next sample. Before a volume's first sample (when other selected
volumes start earlier) the first value is held backwards ("hold") or zero ("zero");
after its last interval likewise. Gaps, their total length and the filled head and
tail are counted per volume and reported in `describe()`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from workloads.traces import cache as cachemod
from workloads.traces.errors import BadLineLog, TraceFormatError
from workloads.traces.parse import ChunkParser, Column, CsvSpec, check_early, iter_chunks

#: the five standard interval columns, in this order
STANDARD = ("read_mbps", "write_mbps", "cpu_pct", "mem_pct", "net_mbps")

BITBRAINS_SPEC = CsvSpec(
    n_fields=11,
    columns=tuple(
        Column(i, name, "f8", nonneg=True, label=label)
        for i, (name, label) in enumerate(
            [
                ("ts", "timestamp"),
                ("cores", "CPU cores"),
                ("cap_mhz", "CPU capacity"),
                ("cpu_mhz", "CPU usage [MHZ]"),
                ("cpu_pct", "CPU usage [%]"),
                ("mem_cap_kb", "memory capacity"),
                ("mem_kb", "memory usage"),
                ("rd_kbs", "disk read throughput"),
                ("wr_kbs", "disk write throughput"),
                ("rx_kbs", "network received throughput"),
                ("tx_kbs", "network transmitted throughput"),
            ]
        )
    ),
    delimiter=";",
    delete=b"\t",
)

ALIBABA_SPEC = CsvSpec(
    n_fields=9,
    columns=(
        Column(0, "machine", "str", label="machine id"),
        Column(1, "ts", "f8", nonneg=True, label="time_stamp"),
        Column(2, "cpu", "f8", nonneg=True, missing=-1.0, clip_max=100.0, label="cpu_util_percent"),
        Column(3, "mem", "f8", nonneg=True, missing=-1.0, clip_max=100.0, label="mem_util_percent"),
        Column(6, "net_in", "f8", nonneg=True, missing=-1.0, clip_max=100.0, label="net_in"),
        Column(7, "net_out", "f8", nonneg=True, missing=-1.0, clip_max=100.0, label="net_out"),
        Column(8, "disk", "f8", nonneg=True, missing=-1.0, clip_max=100.0, label="disk_io_percent"),
    ),
)

NATIVE_COLUMNS = {
    "bitbrains": STANDARD,
    "alibaba": ("disk_pct", "cpu_pct", "mem_pct", "net_in_pct", "net_out_pct"),
}
NOMINAL_INTERVAL_S = {"bitbrains": 300.0, "alibaba": 60.0}
#: default gap threshold in median intervals: Bitbrains samples are regular (a missing
#: sample is a gap); Alibaba's are irregular (10-400 s between samples is routine,
#: median 60 s), so only a silence of 10 median intervals (600 s) counts as a gap
GAP_FACTOR = {"bitbrains": 1.5, "alibaba": 10.0}


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


def _read_native(
    family: str, files: list[Path], ids: list[str] | None, labels: list[str], max_bad_fraction: float
) -> NativeSeries:
    file_meta = []
    vols, ts, vals = [], [], []
    names: list[str] = []
    index: dict[str, int] = {}
    app_by_vol: dict[int, dict] = {}
    abnormal: dict[str, int] = {}
    notes: dict[str, str] = {}
    headers = 0
    dups = 0
    for i, (path, label) in enumerate(zip(files, labels, strict=True)):
        log = BadLineLog()
        if family == "bitbrains":
            assert ids is not None
            std, lines, info = _read_bitbrains_file(path, label, log, max_bad_fraction)
            log.check(label, lines, max_bad_fraction)
            v = index.setdefault(ids[i], len(index))
            if v == len(names):
                names.append(ids[i])
            n = std["t"].size
            x = np.column_stack([std[c] for c in STANDARD]).astype(np.float32) if n else np.zeros((0, 5), np.float32)
            fv, ft, fx, fst = _clean(np.full(n, v, np.int32), std["t"], x, v + 1)
            dups += fst["duplicates"]
            vols.append(fv)
            ts.append(ft)
            vals.append(fx)
            app = app_by_vol.setdefault(v, {})
            for k, x in info["app"].items():
                app[k] = max(app.get(k, x), x)
            headers += info["header"]
            if "timestamps" in info:
                notes["timestamps"] = "some files hold real milliseconds; divided by 1000"
        else:
            parts, lines, abn = _read_alibaba_file(path, label, log, max_bad_fraction, names, index)
            log.check(label, lines, max_bad_fraction)
            for k, n in abn.items():
                abnormal[k] = abnormal.get(k, 0) + n
            for v, t, x in parts:
                vols.append(v)
                ts.append(t)
                vals.append(x.astype(np.float32))
        file_meta.append([label, lines, log.to_dict()])
    vol = np.concatenate(vols) if vols else np.zeros(0, np.int32)
    t = np.concatenate(ts) if ts else np.zeros(0)
    x = np.concatenate(vals) if vals else np.zeros((0, 5))
    vol, t, x, stats = _clean(vol, t, x, len(names))
    stats["duplicates"] += dups
    stats["rows"] += dups
    if t.size == 0:
        raise TraceFormatError(f"{labels[0] if labels else family}: no valid records")
    meta = {
        "family": family,
        "names": names,
        "files": file_meta,
        "stats": stats,
        "abnormal": abnormal,
        "notes": notes,
        "headers": headers,
        "app": [app_by_vol.get(i, {}) for i in range(len(names))],
    }
    return NativeSeries(family, names, vol, t, x, meta["app"], meta, False)


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
    return NativeSeries(
        family, meta["names"], tbl.column("vol").to_numpy(), tbl.column("t").to_numpy(), vals, meta["app"], meta, hit
    )


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
    return np.column_stack(
        [disk * read_fraction, disk * (1.0 - read_fraction), v[:, 1], v[:, 2], (v[:, 3] + v[:, 4]) / 100.0 * nic_mbps]
    )


# ----------------------------------------------------------------------------- resampling


@dataclass
class VolumeSteps:
    """The step function of one volume: value `v[j]` on `[t[j], t[j+1])`, the last one onwards."""

    t: np.ndarray
    v: np.ndarray  # float64 [m, 5]
    g: np.ndarray  # float64 [m, 5]: integral of the step function from t[0] to t[j]
    centres: np.ndarray
    stats: dict


def build_steps(t: np.ndarray, v: np.ndarray, t0: float, nominal: float, max_gap: float, gap_fill: str) -> VolumeSteps:
    d = np.diff(t)
    gaps = d > max_gap
    stats = {
        "samples": int(t.size),
        "interval_s": float(nominal),
        "gaps": int(gaps.sum()),
        "gap_s": float((d[gaps] - nominal).sum()),
        "head_fill_s": float(max(0.0, t[0] - t0)),
    }
    tt, vv = t, v
    if gap_fill == "zero":
        if gaps.any():
            at = np.flatnonzero(gaps)
            tt = np.insert(tt, at + 1, t[at] + nominal)
            vv = np.insert(vv, at + 1, 0.0, axis=0)
        tt = np.append(tt, t[-1] + nominal)
        vv = np.vstack([vv, np.zeros((1, v.shape[1]))])
    if t0 < t[0]:
        tt = np.insert(tt, 0, t0)
        vv = np.vstack([(vv[:1] if gap_fill == "hold" else np.zeros((1, v.shape[1]))), vv])
    seg = np.diff(tt)
    g = np.zeros_like(vv)
    if seg.size:
        g[1:] = np.cumsum(vv[:-1] * seg[:, None], axis=0)
    centres = np.append(tt[:-1] + seg / 2.0, tt[-1] + nominal / 2.0)
    return VolumeSteps(tt, vv, g, centres, stats)


def resample(steps: VolumeSteps, edges: np.ndarray, dt: float, mode: str) -> np.ndarray:
    """Values of one volume on the ticks `[edges[i], edges[i+1])`: float64 [n, 5]."""
    t, v, g = steps.t, steps.v, steps.g
    a, b = edges[:-1], edges[1:]
    if mode == "linear":
        c = (a + b) / 2.0
        return np.column_stack([np.interp(c, steps.centres, v[:, k]) for k in range(v.shape[1])])
    ja = np.maximum(np.searchsorted(t, a, side="right") - 1, 0)
    jb = np.maximum(np.searchsorted(t, b, side="left") - 1, 0)
    fa = g[ja] + v[ja] * (a - t[ja])[:, None]
    fb = g[jb] + v[jb] * (b - t[jb])[:, None]
    out = (fb - fa) / dt
    same = ja == jb
    out[same] = v[ja[same]]
    return out


class IntervalSeries:
    """Serves per-tick values of the selected volumes, resampled block by block."""

    def __init__(
        self,
        t_list: list[np.ndarray],
        v_list: list[np.ndarray],
        nominal: list[float],
        t0: float,
        dt_trace: float,
        tick_s: float,
        n_ticks: int,
        mode: str,
        gap_fill: str,
        max_gap: list[float],
        read_io_bytes: np.ndarray,
        write_io_bytes: np.ndarray,
    ):
        self.t0 = t0
        self.dt = dt_trace
        self.tick_s = tick_s
        self.n_ticks = n_ticks
        self.mode = mode
        self.n_volumes = len(t_list)
        self.steps = [
            build_steps(t, v, t0, nm, mg, gap_fill) for t, v, nm, mg in zip(t_list, v_list, nominal, max_gap, strict=True)
        ]
        end = t0 + n_ticks * dt_trace
        for s, t, nm in zip(self.steps, t_list, nominal, strict=True):
            s.stats["tail_fill_s"] = float(max(0.0, end - (t[-1] + nm)))
        self.read_io = read_io_bytes.astype(np.float64)
        self.write_io = write_io_bytes.astype(np.float64)

    def values(self, k0: int, k1: int) -> dict[str, np.ndarray]:
        n = k1 - k0
        edges = self.t0 + np.arange(k0, k1 + 1, dtype=np.float64) * self.dt
        out = {name: np.zeros((n, self.n_volumes), np.float32) for name in STANDARD}
        for i, s in enumerate(self.steps):
            x = resample(s, edges, self.dt, self.mode)
            for k, name in enumerate(STANDARD):
                out[name][:, i] = x[:, k]
        res = {
            "read_iops": (out["read_mbps"] * (1e6 / self.read_io)).astype(np.float32),
            "write_iops": (out["write_mbps"] * (1e6 / self.write_io)).astype(np.float32),
        }
        res.update(out)
        return res


def span(t_list: list[np.ndarray], nominal: list[float], start: float | None, dt_trace: float) -> tuple[float, int]:
    """(t0, natural length in ticks) of the selected volumes."""
    t0 = min(float(t[0]) for t in t_list) if start is None else float(start)
    end = max(float(t[-1]) + nm for t, nm in zip(t_list, nominal, strict=True))
    n = max(1, math.ceil((end - t0) / dt_trace - 1e-9))
    return t0, n


def median_interval(t: np.ndarray, default: float) -> float:
    if t.size < 2:
        return default
    return float(np.median(np.diff(t)))

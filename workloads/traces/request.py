"""Request-level block traces: MSR Cambridge, SNIA systor'17 and Tencent CBS.

Each file is streamed in chunks (see `parse.py`), never loaded whole. Per chunk:

- records are checked (negative offset/size, unknown I/O type, truncated or non-numeric
  lines, timestamps out of order where the format promises order) and bad ones dropped
  and counted;
- each record falls into the tick `floor((t - origin) / tick)` of a grid anchored at
  `origin` (the earliest timestamp of the first chunk of the trace's files, or the
  configured start), and per (tick, volume) the read/write operations and bytes are
  summed with `numpy.bincount` (no per-row Python);
- the write extents (tick, volume, byte offset, byte length) are appended to flat
  binary column files, kept sorted by tick: a small reorder buffer holds only the
  records still inside the format's reorder window, so memory stays bounded.

Order: MSR files are sorted by timestamp, so any record earlier than one before it is
malformed (`reorder_s = 0`). systor'17 files are ordered by completion, so timestamps
(request arrival) run back by up to a response time; Tencent CBS has one-second
timestamps, a few of them out of order. Both accept records up to `reorder_s` (default
5 s) earlier than the latest one seen; earlier ones count as malformed.

The aggregate of a file is stored in the cache (`agg.parquet` plus `ext_*.bin`), keyed
by the file's content hash, the grid origin and the tick (`cache.py`).
"""

from __future__ import annotations

import math
import shutil
import tempfile
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from workloads.base import Extents
from workloads.traces import cache as cachemod
from workloads.traces.errors import BadLineLog, TraceFormatError
from workloads.traces.parse import ChunkParser, Column, CsvSpec, Rows, check_early, iter_chunks

#: Windows FILETIME (100 ns since 1601-01-01 UTC) -> Unix seconds
FILETIME_EPOCH_S = -11644473600.0

AGG_SCHEMA = pa.schema(
    [("tick", pa.int64()), ("vol", pa.int32())]
    + [(c, pa.int64()) for c in ("read_ops", "write_ops", "read_bytes", "write_bytes")]
)
EXT_COLUMNS = (("tick", np.int64), ("vol", np.int32), ("offset", np.int64), ("length", np.int64))


def _msr_volumes(rows: Rows) -> tuple[np.ndarray, list[str]]:
    host, disk = rows.cols["host"], rows.cols["disk"]
    hosts = rows.strings["host"]
    if rows.n and host.min() == host.max() and disk.min() == disk.max():
        return np.zeros(rows.n, np.int32), [f"{hosts[int(host[0])]}_{int(disk[0])}"]
    key = host.astype(np.int64) * (1 << 32) + disk
    uniq, inv = np.unique(key, return_inverse=True)
    return inv.astype(np.int32), [f"{hosts[int(k >> 32)]}_{int(k & 0xFFFFFFFF)}" for k in uniq.tolist()]


def _int_volumes(col: str, fmt: str) -> Callable[[Rows], tuple[np.ndarray, list[str]]]:
    def volumes(rows: Rows) -> tuple[np.ndarray, list[str]]:
        v = rows.cols[col]
        if rows.n and v.min() == v.max():
            return np.zeros(rows.n, np.int32), [fmt.format(int(v[0]))]
        uniq, inv = np.unique(v, return_inverse=True)
        return inv.astype(np.int32), [fmt.format(int(x)) for x in uniq.tolist()]

    return volumes


@dataclass(frozen=True)
class RequestFormat:
    family: str
    title: str
    spec: CsvSpec
    ts_unit_s: float  # seconds per timestamp unit
    ts_epoch_s: float  # Unix seconds = raw * ts_unit_s + ts_epoch_s
    ts_int: bool  # raw timestamps are integers
    size_unit: int  # bytes per offset/size unit
    reorder_s: float  # default reorder tolerance
    volumes: Callable[[Rows], tuple[np.ndarray, list[str]]]
    volume_note: str

    def to_unix(self, raw: float | int) -> float:
        """Unix seconds of a raw timestamp (exact integer arithmetic for integer formats)."""
        if self.ts_int:
            epoch_units = round(self.ts_epoch_s / self.ts_unit_s)
            return (
                (int(raw) + epoch_units) * self.ts_unit_s
                if self.ts_unit_s >= 1
                else (int(raw) + epoch_units) / round(1 / self.ts_unit_s)
            )
        return raw * self.ts_unit_s + self.ts_epoch_s

    def from_unix(self, t: float) -> float | int:
        if self.ts_int:
            return (
                int(round(t * round(1 / self.ts_unit_s))) - round(self.ts_epoch_s / self.ts_unit_s)
                if self.ts_unit_s < 1
                else int(round((t - self.ts_epoch_s) / self.ts_unit_s))
            )
        return (t - self.ts_epoch_s) / self.ts_unit_s


_RW = {"true_values": ("Write", "write", "WRITE", "W", "w"), "false_values": ("Read", "read", "READ", "R", "r")}

FORMATS: dict[str, RequestFormat] = {
    "msr": RequestFormat(
        family="msr",
        title="MSR Cambridge (SNIA IOTTA #388)",
        spec=CsvSpec(
            n_fields=7,
            columns=(
                Column(0, "ts", "i8", nonneg=True, label="timestamp"),
                Column(1, "host", "str", label="hostname"),
                Column(2, "disk", "i8", nonneg=True, label="disk number"),
                Column(3, "write", "bool"),
                Column(4, "offset", "i8", nonneg=True, label="offset"),
                Column(5, "size", "i8", nonneg=True, label="size"),
            ),
            **_RW,
        ),
        ts_unit_s=1e-7,
        ts_epoch_s=FILETIME_EPOCH_S,
        ts_int=True,
        size_unit=1,
        reorder_s=0.0,
        volumes=_msr_volumes,
        volume_note="volume = <hostname>_<disk number>, e.g. hm_0",
    ),
    "systor": RequestFormat(
        family="systor",
        title="SNIA systor'17 VDI",
        spec=CsvSpec(
            n_fields=6,
            columns=(
                Column(0, "ts", "f8", nonneg=True, label="timestamp"),
                Column(2, "write", "bool"),
                Column(3, "lun", "i8", nonneg=True, label="LUN"),
                Column(4, "offset", "i8", nonneg=True, label="offset"),
                Column(5, "size", "i8", nonneg=True, label="size"),
            ),
            **_RW,
        ),
        ts_unit_s=1.0,
        ts_epoch_s=0.0,
        ts_int=False,
        size_unit=1,
        reorder_s=5.0,
        volumes=_int_volumes("lun", "LUN{}"),
        volume_note="volume = LUN<n>",
    ),
    "tencent": RequestFormat(
        family="tencent",
        title="Tencent CBS (SNIA IOTTA)",
        spec=CsvSpec(
            n_fields=5,
            columns=(
                Column(0, "ts", "f8", nonneg=True, label="timestamp"),
                Column(1, "offset", "i8", nonneg=True, label="offset"),
                Column(2, "size", "i8", nonneg=True, label="size"),
                Column(3, "write", "bool"),
                Column(4, "vol", "i8", nonneg=True, label="volume id"),
            ),
            true_values=("1",),
            false_values=("0",),
        ),
        ts_unit_s=1.0,
        ts_epoch_s=0.0,
        ts_int=False,
        size_unit=512,
        reorder_s=5.0,
        volumes=_int_volumes("vol", "{}"),
        volume_note="volume = VolumeID; offsets and sizes are 512-byte sectors",
    ),
}


def _strip_header(chunk: bytes, delimiter: str) -> tuple[bytes, bool]:
    """Drop a first line whose first field starts with a letter (a header)."""
    end = chunk.find(b"\n")
    first = chunk[: end if end >= 0 else len(chunk)]
    field = first.split(delimiter.encode(), 1)[0].strip().lstrip(b"\xef\xbb\xbf")
    if field[:1].isalpha():
        return (chunk[end + 1 :] if end >= 0 else b""), True
    return chunk, False


class Grid:
    """Maps raw timestamps to ticks: `floor((ts - origin) / tick_raw)`."""

    def __init__(self, origin_raw: float | int, tick_raw: float, ts_int: bool):
        self.origin = origin_raw
        self.tick_raw = tick_raw
        self.int_path = ts_int and float(tick_raw).is_integer() and float(origin_raw).is_integer()
        if self.int_path:
            self.origin = int(origin_raw)
            self.tick_int = int(tick_raw)

    def ticks(self, ts: np.ndarray) -> np.ndarray:
        if self.int_path:
            return (ts - self.origin) // self.tick_int
        return np.floor((ts - self.origin) / self.tick_raw).astype(np.int64)

    def tick_of(self, t: float) -> int:
        if self.int_path:
            return (int(t) - self.origin) // self.tick_int
        return math.floor((t - self.origin) / self.tick_raw)


def peek_origin(path: Path, fmt: RequestFormat) -> float | int | None:
    """Earliest valid timestamp in the first chunk with valid records (None: no records)."""
    parser = ChunkParser(fmt.spec, str(path), BadLineLog(keep=0))
    line0 = 1
    for chunk in iter_chunks(path, 1 << 18):
        if line0 == 1:
            chunk, header = _strip_header(chunk, fmt.spec.delimiter)
            line0 = 2 if header else 1
        rows = parser.parse(line0, chunk)
        line0 += parser.chunk_lines
        if rows.n:
            return rows.cols["ts"].min().item()
        if parser.lines_seen > 10000:
            break
    return None


class _Aggregator:
    """Streams one file into per-(tick, volume) sums and tick-sorted extent files."""

    def __init__(self, fmt: RequestFormat, path: Path, grid: Grid, out: Path, reorder_s: float, max_bad_fraction: float):
        self.fmt, self.path, self.grid, self.out = fmt, path, grid, out
        self.log = BadLineLog()
        self.parser = ChunkParser(fmt.spec, path.name, self.log)
        self.max_bad_fraction = max_bad_fraction
        self.reorder_raw = reorder_s / fmt.ts_unit_s
        if fmt.ts_int:
            self.reorder_raw = int(round(self.reorder_raw))
        self.names: list[str] = []
        self.index: dict[str, int] = {}
        self.extent_end = np.zeros(0, np.int64)
        # per-(tick, volume) sums not yet final (ticks still inside the reorder window)
        self.agg_pending = (np.zeros(0, np.int64), np.zeros(0, np.int32), np.zeros((0, 4), np.int64))
        self.agg_ready: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self.agg_ready_rows = 0
        self.agg_rows = 0
        self.agg_writer: pq.ParquetWriter | None = None
        self.runmax = None
        self.ts_min = None
        self.ts_max = None
        self.records = 0
        self.header = False
        self.abnormal: dict[str, int] = {}
        self.ext_files = {name: open(out / f"ext_{name}.bin", "wb") for name, _ in EXT_COLUMNS}
        self.ext_pending = [np.zeros(0, dt) for _, dt in EXT_COLUMNS]
        self.n_ext = 0

    # -- per chunk ---------------------------------------------------------------------
    def feed(self, line0: int, chunk: bytes) -> int:
        """Take one chunk whose first line is number `line0`; returns its number of lines."""
        extra = 0
        if line0 == 1:
            chunk, self.header = _strip_header(chunk, self.fmt.spec.delimiter)
            if self.header:
                line0, extra = 2, 1
        rows = self.parser.parse(line0, chunk)
        check_early(self.log, self.parser.lines_seen, self.path.name, self.max_bad_fraction)
        self._take(rows, line0, chunk)
        return self.parser.chunk_lines + extra

    def _take(self, rows: Rows, line0: int, chunk: bytes) -> None:
        if rows.n == 0:
            return
        ts = rows.cols["ts"]
        pm = np.maximum.accumulate(ts)
        before = np.empty_like(ts)
        before[0] = ts[0] if self.runmax is None else self.runmax
        before[1:] = pm[:-1]
        if self.runmax is not None:
            np.maximum(before, self.runmax, out=before)
        self.runmax = max(pm[-1].item(), self.runmax) if self.runmax is not None else pm[-1].item()
        ooo = ts < before - self.reorder_raw
        if ooo.any():
            why = (
                "timestamp out of order"
                if self.reorder_raw == 0
                else f"timestamp out of order by more than {self.fmt.ts_unit_s * self.reorder_raw:g} s"
            )
            rows = self.parser.flag(rows, ooo, why, chunk, line0)
            if rows.n == 0:
                return
            ts = rows.cols["ts"]
        codes, names = self.fmt.volumes(rows)
        lut = np.array([self._volume(n) for n in names], np.int32)
        vol = lut[codes] if len(names) > 1 else np.full(rows.n, lut[0], np.int32)
        tick = self.grid.ticks(ts)
        is_w = rows.cols["write"]
        unit = self.fmt.size_unit
        size = rows.cols["size"] * unit if unit != 1 else rows.cols["size"]
        offset = rows.cols["offset"] * unit if unit != 1 else rows.cols["offset"]
        self.records += rows.n
        lo, hi = ts.min().item(), ts.max().item()
        self.ts_min = lo if self.ts_min is None else min(self.ts_min, lo)
        self.ts_max = hi if self.ts_max is None else max(self.ts_max, hi)
        for k, n in rows.abnormal.items():
            self.abnormal[k] = self.abnormal.get(k, 0) + n
        np.maximum.at(self.extent_end, vol, offset + size)
        self._aggregate(tick, vol, is_w, size)
        self._extents(tick[is_w], vol[is_w], offset[is_w], size[is_w])

    def _volume(self, name: str) -> int:
        i = self.index.get(name)
        if i is None:
            i = self.index[name] = len(self.names)
            self.names.append(name)
            self.extent_end = np.concatenate([self.extent_end, np.zeros(1, np.int64)])
        return i

    def _aggregate(self, tick: np.ndarray, vol: np.ndarray, is_w: np.ndarray, size: np.ndarray) -> None:
        nv = len(self.names)
        tmin = int(tick.min())
        span = int(tick.max()) - tmin + 1
        key = (tick - tmin) * nv + vol
        if span * nv <= 4 * tick.size + 4096:
            nbins = span * nv
            k2 = key * 2 + is_w
            ops = np.bincount(k2, minlength=2 * nbins).reshape(-1, 2)
            byt = np.bincount(k2, weights=size, minlength=2 * nbins).reshape(-1, 2)
            nz = np.flatnonzero(ops[:, 0] + ops[:, 1])
            keys = nz
        else:
            keys, inv = np.unique(key, return_inverse=True)
            k2 = inv * 2 + is_w
            ops = np.bincount(k2, minlength=2 * keys.size).reshape(-1, 2)
            byt = np.bincount(k2, weights=size, minlength=2 * keys.size).reshape(-1, 2)
            nz = slice(None)
        vals = np.empty((keys.size, 4), np.int64)
        vals[:, 0:2] = ops[nz]
        vals[:, 2:4] = byt[nz]
        tick_p, vol_p, vals_p = _merge([self.agg_pending, (keys // nv + tmin, (keys % nv).astype(np.int32), vals)])
        # ticks below `safe` can receive no more records: they are final
        safe = self.grid.tick_of(self.runmax - self.reorder_raw)
        cut = int(np.searchsorted(tick_p, safe, side="left"))
        self.agg_pending = (tick_p[cut:], vol_p[cut:], vals_p[cut:])
        if cut:
            self.agg_ready.append((tick_p[:cut], vol_p[:cut], vals_p[:cut]))
            self.agg_ready_rows += cut
            if self.agg_ready_rows >= 16384:
                self._write_agg()

    def _write_agg(self) -> None:
        if not self.agg_ready:
            return
        tick = np.concatenate([a[0] for a in self.agg_ready])
        vol = np.concatenate([a[1] for a in self.agg_ready])
        vals = np.concatenate([a[2] for a in self.agg_ready])
        self.agg_ready, self.agg_ready_rows = [], 0
        table = pa.table(
            {
                "tick": tick,
                "vol": vol,
                "read_ops": vals[:, 0],
                "write_ops": vals[:, 1],
                "read_bytes": vals[:, 2],
                "write_bytes": vals[:, 3],
            },
            schema=AGG_SCHEMA,
        )
        if self.agg_writer is None:
            self.agg_writer = pq.ParquetWriter(self.out / "agg.parquet", AGG_SCHEMA)
        self.agg_writer.write_table(table)
        self.agg_rows += tick.size

    def _extents(self, tick, vol, offset, length) -> None:
        cols = [np.concatenate([p, c]) for p, c in zip(self.ext_pending, (tick, vol, offset, length), strict=True)]
        t = cols[0]
        if t.size > 1 and not (t[1:] >= t[:-1]).all():
            order = np.argsort(t, kind="stable")
            cols = [c[order] for c in cols]
            t = cols[0]
        # later valid records are at least runmax - reorder: ticks below that are final
        safe = self.grid.tick_of(self.runmax - self.reorder_raw)
        cut = int(np.searchsorted(t, safe, side="left"))
        self._write_extents([c[:cut] for c in cols])
        self.ext_pending = [c[cut:] for c in cols]

    def _write_extents(self, cols) -> None:
        if cols[0].size:
            for (name, dt), c in zip(EXT_COLUMNS, cols, strict=True):
                np.ascontiguousarray(c, dtype=dt).tofile(self.ext_files[name])
            self.n_ext += int(cols[0].size)

    # -- end ---------------------------------------------------------------------------
    def finish(self) -> dict:
        self._write_extents(self.ext_pending)
        for f in self.ext_files.values():
            f.close()
        if self.agg_pending[0].size:
            self.agg_ready.append(self.agg_pending)
        self._write_agg()
        if self.agg_writer is None:
            pq.write_table(AGG_SCHEMA.empty_table(), self.out / "agg.parquet")
        else:
            self.agg_writer.close()
            self.agg_writer = None
        meta = {
            "family": self.fmt.family,
            "file": self.path.name,
            "volumes": self.names,
            "extent_end": self.extent_end.tolist(),
            "records": self.records,
            "lines": self.parser.lines_seen,
            "header": self.header,
            "log": self.log.to_dict(),
            "abnormal": self.abnormal,
            "ts_min": None if self.ts_min is None else self.fmt.to_unix(self.ts_min),
            "ts_max": None if self.ts_max is None else self.fmt.to_unix(self.ts_max),
            "n_extents": self.n_ext,
        }
        cachemod.write_json(self.out / "meta.json", meta)
        return meta


def _merge(partials):
    """Sum partial (tick, vol, vals) rows sharing a (tick, vol); sort by tick then vol."""
    tick = np.concatenate([p[0] for p in partials])
    vol = np.concatenate([p[1] for p in partials])
    vals = np.concatenate([p[2] for p in partials])
    if tick.size == 0:
        return tick, vol, vals
    order = np.lexsort((vol, tick))
    tick, vol, vals = tick[order], vol[order], vals[order]
    new = np.ones(tick.size, bool)
    new[1:] = (tick[1:] != tick[:-1]) | (vol[1:] != vol[:-1])
    starts = np.flatnonzero(new)
    return tick[starts], vol[starts], np.add.reduceat(vals, starts, axis=0)


@dataclass
class RequestPart:
    """One file's aggregate (from the cache or just built)."""

    path: Path
    meta: dict
    tick: np.ndarray
    vol: np.ndarray
    vals: np.ndarray  # int64 [rows, 4]: read_ops, write_ops, read_bytes, write_bytes
    ext: dict[str, np.ndarray]  # column -> (memory-mapped) array, sorted by tick
    cache_hit: bool
    folder: Path

    @property
    def names(self) -> list[str]:
        return self.meta["volumes"]

    @property
    def log(self) -> BadLineLog:
        return BadLineLog.from_dict(self.meta["log"])


def _load_part(path: Path, folder: Path, hit: bool) -> RequestPart:
    meta = cachemod.read_json(folder / "meta.json")
    t = pq.read_table(folder / "agg.parquet")
    vals = (
        np.column_stack([t.column(c).to_numpy() for c in ("read_ops", "write_ops", "read_bytes", "write_bytes")])
        if t.num_rows
        else np.zeros((0, 4), np.int64)
    )
    n = int(meta["n_extents"])
    ext = {}
    for name, dt in EXT_COLUMNS:
        ext[name] = np.memmap(folder / f"ext_{name}.bin", dtype=dt, mode="r", shape=(n,)) if n else np.zeros(0, dt)
    return RequestPart(path, meta, t.column("tick").to_numpy(), t.column("vol").to_numpy(), vals, ext, hit, folder)


def load_parts(
    fmt: RequestFormat,
    files: list[Path],
    tick_trace_s: float,
    start: float | None,
    reorder_s: float,
    max_bad_fraction: float,
    use_cache: bool,
) -> tuple[list[RequestPart], Grid, float]:
    """Aggregate (or fetch from the cache) every file on one grid; returns parts, grid, origin (Unix s)."""
    if start is not None:
        origin_raw: float | int = fmt.from_unix(start)
    else:
        peeks = [o for o in (peek_origin(f, fmt) for f in files) if o is not None]
        if not peeks:
            # nothing valid at the head of any file: let the full read report why
            origin_raw = 0
        else:
            origin_raw = min(peeks)
    tick_raw = tick_trace_s / fmt.ts_unit_s
    if fmt.ts_int and abs(tick_raw - round(tick_raw)) < 1e-9 * max(1.0, tick_raw):
        tick_raw = float(round(tick_raw))
    grid = Grid(origin_raw, tick_raw, fmt.ts_int)
    digests = cachemod.file_digests(files)
    parts = []
    for path, digest in zip(files, digests, strict=True):
        key = {
            "kind": "request",
            "family": fmt.family,
            "digest": digest,
            "origin": repr(grid.origin),
            "tick_raw": repr(tick_raw),
            "reorder_s": reorder_s,
        }
        folder = cachemod.entry_dir(fmt.family, key) if use_cache else None
        if folder is not None and (folder / "meta.json").exists():
            part = _load_part(path, folder, True)
        else:
            part = _build_part(fmt, path, grid, reorder_s, max_bad_fraction, folder)
        BadLineLog.from_dict(part.meta["log"]).check(path.name, int(part.meta["lines"]), max_bad_fraction)
        parts.append(part)
    return parts, grid, fmt.to_unix(origin_raw)


def _build_part(
    fmt: RequestFormat, path: Path, grid: Grid, reorder_s: float, max_bad_fraction: float, folder: Path | None
) -> RequestPart:
    if folder is not None:
        try:
            with cachemod.building(folder) as tmp:
                _aggregate_file(fmt, path, grid, tmp, reorder_s, max_bad_fraction)
            if (folder / "meta.json").exists():
                return _load_part(path, folder, False)
        except OSError:
            pass  # unwritable cache (permissions, read-only, full): fall back to a private temporary folder
    tmp = Path(tempfile.mkdtemp(prefix="piop-trace-"))
    try:
        _aggregate_file(fmt, path, grid, tmp, reorder_s, max_bad_fraction)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    part = _load_part(path, tmp, False)
    weakref.finalize(part, shutil.rmtree, tmp, True)
    return part


def _aggregate_file(
    fmt: RequestFormat,
    path: Path,
    grid: Grid,
    out: Path,
    reorder_s: float,
    max_bad_fraction: float,
    block_bytes: int | None = None,
) -> dict:
    agg = _Aggregator(fmt, path, grid, out, reorder_s, max_bad_fraction)
    try:
        line0 = 1
        for chunk in iter_chunks(path, block_bytes):
            line0 += agg.feed(line0, chunk)
        meta = agg.finish()
    finally:
        for f in agg.ext_files.values():
            f.close()
        if agg.agg_writer is not None:
            agg.agg_writer.close()
    if agg.parser.lines_seen == 0:
        raise TraceFormatError(f"{path}: no records (empty file?)")
    return meta


class RequestSeries:
    """Serves per-tick load and write extents of the selected volumes from file parts.

    Ticks here are natural ticks (0 = first tick of the selected volumes); `shift` maps
    them to the grid's raw ticks.
    """

    def __init__(self, parts: list[RequestPart], selected: list[str], shift: int, n_ticks: int, tick_s: float):
        self.parts = parts
        self.shift = shift
        self.n_ticks = n_ticks
        self.tick_s = tick_s
        self.n_volumes = len(selected)
        col_of = {name: i for i, name in enumerate(selected)}
        self.luts = [np.array([col_of.get(n, -1) for n in p.names] or [-1], np.int32) for p in parts]
        ticks, cols, vals = [], [], []
        for p, lut in zip(parts, self.luts, strict=True):
            c = lut[p.vol] if p.vol.size else np.zeros(0, np.int32)
            t = p.tick - shift
            keep = (c >= 0) & (t >= 0) & (t < n_ticks)
            ticks.append(t[keep])
            cols.append(c[keep])
            vals.append(p.vals[keep])
        self.tick, self.col, self.vals = _merge(list(zip(ticks, cols, vals, strict=True)))

    def values(self, k0: int, k1: int) -> dict[str, np.ndarray]:
        n = k1 - k0
        i0, i1 = np.searchsorted(self.tick, [k0, k1])
        t = self.tick[i0:i1] - k0
        c = self.col[i0:i1]
        v = self.vals[i0:i1]
        out = {}
        for j, name in enumerate(("read_iops", "write_iops")):
            a = np.zeros((n, self.n_volumes), np.float32)
            a[t, c] = v[:, j] / self.tick_s
            out[name] = a
        for j, name in enumerate(("read_mbps", "write_mbps")):
            a = np.zeros((n, self.n_volumes), np.float32)
            a[t, c] = v[:, 2 + j] / (1e6 * self.tick_s)
            out[name] = a
        return out

    def extents(self, k0: int, k1: int) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
        """Write extents with natural tick in [k0, k1): list of (tick - k0, col, offset, length) per part."""
        found = []
        for p, lut in zip(self.parts, self.luts, strict=True):
            et = p.ext["tick"]
            if et.size == 0:
                continue
            i0, i1 = np.searchsorted(et, [k0 + self.shift, k1 + self.shift])
            if i1 <= i0:
                continue
            c = lut[np.asarray(p.ext["vol"][i0:i1])]
            keep = c >= 0
            t = np.asarray(et[i0:i1]) - (self.shift + k0)
            found.append((t[keep], c[keep], np.asarray(p.ext["offset"][i0:i1])[keep], np.asarray(p.ext["length"][i0:i1])[keep]))
        return found


def split_extents(found, n_volumes: int, offset_ticks: int = 0) -> dict[int, tuple]:
    """Group (tick, col, offset, length) tuples by column, each sorted by tick."""
    if not found:
        return {}
    t = np.concatenate([f[0] for f in found]) + offset_ticks
    c = np.concatenate([f[1] for f in found])
    o = np.concatenate([f[2] for f in found])
    n = np.concatenate([f[3] for f in found])
    order = np.lexsort((t, c))
    t, c, o, n = t[order], c[order], o[order], n[order]
    bounds = np.searchsorted(c, np.arange(n_volumes + 1))
    out = {}
    for col in range(n_volumes):
        a, b = bounds[col], bounds[col + 1]
        if b > a:
            out[col] = (t[a:b], o[a:b], n[a:b])
    return out


def make_extents(t: np.ndarray, o: np.ndarray, n: np.ndarray) -> Extents:
    return Extents(tick=t.astype(np.int32), offset=o.astype(np.int64), length=n.astype(np.int64))

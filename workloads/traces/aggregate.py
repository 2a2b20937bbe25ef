"""Streaming aggregation of one request-level trace file onto a tick grid.

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

Records up to the format's `reorder_s` earlier than the latest one seen are accepted
(`formats.py`); earlier ones count as malformed. A file's aggregate is written to a
folder (`agg.parquet`, `ext_*.bin`, `meta.json`) that `request.py` caches.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from workloads.traces import cache as cachemod
from workloads.traces.errors import BadLineLog, TraceFormatError
from workloads.traces.formats import RequestFormat
from workloads.traces.parse import ChunkParser, Rows, check_early, iter_chunks

#: the per-(tick, volume) sums, in the order of an aggregate's value columns
AGG_VALUES = ("read_ops", "write_ops", "read_bytes", "write_bytes")
AGG_SCHEMA = pa.schema([("tick", pa.int64()), ("vol", pa.int32())] + [(c, pa.int64()) for c in AGG_VALUES])
EXT_COLUMNS = (("tick", np.int64), ("vol", np.int32), ("offset", np.int64), ("length", np.int64))


def strip_header(chunk: bytes, delimiter: str) -> tuple[bytes, bool]:
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
            chunk, header = strip_header(chunk, fmt.spec.delimiter)
            line0 = 2 if header else 1
        rows = parser.parse(line0, chunk)
        line0 += parser.chunk_lines
        if rows.n:
            return rows.cols["ts"].min().item()
        if parser.lines_seen > 10000:
            break
    return None


class Aggregator:
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
            chunk, self.header = strip_header(chunk, self.fmt.spec.delimiter)
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
        tick_p, vol_p, vals_p = merge_sums([self.agg_pending, (keys // nv + tmin, (keys % nv).astype(np.int32), vals)])
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


def merge_sums(partials):
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


def aggregate_file(
    fmt: RequestFormat,
    path: Path,
    grid: Grid,
    out: Path,
    reorder_s: float,
    max_bad_fraction: float,
    block_bytes: int | None = None,
) -> dict:
    """Stream `path` into the folder `out` (aggregate, extents, meta); returns the meta."""
    agg = Aggregator(fmt, path, grid, out, reorder_s, max_bad_fraction)
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

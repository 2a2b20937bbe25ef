"""A request-level trace as per-file aggregates and the series served from them.

`load_parts` puts every file of a trace on one tick grid and takes each file's
aggregate (`aggregate.py`) from the cache, or builds it: the cache key is the file's
content hash, the grid origin, the trace-time tick and the reorder tolerance
(`cache.py`). `RequestSeries` serves per-tick load and write extents of the selected
volumes from those parts.
"""

from __future__ import annotations

import shutil
import tempfile
import weakref
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from workloads.base import Extents
from workloads.traces import cache as cachemod
from workloads.traces.aggregate import AGG_VALUES, EXT_COLUMNS, Grid, aggregate_file, merge_sums, peek_origin
from workloads.traces.errors import BadLineLog
from workloads.traces.formats import RequestFormat


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
    vals = np.column_stack([t.column(c).to_numpy() for c in AGG_VALUES]) if t.num_rows else np.zeros((0, 4), np.int64)
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


def _build_part(fmt: RequestFormat, path: Path, grid: Grid, reorder_s: float, max_bad_fraction: float, folder: Path | None) -> RequestPart:
    if folder is not None:
        try:
            with cachemod.building(folder) as tmp:
                aggregate_file(fmt, path, grid, tmp, reorder_s, max_bad_fraction)
            if (folder / "meta.json").exists():
                return _load_part(path, folder, False)
        except OSError:
            pass  # unwritable cache (permissions, read-only, full): fall back to a private temporary folder
    tmp = Path(tempfile.mkdtemp(prefix="piop-trace-"))
    try:
        aggregate_file(fmt, path, grid, tmp, reorder_s, max_bad_fraction)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    part = _load_part(path, tmp, False)
    weakref.finalize(part, shutil.rmtree, tmp, True)
    return part


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
        self.tick, self.col, self.vals = merge_sums(list(zip(ticks, cols, vals, strict=True)))

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

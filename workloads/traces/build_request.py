"""Builds a `TraceSource` from a request-level trace (MSR Cambridge, systor'17, Tencent CBS).

Every request is kept: per tick, IOPS = requests / tick_s and MB/s = bytes / 1e6 /
tick_s, and `LoadBlock.extents` carries every write's (tick, byte offset, length), so
changed-block tracking is exact. Volumes are ranked by their totals over the files.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from workloads.base import VolumeMeta
from workloads.traces import detect as det
from workloads.traces.errors import BadLineLog, TraceError
from workloads.traces.families import RequestFamily, io_bytes, working_set
from workloads.traces.params import calendar_seconds, parse_params, positive
from workloads.traces.request import RequestPart, RequestSeries, load_parts
from workloads.traces.select import select_volumes
from workloads.traces.source import TraceSource

_MODELS = {
    "iops": "requests per tick / tick_s (reads and writes counted separately)",
    "mbps": "request bytes per tick / 1e6 / tick_s (MB = 10^6 bytes)",
    "grid": "tick k covers [start_epoch + k*tick, +tick) in trace time; the grid is anchored at the earliest timestamp "
    "in the first chunk of the trace's files (or at `start`), and tick 0 is the first tick holding a record of the selected volumes",
    "time_scale": "a trace second lasts time_scale simulated seconds; requests are conserved, rates scale by 1/time_scale",
    "cbt": "exact: LoadBlock.extents carries every write's (tick, byte offset, length) for each volume",
    "covariates": "none in the trace: cpu_pct, mem_pct and net_mbps are 0",
}


@dataclass
class _Totals:
    """Per-volume sums over every file (volumes in first-seen order)."""

    names: list[str]
    luts: list[np.ndarray]  # per part: its volume codes -> index into names
    sums: np.ndarray  # [V, 4]: read_ops, write_ops, read_bytes, write_bytes
    tmin: np.ndarray  # first and last grid tick with a record
    tmax: np.ndarray
    extent_end: np.ndarray  # highest byte written or read + 1
    before: np.ndarray  # requests before `start`

    def activity(self, rank_by: str) -> np.ndarray:
        s = self.sums
        return {"bytes": s[:, 2] + s[:, 3], "iops": s[:, 0] + s[:, 1], "write_bytes": s[:, 3]}[rank_by]


def _totals(parts: list[RequestPart], has_start: bool) -> _Totals:
    names: list[str] = []
    index: dict[str, int] = {}
    luts = []
    for part in parts:
        lut = []
        for n in part.names:
            if n not in index:
                index[n] = len(names)
                names.append(n)
            lut.append(index[n])
        luts.append(np.array(lut or [0], np.int64))
    nv = len(names)
    t = _Totals(
        names,
        luts,
        np.zeros((nv, 4)),
        np.full(nv, np.iinfo(np.int64).max),
        np.full(nv, np.iinfo(np.int64).min),
        np.zeros(nv, np.int64),
        np.zeros(nv),
    )
    for part, lut in zip(parts, luts, strict=True):
        if part.vol.size:
            g = lut[part.vol]
            np.add.at(t.sums, g, part.vals)
            np.minimum.at(t.tmin, g, part.tick)
            np.maximum.at(t.tmax, g, part.tick)
            if has_start:
                early = part.tick < 0
                np.add.at(t.before, g[early], part.vals[early, 0] + part.vals[early, 1])
        if part.names:
            np.maximum.at(t.extent_end, lut[: len(part.names)], np.array(part.meta["extent_end"], np.int64))
    return t


def _volume_meta(family: RequestFamily, t: _Totals, i: int, p: dict[str, Any]) -> VolumeMeta:
    vid = t.names[i]
    kind = family.volume_kind(vid, p)
    w_ops, w_bytes = t.sums[i, 1], t.sums[i, 3]
    mean_w = int(round(w_bytes / w_ops)) if w_ops > 0 else io_bytes(kind, None)
    app: dict[str, str | float] = {
        "family": family.name,
        "trace_volume": vid,
        "records": float(t.sums[i, 0] + t.sums[i, 1]),
        "read_bytes": float(t.sums[i, 2]),
        "write_bytes": float(w_bytes),
        "mean_write_bytes": float(mean_w),
        "extent_end_bytes": float(t.extent_end[i]),
    }
    return VolumeMeta(p["id_prefix"] + vid, kind, app, working_set(kind), max(512, mean_w))


def _merged_log(parts: list[RequestPart]) -> tuple[BadLineLog, dict[str, int]]:
    """The malformed-line log and the abnormal-value counts of all files."""
    log = BadLineLog()
    for part in parts:
        log.merge(part.log)
    abnormal: dict[str, int] = {}
    for part in parts:
        for k, n in part.meta.get("abnormal", {}).items():
            abnormal[k] = abnormal.get(k, 0) + n
    return log, abnormal


def request_source(family: RequestFamily, *, path, tick_s, seed=None, **params) -> TraceSource:
    """A `TraceSource` over the request-level trace at `path` (see `params.py`, `families.py`)."""
    p = parse_params(family, params)
    tick_s = positive("tick_s", tick_s)
    fmt = family.format
    files = det.family_files(path, family.name)
    tick_trace = tick_s / p["time_scale"]
    start = None if p["start"] is None else calendar_seconds(p["start"], "start")
    reorder = fmt.reorder_s if p["reorder_s"] is None else float(p["reorder_s"])
    parts, _grid, origin = load_parts(fmt, files, tick_trace, start, reorder, p["max_bad_fraction"], p["cache"])
    t = _totals(parts, start is not None)
    nv = len(t.names)
    if nv == 0:
        raise TraceError(f"{path}: no valid records")
    sel = select_volumes(family.name, t.names, t.activity(p["rank_by"]), p["volumes"], p["top"])
    shift = 0 if start is not None else int(t.tmin[sel].min())
    last = int(t.tmax[sel].max())
    if last < shift:
        raise TraceError(f"{path}: no records of the selected volumes at or after start {start}")
    n_ticks = last - shift + 1
    backend = RequestSeries(parts, [t.names[i] for i in sel], shift, n_ticks, tick_s)
    log, abnormal = _merged_log(parts)
    info = {
        "level": "request",
        "trace_first_timestamp": min((pt.meta["ts_min"] for pt in parts if pt.meta["ts_min"] is not None), default=None),
        "trace_last_timestamp": max((pt.meta["ts_max"] for pt in parts if pt.meta["ts_max"] is not None), default=None),
        "trace_tick_s": tick_trace,
        "grid_origin_epoch": origin,
        "reorder_s": reorder,
        "selection": {"volumes": p["volumes"], "top": p["top"], "rank_by": p["rank_by"], "available": nv},
        "volume_ids_note": fmt.volume_note,
        "records_before_start_dropped": int(t.before[sel].sum()) if start is not None else 0,
        "models": {**_MODELS, "past_end": "loop" if (p["loop"] is True) else "zeros"},
        "cache_dirs": sorted({str(pt.folder) for pt in parts}),
        "notes": [f"{k}: {n}" for k, n in abnormal.items()],
    }
    return TraceSource(
        family=family.name,
        title=fmt.title,
        path=str(path),
        files=[str(f) for f in files],
        tick_s=tick_s,
        time_scale=p["time_scale"],
        loop=bool(p["loop"]) if p["loop"] is not None else False,
        start_epoch=origin + shift * tick_trace,
        n_ticks=n_ticks,
        volumes=[_volume_meta(family, t, i, p) for i in sel],
        backend=backend,
        has_extents=True,
        log=log,
        records=sum(int(pt.meta["records"]) for pt in parts),
        info=info,
        seed=seed,
        cache_hit=all(pt.cache_hit for pt in parts),
    )

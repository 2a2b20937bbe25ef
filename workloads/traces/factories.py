"""Trace factories registered in `workloads.registry.TRACES`.

`factory(*, path, tick_s, seed, **params) -> TraceSource`. Names: `bitbrains`,
`alibaba`, `msr`, `systor`, `tencent`, and `auto` (family detected from the content).

Parameters common to every family:

- `volumes`: ids (or glob patterns) to keep, in that order; default all. Ids are the
  trace's own: Bitbrains file stem ("20"), Alibaba machine ("m_1932"), MSR
  "<host>_<disk>" ("hm_0"), systor "LUN<n>", Tencent VolumeID ("1063").
- `top`: keep the `top` most active volumes (by `rank_by`: "bytes" (read + write,
  default), "iops" or "write_bytes"), most active first.
- `time_scale` (default 1): one trace second lasts `time_scale` simulated seconds.
  Request-level traces keep every request, so bytes and I/O counts are conserved and
  rates scale by 1 / time_scale; interval traces keep their rates (a slowed-down series).
- `loop`: past the end, repeat the trace (default for interval traces) or serve zeros
  (default for request-level traces).
- `start`: tick 0 (trace time: Unix seconds, or seconds since the trace start for
  Alibaba; an ISO date string is calendar time). Default: the first timestamp of the
  selected volumes.
- `kind`: workload kind of every volume; `kinds`: {volume id or glob: kind}. Defaults:
  Bitbrains "vm", Alibaba "vm" (co-located batch and online work on one machine),
  systor'17 "vm" (VDI), Tencent CBS "vm" (cloud block volumes), MSR by host role
  (`MSR_HOST_KINDS`: servers of an enterprise data centre, mostly "fileserver").
- `max_bad_fraction` (default 0.001): tolerated malformed lines per file.
- `cache` (default True): use the cache folder (`$PIOP_CACHE` or `.cache/piop`).
- `id_prefix` (default ""): prefix of `VolumeMeta.volume_id` (to keep fleet ids unique).

Request-level only: `reorder_s` (tolerated timestamp disorder; MSR 0, others 5 s).
Interval only: `resample` ("hold" | "linear"), `gap_fill` ("hold" | "zero"),
`max_gap_s`, `read_io_bytes` / `write_io_bytes` (override the per-kind I/O size used to
derive IOPS). Bitbrains: `months` (e.g. ["2013-7", 8]). Alibaba: `epoch` (calendar
time of trace time 0; default 0 = 1970-01-01, the real date is undisclosed),
`nominal_mbps` (500: disk_io_percent 100 % = 500 MB/s, the "ssd" device class's
bandwidth), `read_fraction` (0.5), `nic_mbps` (1250 = 10 GbE).
"""

from __future__ import annotations

import math
from fnmatch import fnmatch
from pathlib import Path

import numpy as np

from workloads.base import VolumeMeta, WorkingSet
from workloads.registry import TRACES
from workloads.traces import detect as det
from workloads.traces.errors import MAX_BAD_FRACTION, BadLineLog, TraceError
from workloads.traces.interval import (
    GAP_FACTOR,
    NOMINAL_INTERVAL_S,
    IntervalSeries,
    alibaba_standard,
    median_interval,
    read_native,
    span,
)
from workloads.traces.request import FORMATS, RequestSeries, load_parts
from workloads.traces.source import TraceSource

FAMILY_KIND = {"bitbrains": "vm", "alibaba": "vm", "msr": "fileserver", "systor": "vm", "tencent": "vm"}

#: MSR Cambridge server roles (Narayanan et al., FAST'08) -> workload kind
MSR_HOST_KINDS = {
    "usr": "fileserver",  # user home directories
    "proj": "fileserver",  # project directories
    "prn": "fileserver",  # print server
    "hm": "fileserver",  # hardware monitoring
    "rsrch": "fileserver",  # research projects
    "prxy": "fileserver",  # firewall / web proxy
    "src1": "fileserver",  # source control
    "src2": "fileserver",  # source control
    "stg": "fileserver",  # web staging
    "ts": "vm",  # terminal server
    "web": "database",  # web / SQL server
    "mds": "fileserver",  # media server
    "wdev": "fileserver",  # test web server
}

#: mean I/O size per kind, used to derive IOPS from MB/s where a trace has no counts
IO_BYTES = {"database": 16 * 1024, "vm": 32 * 1024, "fileserver": 64 * 1024}
DEFAULT_IO_BYTES = 32 * 1024

#: write hot sets per kind for the simulator's working-set CBT model (interval traces);
#: the same Zipf exponents as the synthetic generators' defaults
WORKING_SETS = {"database": WorkingSet(2.0), "vm": WorkingSet(1.85), "fileserver": WorkingSet(1.5)}

_COMMON = {
    "volumes": None,
    "top": None,
    "rank_by": "bytes",
    "time_scale": 1.0,
    "loop": None,
    "start": None,
    "kind": None,
    "kinds": None,
    "max_bad_fraction": MAX_BAD_FRACTION,
    "cache": True,
    "id_prefix": "",
}
_REQUEST = {"reorder_s": None}
_INTERVAL = {"resample": "hold", "gap_fill": "hold", "max_gap_s": None, "read_io_bytes": None, "write_io_bytes": None}
PARAMS = {
    "msr": {**_COMMON, **_REQUEST},
    "systor": {**_COMMON, **_REQUEST},
    "tencent": {**_COMMON, **_REQUEST},
    "bitbrains": {**_COMMON, **_INTERVAL, "months": None},
    "alibaba": {**_COMMON, **_INTERVAL, "epoch": 0.0, "nominal_mbps": 500.0, "read_fraction": 0.5, "nic_mbps": 1250.0},
}


# ----------------------------------------------------------------------------- parameters


def _params(family: str, given: dict) -> dict:
    known = PARAMS[family]
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise TraceError(f"trace family {family!r}: unknown parameter(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    p = {**known, **given}
    if isinstance(p["volumes"], str | int):
        p["volumes"] = [p["volumes"]]
    if p["volumes"] is not None:
        p["volumes"] = [str(v) for v in p["volumes"]]
        if not p["volumes"]:
            raise TraceError("volumes: empty list")
    if p["top"] is not None and (not isinstance(p["top"], int) or isinstance(p["top"], bool) or p["top"] < 1):
        raise TraceError(f"top: must be a positive integer (got {p['top']!r})")
    if p["rank_by"] not in ("bytes", "iops", "write_bytes"):
        raise TraceError(f"rank_by: one of bytes, iops, write_bytes (got {p['rank_by']!r})")
    _positive("time_scale", p["time_scale"])
    if not (isinstance(p["max_bad_fraction"], int | float) and 0 <= p["max_bad_fraction"] <= 1):
        raise TraceError(f"max_bad_fraction: a number in [0, 1] (got {p['max_bad_fraction']!r})")
    if p["kinds"] is not None and not isinstance(p["kinds"], dict):
        raise TraceError("kinds: a mapping {volume id or pattern: kind}")
    if p["loop"] is not None and not isinstance(p["loop"], bool):
        raise TraceError(f"loop: true or false (got {p['loop']!r})")
    if family in ("bitbrains", "alibaba"):
        if p["resample"] not in ("hold", "linear"):
            raise TraceError(f"resample: 'hold' or 'linear' (got {p['resample']!r})")
        if p["gap_fill"] not in ("hold", "zero"):
            raise TraceError(f"gap_fill: 'hold' or 'zero' (got {p['gap_fill']!r})")
        for k in ("max_gap_s", "read_io_bytes", "write_io_bytes"):
            if p[k] is not None:
                _positive(k, p[k])
    if family == "alibaba":
        _positive("nominal_mbps", p["nominal_mbps"])
        _positive("nic_mbps", p["nic_mbps"])
        if not 0 <= p["read_fraction"] <= 1:
            raise TraceError(f"read_fraction: in [0, 1] (got {p['read_fraction']!r})")
    if p.get("reorder_s") is not None and (not isinstance(p["reorder_s"], int | float) or p["reorder_s"] < 0):
        raise TraceError(f"reorder_s: a number >= 0 (got {p['reorder_s']!r})")
    return p


def _positive(name: str, v) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or v <= 0:
        raise TraceError(f"{name}: must be a positive number (got {v!r})")
    return float(v)


def _calendar(v, what: str) -> float:
    """Seconds from a number or an ISO date (naive = UTC)."""
    if isinstance(v, bool):
        raise TraceError(f"{what}: a number of seconds or an ISO date (got {v!r})")
    if isinstance(v, int | float):
        return float(v)
    try:
        return float(v)
    except (TypeError, ValueError):
        pass
    import pandas as pd

    try:
        ts = pd.Timestamp(v)
    except (TypeError, ValueError):
        raise TraceError(f"{what}: a number of seconds or an ISO date (got {v!r})") from None
    if ts.tzinfo is None:
        ts = ts.tz_localize("UTC")
    return float(ts.timestamp())


def _is_date(v) -> bool:
    if isinstance(v, int | float):
        return False
    try:
        float(v)
        return False
    except (TypeError, ValueError):
        return True


def _select(family: str, names: list[str], activity: np.ndarray, volumes: list[str] | None, top: int | None) -> list[int]:
    order = sorted(range(len(names)), key=lambda i: det.natural_key(names[i]))
    if volumes is not None:
        index = {n: i for i, n in enumerate(names)}
        chosen: list[int] = []
        seen: set[int] = set()
        for v in volumes:
            if any(ch in v for ch in "*?["):
                matches = [i for i in order if fnmatch(names[i], v)]
            else:
                matches = [index[v]] if v in index else []
            if not matches:
                some = ", ".join(names[i] for i in order[:8])
                raise TraceError(
                    f"{family}: no volume {v!r} in the trace (it has {len(names)}: {some}{', ...' if len(names) > 8 else ''})"
                )
            for m in matches:
                if m not in seen:
                    seen.add(m)
                    chosen.append(m)
        order = chosen
    if top is not None:
        order = sorted(order, key=lambda i: (-activity[i], det.natural_key(names[i])))[:top]
    return order


def _kind(family: str, vid: str, p: dict) -> str:
    kinds = p["kinds"] or {}
    if vid in kinds:
        return str(kinds[vid])
    for pat, k in kinds.items():
        if fnmatch(vid, str(pat)):
            return str(k)
    if p["kind"] is not None:
        return str(p["kind"])
    if family == "msr":
        return MSR_HOST_KINDS.get(vid.rsplit("_", 1)[0].lower(), FAMILY_KIND["msr"])
    return FAMILY_KIND[family]


def _io_bytes(kind: str, override) -> int:
    return int(override) if override is not None else IO_BYTES.get(kind, DEFAULT_IO_BYTES)


# ----------------------------------------------------------------------------- request-level


def request_source(family: str, *, path, tick_s, seed=None, **params) -> TraceSource:
    p = _params(family, params)
    tick_s = _positive("tick_s", tick_s)
    fmt = FORMATS[family]
    files = det.family_files(path, family)
    tick_trace = tick_s / p["time_scale"]
    start = None if p["start"] is None else _calendar(p["start"], "start")
    reorder = fmt.reorder_s if p["reorder_s"] is None else float(p["reorder_s"])
    parts, grid, origin = load_parts(fmt, files, tick_trace, start, reorder, p["max_bad_fraction"], p["cache"])

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
    if nv == 0:
        raise TraceError(f"{path}: no valid records")
    totals = np.zeros((nv, 4))
    tmin = np.full(nv, np.iinfo(np.int64).max)
    tmax = np.full(nv, np.iinfo(np.int64).min)
    ext_end = np.zeros(nv, np.int64)
    before = np.zeros(nv)
    for part, lut in zip(parts, luts, strict=True):
        if part.vol.size:
            g = lut[part.vol]
            np.add.at(totals, g, part.vals)
            np.minimum.at(tmin, g, part.tick)
            np.maximum.at(tmax, g, part.tick)
            if start is not None:
                early = part.tick < 0
                np.add.at(before, g[early], part.vals[early, 0] + part.vals[early, 1])
        if part.names:
            np.maximum.at(ext_end, lut[: len(part.names)], np.array(part.meta["extent_end"], np.int64))
    activity = {"bytes": totals[:, 2] + totals[:, 3], "iops": totals[:, 0] + totals[:, 1], "write_bytes": totals[:, 3]}[
        p["rank_by"]
    ]
    sel = _select(family, names, activity, p["volumes"], p["top"])
    shift = 0 if start is not None else int(tmin[sel].min())
    last = int(tmax[sel].max())
    if last < shift:
        raise TraceError(f"{path}: no records of the selected volumes at or after start {start}")
    n_ticks = last - shift + 1
    sel_names = [names[i] for i in sel]
    backend = RequestSeries(parts, sel_names, shift, n_ticks, tick_s)

    metas = []
    for i in sel:
        vid = names[i]
        kind = _kind(family, vid, p)
        w_ops, w_bytes = totals[i, 1], totals[i, 3]
        mean_w = int(round(w_bytes / w_ops)) if w_ops > 0 else _io_bytes(kind, None)
        app: dict[str, str | float] = {
            "family": family,
            "trace_volume": vid,
            "records": float(totals[i, 0] + totals[i, 1]),
            "read_bytes": float(totals[i, 2]),
            "write_bytes": float(w_bytes),
            "mean_write_bytes": float(mean_w),
            "extent_end_bytes": float(ext_end[i]),
        }
        metas.append(VolumeMeta(p["id_prefix"] + vid, kind, app, WORKING_SETS.get(kind, WorkingSet()), max(512, mean_w)))

    log = BadLineLog()
    for part in parts:
        log.merge(part.log)
    abnormal: dict[str, int] = {}
    for part in parts:
        for k, n in part.meta.get("abnormal", {}).items():
            abnormal[k] = abnormal.get(k, 0) + n
    ts_min = min((pt.meta["ts_min"] for pt in parts if pt.meta["ts_min"] is not None), default=None)
    ts_max = max((pt.meta["ts_max"] for pt in parts if pt.meta["ts_max"] is not None), default=None)
    info = {
        "level": "request",
        "trace_first_timestamp": ts_min,
        "trace_last_timestamp": ts_max,
        "trace_tick_s": tick_trace,
        "grid_origin_epoch": origin,
        "reorder_s": reorder,
        "selection": {"volumes": p["volumes"], "top": p["top"], "rank_by": p["rank_by"], "available": nv},
        "volume_ids_note": fmt.volume_note,
        "records_before_start_dropped": int(before[sel].sum()) if start is not None else 0,
        "models": {
            "iops": "requests per tick / tick_s (reads and writes counted separately)",
            "mbps": "request bytes per tick / 1e6 / tick_s (MB = 10^6 bytes)",
            "grid": "tick k covers [start_epoch + k*tick, +tick) in trace time; the grid is anchored at the earliest timestamp "
            "in the first chunk of the trace's files (or at `start`), and tick 0 is the first tick holding a record of the selected volumes",
            "time_scale": "a trace second lasts time_scale simulated seconds; requests are conserved, rates scale by 1/time_scale",
            "cbt": "exact: LoadBlock.extents carries every write's (tick, byte offset, length) for each volume",
            "covariates": "none in the trace: cpu_pct, mem_pct and net_mbps are 0",
            "past_end": "loop" if (p["loop"] is True) else "zeros",
        },
        "cache_dirs": sorted({str(pt.folder) for pt in parts}),
        "notes": [f"{k}: {n}" for k, n in abnormal.items()],
    }
    return TraceSource(
        family=family,
        title=fmt.title,
        path=str(path),
        files=[str(f) for f in files],
        tick_s=tick_s,
        time_scale=p["time_scale"],
        loop=bool(p["loop"]) if p["loop"] is not None else False,
        start_epoch=origin + shift * tick_trace,
        n_ticks=n_ticks,
        volumes=metas,
        backend=backend,
        has_extents=True,
        log=log,
        records=sum(int(pt.meta["records"]) for pt in parts),
        info=info,
        seed=seed,
        cache_hit=all(pt.cache_hit for pt in parts),
    )


# ----------------------------------------------------------------------------- interval


def _bitbrains_files(path, months, volumes) -> tuple[list[Path], list[str], list[str]]:
    root = Path(path)
    if not root.exists():
        raise TraceError(f"{root}: no such file or folder")
    if root.is_file():
        if months is not None:
            raise TraceError("months: give the Bitbrains folder (with month sub-folders), not a file")
        files = [root]
    else:
        mdirs = det.month_dirs(root)
        if mdirs:
            if months is not None:
                mdirs = _filter_months(mdirs, months)
            files = [f for d in mdirs for f in det.data_files(d)]
        else:
            if months is not None:
                raise TraceError(f"months: {root} has no month sub-folders (e.g. 2013-7)")
            files = det.data_files(root)
    if not files:
        raise TraceError(f"{root}: no Bitbrains files")
    ids = [det.file_stem(f) for f in files]
    if volumes is not None:
        keep = [
            i for i, vid in enumerate(ids) if any((fnmatch(vid, v) if any(c in v for c in "*?[") else vid == v) for v in volumes)
        ]
        missing = [v for v in volumes if not any((fnmatch(vid, v) if any(c in v for c in "*?[") else vid == v) for vid in ids)]
        if missing:
            some = sorted(set(ids), key=det.natural_key)
            raise TraceError(
                f"bitbrains: no volume {missing[0]!r} in {root} (it has {len(some)}: {', '.join(some[:8])}{', ...' if len(some) > 8 else ''})"
            )
        files = [files[i] for i in keep]
        ids = [ids[i] for i in keep]
    return files, ids, [str(f) for f in files]


def _filter_months(mdirs: list[Path], months) -> list[Path]:
    if isinstance(months, str | int):
        months = [months]
    keys = {d: det.month_key(d.name) for d in mdirs}
    chosen = []
    for m in months:
        s = str(m).strip()
        if s.isdigit() and len(s) <= 2:
            hit = [d for d in mdirs if keys[d][1] == int(s)]
        else:
            k = det.month_key(s)
            hit = [d for d in mdirs if keys[d][:2] == k[:2]] if k[0] < 10**6 else [d for d in mdirs if d.name == s]
        if not hit:
            raise TraceError(f"months: no month {m!r}; have {', '.join(d.name for d in mdirs)}")
        chosen.extend(d for d in hit if d not in chosen)
    return sorted(chosen, key=lambda d: keys[d])


def interval_source(family: str, *, path, tick_s, seed=None, **params) -> TraceSource:
    p = _params(family, params)
    tick_s = _positive("tick_s", tick_s)
    if family == "bitbrains":
        files, ids, labels = _bitbrains_files(path, p["months"], p["volumes"])
        native = read_native("bitbrains", files, ids, labels, p["max_bad_fraction"], p["cache"])
        title = "GWA-T-12 Bitbrains (Rnd)"
        epoch = 0.0
    else:
        files = det.family_files(path, "alibaba")
        labels = [str(f) for f in files]
        native = read_native("alibaba", files, None, labels, p["max_bad_fraction"], p["cache"])
        title = "Alibaba cluster-trace-v2018 machine_usage"
        epoch = _calendar(p["epoch"], "epoch")
    names = native.names
    bounds = native.bounds()
    default_interval = NOMINAL_INTERVAL_S[family]
    t_all, v_all, nominal, max_gap = [], [], [], []
    for i in range(len(names)):
        t = native.t[bounds[i] : bounds[i + 1]]
        v = native.values[bounds[i] : bounds[i + 1]]
        if family == "alibaba":
            v = alibaba_standard(v, p["nominal_mbps"], p["read_fraction"], p["nic_mbps"])
        t_all.append(t)
        v_all.append(v.astype(np.float64))
        nm = median_interval(t, default_interval)
        nominal.append(nm)
        max_gap.append(float(p["max_gap_s"]) if p["max_gap_s"] is not None else GAP_FACTOR[family] * nm)
    kinds_all = [_kind(family, n, p) for n in names]
    activity = np.zeros(len(names))
    for i, (t, v) in enumerate(zip(t_all, v_all, strict=True)):
        if t.size == 0:
            continue
        dur = np.append(np.minimum(np.diff(t), max_gap[i]), nominal[i])
        mb = v[:, 0] * dur, v[:, 1] * dur
        if p["rank_by"] == "bytes":
            activity[i] = mb[0].sum() + mb[1].sum()
        elif p["rank_by"] == "write_bytes":
            activity[i] = mb[1].sum()
        else:
            activity[i] = mb[0].sum() / _io_bytes(kinds_all[i], p["read_io_bytes"]) + mb[1].sum() / _io_bytes(
                kinds_all[i], p["write_io_bytes"]
            )
    volumes = p["volumes"] if family != "bitbrains" else None  # Bitbrains volumes were chosen by file
    sel = [i for i in _select(family, names, activity, volumes, p["top"]) if t_all[i].size]
    if p["volumes"] is not None and family == "bitbrains":
        order = {vid: k for k, vid in enumerate(p["volumes"])}
        if all(v in order for v in (names[i] for i in sel)) and p["top"] is None:
            sel.sort(key=lambda i: order[names[i]])
    if not sel:
        raise TraceError(f"{path}: no samples for the selected volumes")
    dt_trace = tick_s / p["time_scale"]
    start = None
    if p["start"] is not None:
        start = _calendar(p["start"], "start") - (epoch if _is_date(p["start"]) else 0.0)
    t_sel = [t_all[i] for i in sel]
    nm_sel = [nominal[i] for i in sel]
    t0, n_ticks = span(t_sel, nm_sel, start, dt_trace)
    if start is not None and max(float(t[-1]) + nm for t, nm in zip(t_sel, nm_sel, strict=True)) <= t0:
        raise TraceError(f"start {p['start']!r} is after the end of the selected volumes' samples")
    kinds = [kinds_all[i] for i in sel]
    rio = np.array([_io_bytes(k, p["read_io_bytes"]) for k in kinds], np.float64)
    wio = np.array([_io_bytes(k, p["write_io_bytes"]) for k in kinds], np.float64)
    backend = IntervalSeries(
        t_sel,
        [v_all[i] for i in sel],
        nm_sel,
        t0,
        dt_trace,
        tick_s,
        n_ticks,
        p["resample"],
        p["gap_fill"],
        [max_gap[i] for i in sel],
        rio,
        wio,
    )
    metas = []
    for j, i in enumerate(sel):
        st = backend.steps[j].stats
        app: dict[str, str | float] = {
            "family": family,
            "trace_volume": names[i],
            "samples": float(st["samples"]),
            "interval_s": st["interval_s"],
            "gaps": float(st["gaps"]),
            "read_io_bytes": float(rio[j]),
            "write_io_bytes": float(wio[j]),
        }
        for k, x in (native.app[i] or {}).items():
            app[k] = x
        metas.append(VolumeMeta(p["id_prefix"] + names[i], kinds[j], app, WORKING_SETS.get(kinds[j], WorkingSet()), int(wio[j])))

    log = BadLineLog()
    for _label, _lines, logd in native.meta["files"]:
        log.merge(BadLineLog.from_dict(logd))
    stats = native.meta["stats"]
    gap_stats = [s.stats for s in backend.steps]
    gap_rule = (
        f"max_gap_s={p['max_gap_s']:g} s" if p["max_gap_s"] else f"{GAP_FACTOR[family]:g} x the volume's median sampling interval"
    )
    io_note = ", ".join(f"{k} {v // 1024} KiB" for k, v in IO_BYTES.items())
    models = {
        "resample": (
            "hold: time-weighted mean of the step function (sample i holds on [t_i, t_i+1)) over each tick; conserves bytes"
            if p["resample"] == "hold"
            else "linear: interpolation through sample-interval centres at tick centres"
        ),
        "gaps": f"an interval longer than {gap_rule} is a gap; "
        + ("the last value holds through it" if p["gap_fill"] == "hold" else "zero after one median interval"),
        "iops": f"derived: MB/s x 1e6 / I/O size; I/O size per kind ({io_note}; default {DEFAULT_IO_BYTES // 1024} KiB)"
        + (f", read override {p['read_io_bytes']} B" if p["read_io_bytes"] else "")
        + (f", write override {p['write_io_bytes']} B" if p["write_io_bytes"] else ""),
        "cbt": "no offsets in the trace: unique bytes come from the simulator's working-set model "
        "(VolumeMeta.working_set per kind; write_io_bytes = the kind's I/O size)",
        "time_scale": "a trace second lasts time_scale simulated seconds; rates keep their values",
        "past_end": "loop" if (p["loop"] is not False) else "zeros",
    }
    if family == "bitbrains":
        models["units"] = (
            "timestamps are Unix seconds despite the '[ms]' header; KB/s / 1000 = MB/s; mem_pct = usage / provisioned; net_mbps = (rx + tx) KB/s / 1000"
        )
    else:
        models["units"] = "time_stamp = seconds since the trace start; start_epoch = epoch + first time_stamp"
        models["disk"] = (
            f"disk_io_percent is utilisation: MB/s = percent/100 x nominal_mbps ({p['nominal_mbps']:g}), "
            f"read share {p['read_fraction']:g} (the trace has no read/write split); -1 = missing (carried forward), >100 clipped"
        )
        models["network"] = (
            f"net_in/net_out are normalised 0-100: net_mbps = (net_in + net_out)/100 x nic_mbps ({p['nic_mbps']:g})"
        )
    info = {
        "level": "interval",
        "trace_tick_s": dt_trace,
        "samples": stats["rows"],
        "duplicate_timestamps_averaged": stats["duplicates"],
        "missing_values_filled": stats["filled"],
        "abnormal_values": native.meta.get("abnormal", {}),
        "gaps": int(sum(s["gaps"] for s in gap_stats)),
        "gap_s": float(sum(s["gap_s"] for s in gap_stats)),
        "head_fill_s": float(sum(s["head_fill_s"] for s in gap_stats)),
        "tail_fill_s": float(sum(s["tail_fill_s"] for s in gap_stats)),
        "selection": {
            "volumes": p["volumes"],
            "top": p["top"],
            "rank_by": p["rank_by"],
            "available": len(names),
            "months": p.get("months"),
        },
        "resample": p["resample"],
        "gap_fill": p["gap_fill"],
        "models": models,
        "notes": [f"{k}: {n}" for k, n in native.meta.get("abnormal", {}).items()]
        + [str(v) for v in native.meta.get("notes", {}).values()],
    }
    return TraceSource(
        family=family,
        title=title,
        path=str(path),
        files=labels,
        tick_s=tick_s,
        time_scale=p["time_scale"],
        loop=p["loop"] is not False,
        start_epoch=epoch + t0,
        n_ticks=n_ticks,
        volumes=metas,
        backend=backend,
        has_extents=False,
        log=log,
        records=stats["rows"],
        info=info,
        seed=seed,
        cache_hit=native.cache_hit,
    )


# ----------------------------------------------------------------------------- registry


def make(family: str, *, path, tick_s, seed=None, **params) -> TraceSource:
    """Build a source of `family` ('auto' detects it from the content)."""
    if family == "auto":
        family = det.detect(path)
    if family in det.REQUEST_FAMILIES:
        return request_source(family, path=path, tick_s=tick_s, seed=seed, **params)
    if family in det.INTERVAL_FAMILIES:
        return interval_source(family, path=path, tick_s=tick_s, seed=seed, **params)
    raise TraceError(f"unknown trace family {family!r}; known: auto, {', '.join(det.FAMILIES)}")


def _register(name: str) -> None:
    def factory(*, path, tick_s, seed=None, **params) -> TraceSource:
        return make(name, path=path, tick_s=tick_s, seed=seed, **params)

    factory.__name__ = f"{name}_trace"
    factory.__doc__ = f"Trace factory for {name!r}: see workloads.traces.factories."
    if name not in TRACES:
        TRACES.register(name)(factory)


for _name in ("auto", *det.FAMILIES):
    _register(_name)

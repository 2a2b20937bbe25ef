"""Builds a `TraceSource` from an interval-metric trace (Bitbrains GWA-T-12, Alibaba).

The family reads its files into a cleaned native series (`interval.py`) and maps them
to the standard columns; each selected volume is then resampled onto the simulation
tick block by block (`resample.py`). IOPS are derived from MB/s with a per-kind I/O
size, and the write hot set comes from the simulator's working-set model (the trace
has no offsets).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from workloads.base import VolumeMeta
from workloads.traces.errors import BadLineLog, TraceError
from workloads.traces.families import DEFAULT_IO_BYTES, IO_BYTES, IntervalFamily, io_bytes, working_set
from workloads.traces.interval import NativeSeries
from workloads.traces.params import calendar_seconds, is_date, parse_params, positive
from workloads.traces.resample import IntervalSeries, median_interval, span
from workloads.traces.select import select_volumes
from workloads.traces.source import TraceSource


@dataclass
class _Series:
    """Every volume's samples in standard columns, with its sampling interval and gap limit."""

    t: list[np.ndarray]
    v: list[np.ndarray]  # float64 [m, 5]
    nominal: list[float]
    max_gap: list[float]


def _series(family: IntervalFamily, native: NativeSeries, p: dict[str, Any]) -> _Series:
    bounds = native.bounds()
    s = _Series([], [], [], [])
    for i in range(len(native.names)):
        t = native.t[bounds[i] : bounds[i + 1]]
        v = family.standard(native.values[bounds[i] : bounds[i + 1]], p)
        s.t.append(t)
        s.v.append(v.astype(np.float64))
        nm = median_interval(t, family.nominal_interval_s)
        s.nominal.append(nm)
        s.max_gap.append(float(p["max_gap_s"]) if p["max_gap_s"] is not None else family.gap_factor * nm)
    return s


def _activity(s: _Series, kinds: list[str], p: dict[str, Any], window: tuple[float, float] | None = None) -> np.ndarray:
    """Each volume's activity by `rank_by` (MB moved, or I/Os at the kind's I/O size),
    counting only the samples inside `window` (trace seconds) when one is given."""
    activity = np.zeros(len(s.t))
    for i, (t, v) in enumerate(zip(s.t, s.v, strict=True)):
        if t.size == 0:
            continue
        dur = np.append(np.minimum(np.diff(t), s.max_gap[i]), s.nominal[i])
        if window is not None:
            dur = np.where((t >= window[0]) & (t < window[1]), dur, 0.0)
        mb = v[:, 0] * dur, v[:, 1] * dur
        if p["rank_by"] == "bytes":
            activity[i] = mb[0].sum() + mb[1].sum()
        elif p["rank_by"] == "write_bytes":
            activity[i] = mb[1].sum()
        else:
            activity[i] = mb[0].sum() / io_bytes(kinds[i], p["read_io_bytes"]) + mb[1].sum() / io_bytes(kinds[i], p["write_io_bytes"])
    return activity


def _selection(family: IntervalFamily, names: list[str], activity: np.ndarray, s: _Series, p: dict[str, Any], path) -> list[int]:
    volumes = None if family.by_file else p["volumes"]  # volumes that are files were chosen while reading
    sel = [i for i in select_volumes(family.name, names, activity, volumes, p["top"]) if s.t[i].size]
    if p["volumes"] is not None and family.by_file:
        order = {vid: k for k, vid in enumerate(p["volumes"])}
        if all(v in order for v in (names[i] for i in sel)) and p["top"] is None:
            sel.sort(key=lambda i: order[names[i]])
    if not sel:
        raise TraceError(f"{path}: no samples for the selected volumes")
    return sel


def _volume_meta(family: IntervalFamily, native: NativeSeries, i: int, kind: str, stats: dict, rio: float, wio: float, p) -> VolumeMeta:
    app: dict[str, str | float] = {
        "family": family.name,
        "trace_volume": native.names[i],
        "samples": float(stats["samples"]),
        "interval_s": stats["interval_s"],
        "gaps": float(stats["gaps"]),
        "read_io_bytes": float(rio),
        "write_io_bytes": float(wio),
    }
    for k, x in (native.app[i] or {}).items():
        app[k] = x
    return VolumeMeta(p["id_prefix"] + native.names[i], kind, app, working_set(kind), int(wio))


def _models(family: IntervalFamily, p: dict[str, Any]) -> dict[str, str]:
    """How the series was made (for `describe()`)."""
    gap_rule = f"max_gap_s={p['max_gap_s']:g} s" if p["max_gap_s"] else f"{family.gap_factor:g} x the volume's median sampling interval"
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
    models.update(family.unit_models(p))
    return models


def _info(family: IntervalFamily, native: NativeSeries, backend: IntervalSeries, dt_trace: float, p: dict[str, Any]) -> dict:
    stats = native.meta["stats"]
    gap_stats = [s.stats for s in backend.steps]
    return {
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
            "available": len(native.names),
            "months": p.get("months"),
        },
        "resample": p["resample"],
        "gap_fill": p["gap_fill"],
        "models": _models(family, p),
        "notes": [f"{k}: {n}" for k, n in native.meta.get("abnormal", {}).items()]
        + [str(v) for v in native.meta.get("notes", {}).values()],
    }


def interval_source(family: IntervalFamily, *, path, tick_s, seed=None, **params) -> TraceSource:
    """A `TraceSource` over the interval trace at `path` (see `params.py`, `families.py`)."""
    p = parse_params(family, params)
    tick_s = positive("tick_s", tick_s)
    native, labels = family.read(path, p)
    epoch = family.epoch(p)
    names = native.names
    s = _series(family, native, p)
    kinds_all = [family.volume_kind(n, p) for n in names]
    dt_trace = tick_s / p["time_scale"]
    start = None
    if p["start"] is not None:
        start = calendar_seconds(p["start"], "start") - (epoch if is_date(p["start"]) else 0.0)
    window = None
    if p["rank_span_s"] is not None and any(t.size for t in s.t):
        first = start if start is not None else min(float(t[0]) for t in s.t if t.size)
        window = (first, first + float(p["rank_span_s"]) / p["time_scale"])
        start = first  # the ranked span is the replayed one
    sel = _selection(family, names, _activity(s, kinds_all, p, window), s, p, path)
    t_sel = [s.t[i] for i in sel]
    nm_sel = [s.nominal[i] for i in sel]
    t0, n_ticks = span(t_sel, nm_sel, start, dt_trace)
    if start is not None and max(float(t[-1]) + nm for t, nm in zip(t_sel, nm_sel, strict=True)) <= t0:
        raise TraceError(f"start {p['start']!r} is after the end of the selected volumes' samples")
    kinds = [kinds_all[i] for i in sel]
    rio = np.array([io_bytes(k, p["read_io_bytes"]) for k in kinds], np.float64)
    wio = np.array([io_bytes(k, p["write_io_bytes"]) for k in kinds], np.float64)
    backend = IntervalSeries(
        t_sel, [s.v[i] for i in sel], nm_sel, t0, dt_trace, tick_s, n_ticks,
        p["resample"], p["gap_fill"], [s.max_gap[i] for i in sel], rio, wio,
    )  # fmt: skip
    metas = [_volume_meta(family, native, i, kinds[j], backend.steps[j].stats, rio[j], wio[j], p) for j, i in enumerate(sel)]
    log = BadLineLog()
    for _label, _lines, logd in native.meta["files"]:
        log.merge(BadLineLog.from_dict(logd))
    return TraceSource(
        family=family.name,
        title=family.title,
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
        records=native.meta["stats"]["rows"],
        info=_info(family, native, backend, dt_trace, p),
        seed=seed,
        cache_hit=native.cache_hit,
        data_ticks=[_own_ticks(st.stats, dt_trace, n_ticks) for st in backend.steps],
    )


def _own_ticks(stats: dict, dt_trace: float, n_ticks: int) -> tuple[int, int]:
    """[first, end) natural ticks holding a volume's own samples (not its held first or last value)."""
    first = min(n_ticks, int(stats["head_fill_s"] // dt_trace))
    return first, max(first, n_ticks - int(stats["tail_fill_s"] // dt_trace))

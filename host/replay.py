"""Interval series measured on a host -> a `TraceSource` the simulator replays.

The recorder's store, an interval-metrics table and node_exporter's counters all end up
as the same thing: per volume, samples whose value holds over `[t - dt, t)` (a rate
measured over the interval before `t`), with measured read/write IOPS and MB/s, and
optionally CPU %, memory % and network MB/s. This module turns that into per-tick load
as a step function averaged over each tick (`host.steps`: time-weighted mean, gaps
held or zeroed), so replay conserves the bytes and I/Os recorded.

Unlike the Bitbrains/Alibaba families nothing is derived here: IOPS are measured.
Missing values (a host series that starts one interval late, a column a table lacks)
are carried forward (backward at the head) and counted; a volume with no host series
gets zeros for CPU, memory and network.

Parameters every host family takes: `volumes` (ids or globs, in that order), `top`
(the N busiest by bytes), `kind` / `kinds` (workload kind; default the recorded
metadata, else "vm"), `start` (Unix seconds or ISO date of tick 0; default the first
sample), `loop` (default True: past the end the series repeats), `gap_fill` ("hold" |
"zero"), `max_gap_s` (default 1.5 x the median interval), `time_scale` (one recorded
second lasts `time_scale` simulated seconds; rates keep their values), `id_prefix`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fnmatch import fnmatch

import numpy as np

from host import steps as stepfn
from workloads.base import SERIES, VolumeMeta, WorkingSet
from workloads.traces.errors import BadLineLog, TraceError
from workloads.traces.source import TraceSource

COMMON_PARAMS = {
    "volumes": None,
    "top": None,
    "kind": None,
    "kinds": None,
    "start": None,
    "loop": True,
    "gap_fill": "hold",
    "max_gap_s": None,
    "time_scale": 1.0,
    "id_prefix": "",
}
DEFAULT_KIND = "vm"
DISK = SERIES[:4]  # read_iops, write_iops, read_mbps, write_mbps
HOST = SERIES[4:]  # cpu_pct, mem_pct, net_mbps


@dataclass
class Samples:
    """One volume's (or the host's) samples: value row i holds on `[t[i] - dt[i], t[i])`."""

    t: np.ndarray
    dt: np.ndarray
    values: np.ndarray  # [n, k] float64, NaN = missing

    def __post_init__(self) -> None:
        order = np.argsort(self.t, kind="stable")
        self.t, self.dt, self.values = self.t[order], self.dt[order], self.values[order]


def check_params(family: str, given: dict, extra: dict) -> dict:
    known = {**COMMON_PARAMS, **extra}
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise TraceError(f"trace family {family!r}: unknown parameter(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    p = {**known, **given}
    if isinstance(p["volumes"], str | int):
        p["volumes"] = [p["volumes"]]
    if p["top"] is not None and (isinstance(p["top"], bool) or not isinstance(p["top"], int) or p["top"] < 1):
        raise TraceError(f"top: must be a positive integer (got {p['top']!r})")
    if p["gap_fill"] not in ("hold", "zero"):
        raise TraceError(f"gap_fill: 'hold' or 'zero' (got {p['gap_fill']!r})")
    if not isinstance(p["loop"], bool):
        raise TraceError(f"loop: true or false (got {p['loop']!r})")
    if p["kinds"] is not None and not isinstance(p["kinds"], dict):
        raise TraceError("kinds: a mapping {volume id or pattern: kind}")
    for k in ("time_scale", "max_gap_s"):
        v = p[k]
        if v is not None and (isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or v <= 0):
            raise TraceError(f"{k}: must be a positive number (got {v!r})")
    return p


def _fill(values: np.ndarray) -> tuple[np.ndarray, int]:
    """Carry missing values forward (backward at the head); columns never seen become 0."""
    v = values.copy()
    missing = np.isnan(v)
    n = int(missing.sum())
    if not n:
        return v, 0
    idx = np.arange(v.shape[0])
    for k in np.flatnonzero(missing.any(axis=0)):
        ok = ~missing[:, k]
        if not ok.any():
            v[:, k] = 0.0
            continue
        prev = np.maximum.accumulate(np.where(ok, idx, -1))
        first = int(np.argmax(ok))
        src = np.where(prev >= 0, prev, first)
        v[:, k] = v[src, k]
    return v, n


def _pick(names: list[str], activity: np.ndarray, volumes, top) -> list[int]:
    order = list(range(len(names)))
    if volumes is not None:
        chosen: list[int] = []
        for v in map(str, volumes):
            hits = [i for i in order if (fnmatch(names[i], v) if any(c in v for c in "*?[") else names[i] == v)]
            if not hits:
                raise TraceError(f"no volume {v!r} here (it has: {', '.join(names[:12])})")
            chosen += [i for i in hits if i not in chosen]
        order = chosen
    if top is not None:
        order = sorted(order, key=lambda i: (-activity[i], names[i]))[:top]
    return order


def _kind(vid: str, recorded: str | None, p: dict) -> str:
    for pat, k in (p["kinds"] or {}).items():
        if vid == pat or fnmatch(vid, str(pat)):
            return str(k)
    return str(p["kind"] or recorded or DEFAULT_KIND)


def _start(v) -> float:
    if isinstance(v, int | float) and not isinstance(v, bool):
        return float(v)
    import pandas as pd

    try:
        ts = pd.Timestamp(v)
    except (TypeError, ValueError):
        raise TraceError(f"start: a number of seconds or an ISO date (got {v!r})") from None
    return float((ts.tz_localize("UTC") if ts.tzinfo is None else ts).timestamp())


class StepSeries:
    """Per-tick values of the selected volumes: disk columns per volume, host columns shared or per volume."""

    def __init__(self, disk: list[stepfn.Steps], host: list[stepfn.Steps | None], t0: float, dt_trace: float):
        self.disk, self.host, self.t0, self.dt = disk, host, t0, dt_trace

    def values(self, k0: int, k1: int) -> dict[str, np.ndarray]:
        edges = self.t0 + np.arange(k0, k1 + 1, dtype=np.float64) * self.dt
        out = {s: np.zeros((k1 - k0, len(self.disk)), np.float32) for s in SERIES}
        done: dict[int, np.ndarray] = {}
        for i, (d, h) in enumerate(zip(self.disk, self.host, strict=True)):
            x = d.mean_over(edges)
            for k, s in enumerate(DISK):
                out[s][:, i] = x[:, k]
            if h is not None:
                if id(h) not in done:
                    done[id(h)] = h.mean_over(edges)
                for k, s in enumerate(HOST):
                    out[s][:, i] = done[id(h)][:, k]
        return out


def _steps(s: Samples, max_gap_s: float | None, gap_fill: str) -> tuple[stepfn.Steps, int, float]:
    v, filled = _fill(s.values)
    nominal = float(np.median(s.dt))
    return stepfn.build(s.t, s.dt, v, max_gap_s or 1.5 * nominal, gap_fill), filled, nominal


def _metas(family, p, sel, names, disk, recorded_kinds, apps, nominal) -> list[VolumeMeta]:
    """Volume metadata; the write I/O size is the measured mean (bytes written / writes)."""
    metas = []
    for j, i in enumerate(sel):
        s = disk[i]
        kind = _kind(names[i], recorded_kinds[i], p)
        w_ops = float(np.nansum(s.values[:, 1] * s.dt))
        w_bytes = float(np.nansum(s.values[:, 3] * s.dt)) * 1e6
        wio = int(round(w_bytes / w_ops)) if w_ops > 0 else 64 * 1024
        app = {"family": family, "trace_volume": names[i], "samples": float(s.t.size), "interval_s": nominal[j], **apps[i]}
        metas.append(VolumeMeta(p["id_prefix"] + names[i], kind, app, WorkingSet(), max(512, wio)))
    return metas


def build(
    *,
    family: str,
    title: str,
    path: str,
    files: list[str],
    tick_s: float,
    seed,
    p: dict,
    names: list[str],
    disk: list[Samples],
    host: list[Samples | None],
    recorded_kinds: list[str | None],
    apps: list[dict],
    log: BadLineLog,
    info: dict,
) -> TraceSource:
    """The `TraceSource` of per-volume samples (`disk` columns DISK, `host` columns HOST)."""
    if not names or all(s.t.size == 0 for s in disk):
        raise TraceError(f"{path}: no samples")
    activity = np.array([float(np.nansum((s.values[:, 2] + s.values[:, 3]) * s.dt)) if s.t.size else 0.0 for s in disk])
    sel = [i for i in _pick(names, activity, p["volumes"], p["top"]) if disk[i].t.size]
    if not sel:
        raise TraceError(f"{path}: no samples for the selected volumes")
    filled = 0
    disk_b, host_b, nominal = [], [], []
    built: dict[int, stepfn.Steps] = {}
    for i in sel:
        st, n, nm = _steps(disk[i], p["max_gap_s"], p["gap_fill"])
        disk_b.append(st)
        nominal.append(nm)
        filled += n
        h = host[i]
        if h is not None and h.t.size and id(h) not in built:
            built[id(h)], n, _ = _steps(h, p["max_gap_s"], p["gap_fill"])
            filled += n
        host_b.append(built.get(id(h)) if h is not None else None)
    dt_trace = float(tick_s) / p["time_scale"]
    t0 = min(float(b.knots[0]) for b in disk_b) if p["start"] is None else _start(p["start"])
    end = max(float(disk[i].t[-1]) for i in sel)
    if end <= t0:
        raise TraceError(f"start {p['start']!r} is after the last sample")
    n_ticks = max(1, math.ceil((end - t0) / dt_trace - 1e-9))
    metas = _metas(family, p, sel, names, disk, recorded_kinds, apps, nominal)
    info = {
        "level": "interval",
        "trace_tick_s": dt_trace,
        "samples": int(sum(disk[i].t.size for i in sel)),
        "missing_values_filled": filled,
        "gaps": int(sum(b.gaps for b in disk_b)),
        "gap_s": float(sum(b.gap_s for b in disk_b)),
        "gap_fill": p["gap_fill"],
        "models": {
            "iops": "measured (not derived from MB/s)",
            "interval": "a sample's value holds over [t - dt, t); a tick is the time-weighted mean (bytes conserved)",
        },
        **info,
    }
    return TraceSource(
        family=family,
        title=title,
        path=path,
        files=files,
        tick_s=float(tick_s),
        time_scale=float(p["time_scale"]),
        loop=bool(p["loop"]),
        start_epoch=t0,
        n_ticks=n_ticks,
        volumes=metas,
        backend=StepSeries(disk_b, host_b, t0, dt_trace),
        has_extents=False,
        log=log,
        records=info["samples"],
        info=info,
        seed=seed,
    )

"""The `node-exporter` trace family: node_exporter disk counters from a Prometheus range query.

Input: one JSON file (or a folder of them) as the HTTP API's `/api/v1/query_range`
returns it, `{"status": "success", "data": {"resultType": "matrix", "result":
[{"metric": {"__name__": ..., "device": "sda", "instance": ...}, "values": [[ts,
"value"], ...]}]}}`, holding any of the counters

- `node_disk_reads_completed_total` -> read IOPS,
- `node_disk_writes_completed_total` -> write IOPS,
- `node_disk_read_bytes_total` -> read MB/s,
- `node_disk_written_bytes_total` -> write MB/s

(query e.g. `{__name__=~"node_disk_(reads_completed|writes_completed|read_bytes|written_bytes)_total"}`;
a file whose series have no `__name__` label is taken as the counter its file name
names, e.g. `node_disk_read_bytes_total.json`). A volume is a `device` (prefixed with
`instance/` when several instances are present).

Counters become rates between consecutive points. A counter that goes down was reset
(node restart, device re-attached): that interval has no rate, it is skipped and
counted (Prometheus's `rate()` would instead count the new value as the increase,
which after a late scrape is a spike). Bad points (non-numeric, NaN, negative, a
timestamp not after the previous one) are dropped, counted and reported by position,
`file: result[i] values[j]` (JSON has no useful line numbers); more than
`max_bad_fraction` of a file's points fails the read.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from host import replay
from workloads.traces.errors import MAX_BAD_FRACTION, BadLineLog, TraceError, TraceFormatError

FAMILY = "node-exporter"
PARAMS = {"max_bad_fraction": MAX_BAD_FRACTION}
#: counter -> (column in replay.DISK order, scale to the column's unit)
COUNTERS = {
    "node_disk_reads_completed_total": (0, 1.0),
    "node_disk_writes_completed_total": (1, 1.0),
    "node_disk_read_bytes_total": (2, 1e-6),
    "node_disk_written_bytes_total": (3, 1e-6),
}


def _files(path: Path) -> list[Path]:
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix == ".json" and not p.name.startswith("."))
        if not files:
            raise TraceError(f"{path}: no .json files")
        return files
    if not path.is_file():
        raise TraceError(f"{path}: no such file or folder")
    return [path]


def _series(file: Path) -> list[dict]:
    try:
        doc = json.loads(file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise TraceFormatError(f"{file}: not JSON ({str(err).splitlines()[0]})") from None
    if not isinstance(doc, dict) or doc.get("status") != "success":
        raise TraceFormatError(
            f"{file}: not a successful Prometheus API response (status {doc.get('status') if isinstance(doc, dict) else None!r})"
        )
    data = doc.get("data")
    if not isinstance(data, dict) or data.get("resultType") != "matrix" or not isinstance(data.get("result"), list):
        raise TraceFormatError(f"{file}: data.resultType must be 'matrix' (a range query, /api/v1/query_range)")
    return data["result"]


def _points(file: Path, i: int, values, log: BadLineLog) -> tuple[np.ndarray, np.ndarray, int]:
    """(timestamps, values, points seen) of one series, bad points dropped and logged."""
    ts, vs, last = [], [], -math.inf
    if not isinstance(values, list):
        log.add(str(file), i, f"result[{i}]: 'values' is not a list")
        return np.zeros(0), np.zeros(0), 1
    for j, pt in enumerate(values):
        where = f"result[{i}] values[{j}]"
        try:
            t, v = float(pt[0]), float(pt[1])
        except (TypeError, ValueError, IndexError):
            log.add(str(file), j + 1, f'{where}: not [timestamp, "value"]', lambda pt=pt: json.dumps(pt))
            continue
        if not (math.isfinite(t) and math.isfinite(v)) or v < 0:
            log.add(str(file), j + 1, f"{where}: NaN, infinite or negative", lambda pt=pt: json.dumps(pt))
            continue
        if t <= last:
            log.add(str(file), j + 1, f"{where}: timestamp not after the previous one", lambda pt=pt: json.dumps(pt))
            continue
        last = t
        ts.append(t)
        vs.append(v)
    return np.array(ts), np.array(vs), len(values)


def counter_rates(t: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """(interval end times, lengths, rates, resets) of a counter; intervals with a reset are left out."""
    d, dt = np.diff(v), np.diff(t)
    ok = d >= 0
    return t[1:][ok], dt[ok], d[ok] / dt[ok], int((~ok).sum())


def prometheus_source(*, path, tick_s, seed=None, **params) -> object:
    """Trace factory of the `node-exporter` family."""
    p = replay.check_params(FAMILY, params, PARAMS)
    path = Path(path)
    log = BadLineLog()
    found: dict[tuple[str, str], dict[int, tuple]] = {}
    resets = 0
    for file in _files(path):
        flog = BadLineLog()
        n_points = 0
        for i, s in enumerate(_series(file)):
            metric = s.get("metric", {}) if isinstance(s, dict) else {}
            name = metric.get("__name__") or file.stem
            if name not in COUNTERS:
                continue
            if "device" not in metric:
                raise TraceFormatError(f"{file}: result[{i}]: no 'device' label on {name}")
            t, v, seen = _points(file, i, s.get("values"), flog)
            n_points += seen
            end, dt, rate, r = counter_rates(t, v)
            resets += r
            col, scale = COUNTERS[name]
            key = (str(metric.get("instance", "")), str(metric["device"]))
            found.setdefault(key, {})[col] = (end, dt, rate * scale)
        flog.check(str(file), n_points, float(p["max_bad_fraction"]))
        log.merge(flog)
    if not found:
        raise TraceFormatError(f"{path}: no node_disk_* counter series ({', '.join(COUNTERS)})")
    several = len({inst for inst, _ in found}) > 1
    names, disk = [], []
    for (inst, dev), cols in sorted(found.items()):
        end = np.unique(np.concatenate([c[0] for c in cols.values()]))
        dt = np.full(end.size, np.nan)
        vals = np.full((end.size, 4), np.nan)
        for col, (e, d, r) in cols.items():
            k = np.searchsorted(end, e)
            vals[k, col] = r
            dt[k] = np.where(np.isnan(dt[k]), d, np.minimum(dt[k], d))
        for col in set(range(4)) - set(cols):
            vals[:, col] = 0.0
        names.append(f"{inst}/{dev}" if several else dev)
        disk.append(replay.Samples(end, dt, vals))
    notes = [f"{resets} counter reset(s): those intervals have no rate"] if resets else []
    return replay.build(
        family=FAMILY,
        title="node_exporter disk counters (Prometheus range query)",
        path=str(path),
        files=[str(f) for f in _files(path)],
        tick_s=tick_s,
        seed=seed,
        p=p,
        names=names,
        disk=disk,
        host=[None] * len(names),
        recorded_kinds=[None] * len(names),
        apps=[{} for _ in names],
        log=log,
        info={"counter_resets": resets, "notes": notes},
    )

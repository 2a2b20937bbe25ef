"""The `metrics-table` trace family: any interval-metrics table (CSV or Parquet) with a column mapping.

Monitoring tools export per-interval disk metrics in their own layouts (sar, iostat
-x, CloudWatch, a spreadsheet); the config says which column is what:

    trace: metrics-table
    path: /data/iostat.csv
    params:
      time_unit: s            # s | ms | us | ns | iso (ISO-8601 text)
      time_is: end            # the row's time ends its interval (iostat, sar) or starts it
      columns:
        time: timestamp       # required
        volume: device        # optional: default one volume named after the file
        read_iops: r/s        # a rate per second ...
        write_ops: writes     # ... or a count per interval (read_ops / write_ops)
        read_mbps: rMB/s      # MB/s (10**6 bytes) ...
        write_bytes: wbytes   # ... or bytes per interval (read_bytes / write_bytes)
        cpu_pct: cpu          # optional: cpu_pct, mem_pct, net_mbps
      interval_s: 60          # optional: each row covers this long (default: the time
                              # to the neighbouring row of the same volume)

A row covers `[t - dt, t)` (`time_is: end`) or `[t, t + dt)` (`start`). Missing disk
quantities are zero and noted; missing host columns are zero. A mapping naming a
column the file does not have is one error naming the field. Bad rows (unparsable
time, non-numeric or negative values) are dropped, counted and reported with their
line number (CSV: the file's line; Parquet: the row number, 1-based) like the other
trace families; more than `max_bad_fraction` of them fails the read. Rows repeating a
volume's timestamp are dropped and counted.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

from host import replay
from workloads.traces.errors import MAX_BAD_FRACTION, BadLineLog, TraceError, TraceFormatError

FAMILY = "metrics-table"
PARAMS = {
    "columns": None,
    "time_unit": "s",
    "time_is": "end",
    "interval_s": None,
    "delimiter": ",",
    "max_bad_fraction": MAX_BAD_FRACTION,
}
RATE_OR_COUNT = {
    "read_iops": ("read_iops", "read_ops"),
    "write_iops": ("write_iops", "write_ops"),
    "read_mbps": ("read_mbps", "read_bytes"),
    "write_mbps": ("write_mbps", "write_bytes"),
}
KEYS = {"time", "volume", "cpu_pct", "mem_pct", "net_mbps", *(k for pair in RATE_OR_COUNT.values() for k in pair)}
TIME_UNITS = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}


def _mapping(p: dict, path: Path) -> dict[str, str]:
    cols = p["columns"]
    if not isinstance(cols, dict) or not cols:
        raise TraceError(f"{path}: params.columns: a mapping {{quantity: column name}} is required (e.g. time, read_iops, write_mbps)")
    unknown = sorted(set(cols) - KEYS)
    if unknown:
        raise TraceError(f"{path}: params.columns.{unknown[0]}: unknown quantity; known: {', '.join(sorted(KEYS))}")
    if "time" not in cols:
        raise TraceError(f"{path}: params.columns.time: required (the column holding each row's time)")
    for rate, count in RATE_OR_COUNT.values():
        if rate in cols and count in cols:
            raise TraceError(f"{path}: params.columns: give {rate} or {count}, not both")
    if not any(k in cols for pair in RATE_OR_COUNT.values() for k in pair):
        raise TraceError(
            f"{path}: params.columns: map at least one disk quantity (read_iops, write_iops, read_mbps, write_mbps or their counts)"
        )
    if p["time_unit"] not in (*TIME_UNITS, "iso"):
        raise TraceError(f"{path}: params.time_unit: one of {', '.join(TIME_UNITS)}, iso (got {p['time_unit']!r})")
    if p["time_is"] not in ("end", "start"):
        raise TraceError(f"{path}: params.time_is: 'end' or 'start' (got {p['time_is']!r})")
    iv = p["interval_s"]
    if iv is not None and (isinstance(iv, bool) or not isinstance(iv, int | float) or not iv > 0):
        raise TraceError(f"{path}: params.interval_s: a positive number of seconds (got {iv!r})")
    return {k: str(v) for k, v in cols.items()}


def _read_rows(path: Path, delimiter: str):
    """(header, iterator of (line, row)) for CSV; Parquet rows numbered from 1."""
    with open(path, "rb") as fh:
        magic = fh.read(4)
    if magic == b"PAR1":
        import pyarrow.parquet as pq

        table = pq.read_table(path)
        header = table.column_names
        cols = [table.column(c).to_pylist() for c in header]
        return header, ((i + 1, [None if v is None else str(v) for v in row]) for i, row in enumerate(zip(*cols)))
    fh = open(path, newline="", encoding="utf-8-sig")  # noqa: SIM115  (closed by the generator)
    reader = csv.reader(fh, delimiter=delimiter)
    header = next(reader, None)
    if header is None:
        fh.close()
        raise TraceFormatError(f"{path}: empty file (expected a header line)")

    def rows():
        with fh:
            for row in reader:
                if row:
                    yield reader.line_num, row

    return [h.strip() for h in header], rows()


def _time(text: str, unit: str) -> float:
    if unit == "iso":
        import pandas as pd

        ts = pd.Timestamp(text)
        return float((ts.tz_localize("UTC") if ts.tzinfo is None else ts).timestamp())
    return float(text) * TIME_UNITS[unit]


def _parse(path: Path, p: dict, cols: dict[str, str], log: BadLineLog) -> tuple[dict[str, list], int]:
    header, rows = _read_rows(path, p["delimiter"])
    index = {}
    for key, name in cols.items():
        if name not in header:
            shown = ", ".join(header[:15]) + (", ..." if len(header) > 15 else "")
            raise TraceError(f"{path}: params.columns.{key}: no column {name!r} in the file (it has: {shown})")
        index[key] = header.index(name)
    value_keys = [k for k in cols if k not in ("time", "volume")]
    per: dict[str, list] = {}
    n = 0
    for line, row in rows:
        n += 1
        try:
            cells = {k: row[i] for k, i in index.items()}
        except IndexError:
            log.add(str(path), line, f"{len(row)} fields, the header has {len(header)}", lambda row=row: ",".join(row))
            continue
        try:
            t = _time(cells["time"], p["time_unit"])
        except (TypeError, ValueError):
            log.add(str(path), line, f"bad time in column {cols['time']!r}", lambda row=row: ",".join(map(str, row)))
            continue
        vals, bad = [], None
        for k in value_keys:
            try:
                v = float(cells[k])
            except (TypeError, ValueError):
                bad = f"non-numeric {cols[k]!r}"
                break
            if not math.isfinite(v) or v < 0:
                bad = f"negative or non-finite {cols[k]!r}"
                break
            vals.append(v)
        if bad or not math.isfinite(t):
            log.add(str(path), line, bad or "non-finite time", lambda row=row: ",".join(map(str, row)))
            continue
        vol = str(cells["volume"]) if "volume" in cells else path.stem
        per.setdefault(vol, []).append((t, line, vals))
    if n == 0:
        raise TraceFormatError(f"{path}: no data rows")
    return per, n


def _intervals(t: np.ndarray, time_is: str, fixed: float | None) -> tuple[np.ndarray, np.ndarray]:
    """(end times, lengths) of the rows' intervals."""
    if fixed is not None:
        dt = np.full(t.size, float(fixed))
    else:
        d = np.diff(t)
        nominal = float(np.median(d)) if d.size else 1.0
        dt = np.append(nominal, d) if time_is == "end" else np.append(d, nominal)
    return (t if time_is == "end" else t + dt), dt


def table_source(*, path, tick_s, seed=None, **params) -> object:
    """Trace factory of the `metrics-table` family."""
    p = replay.check_params(FAMILY, params, PARAMS)
    path = Path(path)
    if not path.is_file():
        raise TraceError(f"{path}: no such file")
    cols = _mapping(p, path)
    log = BadLineLog()
    per, n_rows = _parse(path, p, cols, log)
    log.check(str(path), n_rows, float(p["max_bad_fraction"]))
    value_keys = [k for k in cols if k not in ("time", "volume")]
    names, disk, host, dups = [], [], [], 0
    for vol, rows in per.items():
        rows.sort(key=lambda r: r[0])
        t = np.array([r[0] for r in rows])
        keep = np.append(True, np.diff(t) > 0)
        dups += int((~keep).sum())
        t = t[keep]
        v = np.array([r[2] for r in rows], np.float64).reshape(len(rows), len(value_keys))[keep]
        end, dt = _intervals(t, p["time_is"], p["interval_s"])
        col = {k: v[:, j] for j, k in enumerate(value_keys)}
        d = np.zeros((t.size, 4))
        for j, (out, (rate, count)) in enumerate(RATE_OR_COUNT.items()):
            scale = 1e-6 if out.endswith("mbps") else 1.0
            if rate in col:
                d[:, j] = col[rate]
            elif count in col:
                d[:, j] = col[count] * scale / dt
        h = np.column_stack([col.get(k, np.zeros(t.size)) for k in replay.HOST])
        names.append(vol)
        disk.append(replay.Samples(end, dt, d))
        host.append(replay.Samples(end, dt, h))
    absent = [out for out, pair in RATE_OR_COUNT.items() if not any(k in cols for k in pair)]
    notes = [f"no column for {', '.join(absent)}: zero"] if absent else []
    if dups:
        notes.append(f"{dups} row(s) repeating a volume's timestamp dropped")
    return replay.build(
        family=FAMILY,
        title=f"interval-metrics table ({path.suffix.lstrip('.') or 'csv'})",
        path=str(path),
        files=[str(path)],
        tick_s=tick_s,
        seed=seed,
        p=p,
        names=names,
        disk=disk,
        host=host,
        recorded_kinds=[None] * len(names),
        apps=[{} for _ in names],
        log=log,
        info={"rows": n_rows, "duplicate_timestamps_dropped": dups, "mapping": cols, "notes": notes},
    )

"""Reading a real I/O trace for a person to look at: opened with the command's options,
per-tick totals binned for plotting, the PNG, the info summary, and the long-format
Parquet export of `piop trace convert`."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from common.atomic import atomic_path
from common.errors import UserError
from workloads.base import SERIES

DEFAULT_TICK = {"request": 10.0, "interval": 300.0}


def open_trace(
    path: Path, family: str, tick: float | None, top, volume, months, time_scale: float, max_bad_fraction: float, no_cache: bool
):
    """The trace at `path` read with the command's options (family detected when 'auto')."""
    from workloads.registry import TRACES
    from workloads.traces import FAMILIES, REQUEST_FAMILIES, detect_family, make

    if not path.exists():
        raise UserError(f"{path}: no such file or folder")
    fam = plugin_family(path, family) or (detect_family(path) if family == "auto" else family)
    if fam not in FAMILIES:  # a family another package registers (a recorder store, an import)
        if months:
            raise UserError("--month applies to Bitbrains traces only")
        plugin: dict = {"time_scale": time_scale, **({"top": top} if top is not None else {})}
        if volume:
            plugin["volumes"] = list(volume)
        return TRACES.create(fam, path=str(path), tick_s=float(tick or store_interval(path)), **plugin)
    if tick is None:
        tick = DEFAULT_TICK["request" if fam in REQUEST_FAMILIES else "interval"]
    params: dict = {"time_scale": time_scale, "max_bad_fraction": max_bad_fraction, "cache": not no_cache}
    if top is not None:
        params["top"] = top
    if volume:
        params["volumes"] = list(volume)
    if months:
        if fam != "bitbrains":
            raise UserError("--month applies to Bitbrains traces only")
        params["months"] = list(months)
    return make(fam, path=str(path), tick_s=float(tick), **params)


def plugin_family(path: Path, family: str) -> str | None:
    """'piop-store' for a `piop record` store when the family is 'auto', else None."""
    from host.store import is_store

    return "piop-store" if family == "auto" and is_store(path) else None


def store_interval(path: Path) -> float:
    """A store's own sampling interval (the tick it replays at), else the interval default."""
    from host.store import check, is_store

    return float(check(path).get("interval_s", DEFAULT_TICK["interval"])) if is_store(path) else DEFAULT_TICK["interval"]


def trace_series(src, k: int = 6, max_points: int = 4000):
    """Per-tick totals of the whole source and of its `k` busiest volumes, binned to <= max_points."""
    n = src.n_ticks
    summary = src.summary()
    busiest = sorted(range(len(summary)), key=lambda i: -summary[i]["mean_mbps"])[:k]
    tot_iops = np.zeros(n)
    tot_mbps = np.zeros(n)
    top_mbps = np.zeros((n, len(busiest)))
    for b in src.iter_natural():
        s = b.start_tick
        tot_iops[s : s + b.n_ticks] = b.iops.sum(axis=1, dtype=np.float64)
        tot_mbps[s : s + b.n_ticks] = b.mbps.sum(axis=1, dtype=np.float64)
        if busiest:
            top_mbps[s : s + b.n_ticks] = b.mbps[:, busiest]
    per = max(1, int(np.ceil(n / max_points)))
    m = n // per * per

    def binned(a):
        if per == 1:
            return a
        head = a[:m].reshape(m // per, per, *a.shape[1:]).mean(axis=1)
        return np.concatenate([head, a[m:].mean(axis=0, keepdims=True)]) if m < n else head

    t = src.start_epoch + (np.arange(0, n, per) + per / 2.0) * src.tick_s
    return summary, t, binned(tot_iops), binned(tot_mbps), binned(top_mbps), [src.volumes[i].volume_id for i in busiest], per


def plot_series(src, png: Path, t, iops, mbps, top_mbps, top_ids, per) -> None:
    """Totals and the busiest volumes over time, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    from datetime import UTC, datetime

    import matplotlib.pyplot as plt

    when = [datetime.fromtimestamp(x, tz=UTC) for x in t]
    fig, axes = plt.subplots(3, 1, figsize=(11, 8), sharex=True)
    axes[0].plot(when, iops, lw=0.8, color="tab:blue")
    axes[0].set_ylabel("IOPS (all volumes)")
    axes[1].plot(when, mbps, lw=0.8, color="tab:orange")
    axes[1].set_ylabel("MB/s (all volumes)")
    for j, vid in enumerate(top_ids):
        axes[2].plot(when, top_mbps[:, j], lw=0.7, label=vid)
    axes[2].set_ylabel("MB/s (busiest)")
    if top_ids:
        axes[2].legend(fontsize=7, ncol=3, loc="upper right")
    axes[2].set_xlabel("time (UTC)")
    step = f"{src.tick_s * per:g} s" + (f" (mean of {per} ticks)" if per > 1 else "")
    fig.suptitle(f"{src.title}: {Path(src.path).name} - {len(src.volumes)} volume(s), step {step}", fontsize=10)
    fig.autofmt_xdate()
    fig.tight_layout()
    with atomic_path(png) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)


def info_data(src, summary, png: Path | None) -> dict:
    """What `piop trace info` shows (and prints with --json)."""
    from workloads.traces.source import iso

    d = src.describe()
    trace_span = src.n_ticks * src.tick_s / src.time_scale
    return {
        "path": src.path,
        "family": src.family,
        "title": src.title,
        "files": len(src.files),
        "span": {"start": iso(src.start_epoch), "end": iso(src.start_epoch + trace_span), "seconds": trace_span},
        "tick_s": src.tick_s,
        "n_ticks": src.n_ticks,
        "records": src.records,
        "malformed_lines": src.malformed,
        "malformed_by_reason": d["malformed_by_reason"],
        "warnings": src.warnings + _span_notes(src),
        "volumes": len(src.volumes),
        "volume_stats": summary,
        "plot": str(png) if png else None,
        "describe": d,
    }


def _span_notes(src) -> list[str]:
    """A note when the volumes cover different spans (their figures are over their own)."""
    spans = getattr(src, "data_ticks", None) or []
    short = [(v.volume_id, a, b) for v, (a, b) in zip(src.volumes, spans, strict=True) if (a, b) != (0, src.n_ticks)]
    if not short:
        return []
    hours = lambda t: t * src.tick_s / 3600.0  # noqa: E731
    some = ", ".join(f"{vid} ({hours(b - a):,.1f} h from +{hours(a):,.1f} h)" for vid, a, b in short[:5])
    return [
        f"{len(short)} of {len(src.volumes)} volumes cover less than the trace's {hours(src.n_ticks):,.1f} h: {some}"
        + (", ..." if len(short) > 5 else "")
        + "; each volume's figures are over its own span"
    ]


def write_long_parquet(src, out: Path, drop_zero: bool = False) -> int:
    """The aggregated per-tick series of `src` in long format, written block by block; rows written."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    ids = [v.volume_id for v in src.volumes]
    vol_dict = pa.array(ids, pa.string())
    schema = pa.schema(
        [("tick", pa.int64()), ("time", pa.timestamp("ms", tz="UTC")), ("volume", pa.dictionary(pa.int32(), pa.string()))]
        + [(s, pa.float32()) for s in SERIES]
    )
    n_rows = 0
    with atomic_path(out) as tmp, pq.ParquetWriter(tmp, schema) as writer:
        for b in src.iter_natural(max_cells=2_000_000):
            nv = len(ids)
            ticks = np.repeat(np.arange(b.start_tick, b.start_tick + b.n_ticks, dtype=np.int64), nv)
            cols = {s: getattr(b, s).reshape(-1) for s in SERIES}
            vidx = np.tile(np.arange(nv, dtype=np.int32), b.n_ticks)
            if drop_zero:
                keep = np.zeros(ticks.size, bool)
                for a in cols.values():
                    keep |= a != 0
                ticks, vidx = ticks[keep], vidx[keep]
                cols = {s: a[keep] for s, a in cols.items()}
            time_ms = np.round((src.start_epoch + ticks * src.tick_s) * 1000.0).astype(np.int64)
            table = pa.table(
                [
                    pa.array(ticks),
                    pa.array(time_ms, pa.timestamp("ms", tz="UTC")),
                    pa.DictionaryArray.from_arrays(pa.array(vidx), vol_dict),
                ]
                + [pa.array(cols[s]) for s in SERIES],
                schema=schema,
            )
            writer.write_table(table)
            n_rows += table.num_rows
    return n_rows

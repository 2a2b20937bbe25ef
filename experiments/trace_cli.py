"""`piop trace`: inspect and convert real I/O traces.

- `piop trace info PATH`: family, span, records, volumes, a per-volume IOPS / MB/s
  table, malformed lines, and a PNG of the series (`--out`, default
  results/trace_info/<name>.png); `--json` prints the same data as JSON instead.
- `piop trace convert PATH OUT.parquet`: the aggregated per-tick series in long format
  (tick, time, volume, read_iops, write_iops, read_mbps, write_mbps, cpu_pct, mem_pct,
  net_mbps), written block by block.

A user's mistake (missing path, unknown format, too many malformed lines, bad option)
prints one line `error: ...` on stderr and exits with code 2.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import typer

from workloads.base import SERIES

trace_app = typer.Typer(
    add_completion=False, pretty_exceptions_enable=False, no_args_is_help=True, help="Inspect and convert real I/O traces."
)

DEFAULT_TICK = {"request": 10.0, "interval": 300.0}

PathArg = typer.Argument(..., help="trace file or folder (family detected from content)")
FamilyOpt = typer.Option("auto", "--family", "-f", help="auto, bitbrains, alibaba, msr, systor or tencent")
TickOpt = typer.Option(None, "--tick", help="tick in seconds (default 10 for request-level traces, 300 for interval metrics)")
TopOpt = typer.Option(None, "--top", help="keep the N most active volumes (by bytes)")
VolumeOpt = typer.Option(None, "--volume", "-v", help="volume id or glob to keep (repeatable)")
MonthsOpt = typer.Option(None, "--month", "-m", help="Bitbrains month folder to read, e.g. 2013-7 (repeatable)")
ScaleOpt = typer.Option(1.0, "--time-scale", help="simulated seconds per trace second")
BadOpt = typer.Option(0.001, "--max-bad-fraction", help="tolerated fraction of malformed lines per file")
NoCacheOpt = typer.Option(False, "--no-cache", help="do not read or write the aggregate cache")


def _error(msg: str) -> None:
    typer.echo(f"error: {msg}", err=True)
    raise typer.Exit(2)


def _run(fn):
    """Run `fn()`, turning user errors into one line on stderr and exit code 2."""
    from common.registry import UnknownName

    try:
        return fn()
    except (ValueError, UnknownName) as err:  # TraceError / TraceFormatError are ValueErrors
        _error(str(err).splitlines()[0] if str(err) else type(err).__name__)
    except OSError as err:
        _error(f"{err.filename}: {err.strerror}" if err.filename else str(err))


def _build(
    path: Path, family: str, tick: float | None, top, volume, months, time_scale: float, max_bad_fraction: float, no_cache: bool
):
    from workloads.traces import REQUEST_FAMILIES, detect_family, make

    if not path.exists():
        raise ValueError(f"{path}: no such file or folder")
    fam = detect_family(path) if family == "auto" else family
    if tick is None:
        tick = DEFAULT_TICK["request" if fam in REQUEST_FAMILIES else "interval"]
    params: dict = {"time_scale": time_scale, "max_bad_fraction": max_bad_fraction, "cache": not no_cache}
    if top is not None:
        params["top"] = top
    if volume:
        params["volumes"] = list(volume)
    if months:
        if fam != "bitbrains":
            raise ValueError("--month applies to Bitbrains traces only")
        params["months"] = list(months)
    return make(fam, path=str(path), tick_s=float(tick), **params)


def _series(src, k: int = 6, max_points: int = 4000):
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


def _plot(src, png: Path, t, iops, mbps, top_mbps, top_ids, per) -> None:
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
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=110)
    plt.close(fig)


def _info_data(src, summary, png: Path | None) -> dict:
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
        "warnings": src.warnings,
        "volumes": len(src.volumes),
        "volume_stats": summary,
        "plot": str(png) if png else None,
        "describe": d,
    }


def _print_info(data: dict, rows: int) -> None:
    from rich.console import Console
    from rich.table import Table

    con = Console(width=None if sys.stdout.isatty() else 150)
    span = data["span"]
    con.print(f"[bold]{data['title']}[/bold] ({data['family']}): {data['path']}")
    con.print(
        f"files {data['files']}  records {data['records']:,}  malformed lines {data['malformed_lines']}  volumes {data['volumes']}"
    )
    con.print(
        f"span {span['start']} .. {span['end']} ({span['seconds'] / 3600:.2f} h)  tick {data['tick_s']:g} s  ticks {data['n_ticks']:,}"
    )
    for w in data["warnings"]:
        con.print(f"[yellow]warning[/yellow] {w}", markup=True, highlight=False)
    vs = sorted(data["volume_stats"], key=lambda r: -(r["read_mb"] + r["write_mb"]))
    table = Table(title=f"per-volume load (mean and peak per {data['tick_s']:g} s tick)")
    cols = [("volume", "volume", "{}"), ("kind", "kind", "{}")]
    if vs and "records" in vs[0]:
        cols.append(("records", "records", "{:,.0f}"))
    elif vs and "samples" in vs[0]:
        cols.append(("samples", "samples", "{:,.0f}"))
    cols += [
        ("mean_iops", "mean IOPS", "{:,.1f}"),
        ("peak_iops", "peak IOPS", "{:,.1f}"),
        ("mean_mbps", "mean MB/s", "{:,.3f}"),
        ("peak_mbps", "peak MB/s", "{:,.2f}"),
        ("read_mb", "read MB", "{:,.1f}"),
        ("write_mb", "written MB", "{:,.1f}"),
        ("write_pct", "write %", "{:.0f}"),
    ]
    for _, title, _ in cols:
        table.add_column(title, justify="left" if title in ("volume", "kind") else "right")
    for r in vs[:rows]:
        table.add_row(*[fmt.format(r[key]) if key in r else "" for key, _, fmt in cols])
    con.print(table)
    if len(vs) > rows:
        con.print(f"... {len(vs) - rows} more volume(s) (--rows to show more, --json for all)")
    if data["plot"]:
        con.print(f"plot: {data['plot']}")


@trace_app.command("info")
def info(
    path: Path = PathArg,
    family: str = FamilyOpt,
    tick: float | None = TickOpt,
    top: int | None = TopOpt,
    volume: list[str] | None = VolumeOpt,
    month: list[str] | None = MonthsOpt,
    time_scale: float = ScaleOpt,
    max_bad_fraction: float = BadOpt,
    no_cache: bool = NoCacheOpt,
    out: Path | None = typer.Option(None, "--out", "-o", help="PNG of the series (default results/trace_info/<name>.png)"),
    no_plot: bool = typer.Option(False, "--no-plot", help="skip the PNG"),
    as_json: bool = typer.Option(False, "--json", help="print the data as JSON on stdout instead of the table"),
    rows: int = typer.Option(30, "--rows", help="volumes shown in the table"),
) -> None:
    """Family, span, records, volumes, per-volume IOPS/MB/s, malformed lines, and a PNG."""

    def go():
        src = _build(path, family, tick, top, volume, month, time_scale, max_bad_fraction, no_cache)
        summary, t, iops, mbps, top_mbps, top_ids, per = _series(src)
        png = None
        if not no_plot:
            name = path.name.split(".")[0] or src.family
            png = out or Path("results") / "trace_info" / f"{name}.png"
            _plot(src, png, t, iops, mbps, top_mbps, top_ids, per)
        return _info_data(src, summary, png)

    data = _run(go)
    if as_json:
        sys.stdout.write(json.dumps(data, indent=2, default=_json_default) + "\n")
    else:
        _print_info(data, rows)


@trace_app.command("convert")
def convert(
    path: Path = PathArg,
    out: Path = typer.Argument(..., help="Parquet file to write"),
    family: str = FamilyOpt,
    tick: float | None = TickOpt,
    top: int | None = TopOpt,
    volume: list[str] | None = VolumeOpt,
    month: list[str] | None = MonthsOpt,
    time_scale: float = ScaleOpt,
    max_bad_fraction: float = BadOpt,
    no_cache: bool = NoCacheOpt,
    drop_zero: bool = typer.Option(False, "--drop-zero", help="leave out rows whose series are all zero"),
) -> None:
    """Write the aggregated per-tick series (long format) to a Parquet file."""

    def go():
        import pyarrow as pa
        import pyarrow.parquet as pq

        if out.exists() and out.is_dir():
            raise ValueError(f"{out}: is a folder; give a .parquet file name")
        src = _build(path, family, tick, top, volume, month, time_scale, max_bad_fraction, no_cache)
        out.parent.mkdir(parents=True, exist_ok=True)
        ids = [v.volume_id for v in src.volumes]
        vol_dict = pa.array(ids, pa.string())
        schema = pa.schema(
            [("tick", pa.int64()), ("time", pa.timestamp("ms", tz="UTC")), ("volume", pa.dictionary(pa.int32(), pa.string()))]
            + [(s, pa.float32()) for s in SERIES]
        )
        n_rows = 0
        with pq.ParquetWriter(out, schema) as writer:
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
        return src, n_rows

    src, n_rows = _run(go)
    typer.echo(
        f"wrote {n_rows:,} rows ({len(src.volumes)} volume(s) x {src.n_ticks:,} ticks of {src.tick_s:g} s, {src.family}) to {out}"
    )


def _json_default(o):
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)

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

import sys
from pathlib import Path

import typer

from common.errors import UserError
from experiments.clitools import print_json, user_errors
from experiments.trace_tools import info_data, open_trace, plot_series, trace_series, write_long_parquet

trace_app = typer.Typer(
    add_completion=False, pretty_exceptions_enable=False, no_args_is_help=True, help="Inspect and convert real I/O traces."
)

PathArg = typer.Argument(..., help="trace file or folder (family detected from content)")
FamilyOpt = typer.Option("auto", "--family", "-f", help="auto, bitbrains, alibaba, msr, systor or tencent")
TickOpt = typer.Option(None, "--tick", help="tick in seconds (default 10 for request-level traces, 300 for interval metrics)")
TopOpt = typer.Option(None, "--top", help="keep the N most active volumes (by bytes)")
VolumeOpt = typer.Option(None, "--volume", "-v", help="volume id or glob to keep (repeatable)")
MonthsOpt = typer.Option(None, "--month", "-m", help="Bitbrains month folder to read, e.g. 2013-7 (repeatable)")
ScaleOpt = typer.Option(1.0, "--time-scale", help="simulated seconds per trace second")
BadOpt = typer.Option(0.001, "--max-bad-fraction", help="tolerated fraction of malformed lines per file")
NoCacheOpt = typer.Option(False, "--no-cache", help="do not read or write the aggregate cache")


def _print_info(data: dict, rows: int) -> None:
    from rich.console import Console
    from rich.table import Table

    con = Console(width=None if sys.stdout.isatty() else 150)
    span = data["span"]
    con.print(f"[bold]{data['title']}[/bold] ({data['family']}): {data['path']}")
    con.print(f"files {data['files']}  records {data['records']:,}  malformed lines {data['malformed_lines']}  volumes {data['volumes']}")
    con.print(
        f"span {span['start']} .. {span['end']} ({span['seconds'] / 3600:.2f} h)  tick {data['tick_s']:g} s  ticks {data['n_ticks']:,}"
    )
    for w in data["warnings"]:
        con.print(f"[yellow]warning[/yellow] {w}", markup=True, highlight=False)
    vs = sorted(data["volume_stats"], key=lambda r: -(r["read_mb"] + r["write_mb"]))
    table = Table(title=f"per-volume load (mean and peak per {data['tick_s']:g} s tick, over each volume's own span)")
    cols = [("volume", "volume", "{}"), ("kind", "kind", "{}")]
    if vs and "records" in vs[0]:
        cols.append(("records", "records", "{:,.0f}"))
    elif vs and "samples" in vs[0]:
        cols.append(("samples", "samples", "{:,.0f}"))
    if vs and "span_h" in vs[0]:
        cols.append(("span_h", "own span h", "{:,.1f}"))
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
@user_errors
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
    src = open_trace(path, family, tick, top, volume, month, time_scale, max_bad_fraction, no_cache)
    summary, t, iops, mbps, top_mbps, top_ids, per = trace_series(src)
    png = None
    if not no_plot:
        name = path.name.split(".")[0] or src.family
        png = out or Path("results") / "trace_info" / f"{name}.png"
        plot_series(src, png, t, iops, mbps, top_mbps, top_ids, per)
    data = info_data(src, summary, png)
    if as_json:
        print_json(data)
    else:
        _print_info(data, rows)


@trace_app.command("convert")
@user_errors
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
    if out.exists() and out.is_dir():
        raise UserError(f"{out}: is a folder; give a .parquet file name")
    src = open_trace(path, family, tick, top, volume, month, time_scale, max_bad_fraction, no_cache)
    n_rows = write_long_parquet(src, out, drop_zero)
    typer.echo(f"wrote {n_rows:,} rows ({len(src.volumes)} volume(s) x {src.n_ticks:,} ticks of {src.tick_s:g} s, {src.family}) to {out}")

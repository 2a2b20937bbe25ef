"""`piop record` and `piop calibrate`: the real-host commands.

`app` holds both commands; the `piop` CLI mounts them at its top level
(`app.command("record")(host.cli.record)`, likewise `calibrate`), and `python -m host`
runs them alone. A user's mistake prints one line `error: ...` on stderr and exits 2,
leaving nothing behind (no store, no test file, no output folder).
"""

from __future__ import annotations

import functools
import json
import os
import re
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import typer

from common.errors import UserError

app = typer.Typer(
    add_completion=False,
    pretty_exceptions_enable=False,
    no_args_is_help=True,
    help="Record a host's I/O into a store; calibrate its device model with fio.",
)

SIZE_UNITS = {"": 1, "k": 1e3, "m": 1e6, "g": 1e9, "t": 1e12, "ki": 1 << 10, "mi": 1 << 20, "gi": 1 << 30, "ti": 1 << 40}


def _one_line_errors(fn: Callable) -> Callable:
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        import sqlite3

        from common.registry import UnknownName

        try:
            return fn(*args, **kwargs)
        except (UserError, UnknownName, sqlite3.DatabaseError, FileNotFoundError, PermissionError, IsADirectoryError) as err:
            msg = f"{err.filename}: {err.strerror}" if isinstance(err, OSError) and err.filename else str(err)
            typer.echo(f"error: {msg.splitlines()[0] if msg else type(err).__name__}", err=True)
            raise typer.Exit(2) from None

    return wrapper


def parse_size(text: str, what: str) -> int:
    """'1GiB', '256m', '4096' -> bytes (k/m/g are powers of 1000, ki/mi/gi of 1024)."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([kmgt]?i?)b?\s*", text.lower())
    if not m:
        raise UserError(f"{what}: not a size: {text!r} (e.g. 4096, 4KiB, 1GiB, 500MB)")
    return int(float(m.group(1)) * SIZE_UNITS[m.group(2)])


def _pairs(items: list[str] | None, what: str) -> dict[str, str]:
    out = {}
    for item in items or []:
        dev, sep, val = item.partition("=")
        if not sep or not dev or not val:
            raise UserError(f"{what}: expected DEVICE=VALUE, got {item!r}")
        out[dev] = val
    return out


# ----------------------------------------------------------------------------- record


@app.command()
@_one_line_errors
def record(
    store: Path = typer.Argument(..., help="SQLite store to append to (created if missing)"),
    device: list[str] | None = typer.Option(
        None, "--device", "-d", help="block device to record (repeatable; default: all but idle loop/ram)"
    ),
    interval: float = typer.Option(10.0, "--interval", "-i", help="seconds between samples"),
    keep_days: float = typer.Option(30.0, "--keep-days", help="delete samples older than this many days"),
    kind: list[str] | None = typer.Option(None, "--kind", help="workload kind of a device: DEVICE=KIND (database, vm, fileserver, ...)"),
    mount: list[str] | None = typer.Option(None, "--mount", help="mount point of a device's application data: DEVICE=PATH"),
    duration: float | None = typer.Option(None, "--duration", help="stop after this many seconds (default: until SIGTERM / Ctrl-C)"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="no summary line at the end"),
) -> None:
    """Sample /proc/diskstats and host CPU / memory / network every interval into STORE."""
    from host.record import DeviceInfo, Recorder

    kinds, mounts = _pairs(kind, "--kind"), _pairs(mount, "--mount")
    info = {d: DeviceInfo(kinds.get(d), mounts.get(d)) for d in {*kinds, *mounts}}
    if duration is not None and duration < 0:
        raise UserError(f"--duration: must be >= 0 (got {duration})")
    rec = Recorder(store, device or None, interval, keep_days, info)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    rec.open()
    try:
        stats = rec.run(stop, duration)
    finally:
        rec.close()
    if not quiet:
        ev = ", ".join(f"{k} {n}" for k, n in sorted(stats.events.items())) or "none"
        typer.echo(
            f"{store}: {stats.samples} samples, {stats.rows} device rows{' (resumed)' if stats.resumed else ''}; "
            f"events: {ev}; skipped slots {stats.skipped_slots}",
            err=True,
        )


# ----------------------------------------------------------------------------- calibrate


def _writable_ancestor(folder: Path) -> None:
    """Fail now if `folder` could not be created and written later (creates nothing)."""
    p = folder.resolve()
    while not p.exists():
        p = p.parent
    if not p.is_dir() or not os.access(p, os.W_OK):
        raise UserError(f"--out {folder}: cannot write under {p}")


@app.command()
@_one_line_errors
def calibrate(
    target: Path = typer.Argument(..., help="file on the device under test (laid out if missing, removed after)"),
    block_device: bool = typer.Option(False, "--block-device", help="TARGET is a block device: read it directly"),
    size: str = typer.Option("1GiB", "--size", help="size of the test file laid out when TARGET does not exist"),
    fg_rw: str = typer.Option("randread", "--fg-rw", help="foreground fio rw (randread or read)"),
    fg_bs: str = typer.Option("4KiB", "--fg-bs", help="foreground block size"),
    fg_rate_iops: int = typer.Option(500, "--fg-rate-iops", help="foreground arrival rate (open loop, Poisson)"),
    fg_iodepth: int = typer.Option(16, "--fg-iodepth", help="foreground queue depth (room for queued arrivals)"),
    bg_bs: str = typer.Option("1MiB", "--bg-bs", help="background (backup) read size"),
    bg_iodepth: int = typer.Option(4, "--bg-iodepth", help="background queue depth"),
    rungs: int = typer.Option(8, "--rungs", help="rungs: 0, evenly spaced rates up to --top-fraction of max, unlimited"),
    top_fraction: float = typer.Option(0.9, "--top-fraction", help="highest limited background rate / max MB/s"),
    rung_s: float = typer.Option(10.0, "--rung-s", help="seconds measured per rung"),
    ramp_s: float = typer.Option(2.0, "--ramp-s", help="seconds of warm-up per rung, not measured"),
    name: str | None = typer.Option(None, "--name", help="device entry name (default: <device>-calibrated)"),
    out: Path | None = typer.Option(None, "--out", "-o", help="output folder (default results/calibrate/<name>)"),
    keep_file: bool = typer.Option(False, "--keep-file", help="keep a laid-out test file"),
    as_json: bool = typer.Option(False, "--json", help="print the device entry as JSON on stdout"),
) -> None:
    """Measure TARGET's device with fio (foreground + background ladder) and fit its device model."""
    from host.calibrate import fio
    from host.calibrate.ladder import Settings
    from host.calibrate.ladder import calibrate as run_calibration
    from host.calibrate.report import entry, write
    from host.calibrate.target import check

    if fg_rw not in ("randread", "read"):
        raise UserError(f"--fg-rw: randread or read (got {fg_rw!r}); calibration never writes to the target")
    fg = fio.JobSpec(fg_rw, parse_size(fg_bs, "--fg-bs"), fg_iodepth, rate_iops=fg_rate_iops)
    settings = Settings(fg, parse_size(bg_bs, "--bg-bs"), bg_iodepth, rungs, top_fraction, rung_s, ramp_s)
    settings.check()
    fio.fio_binary()
    t = check(target, parse_size(size, "--size"), block_device)
    name = name or f"{t.device}-calibrated"
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise UserError(f"--name: letters, digits, '_', '.', '-' only (got {name!r})")
    folder = out or Path("results") / "calibrate" / name
    _writable_ancestor(folder)
    log = (lambda m: None) if as_json else (lambda m: typer.echo(m, err=True))
    result = run_calibration(t, settings, log=log, keep_file=keep_file)
    paths = write(result, folder, name)
    data = entry(result, name)
    if as_json:
        sys.stdout.write(json.dumps({**data, "files": {k: str(v) for k, v in paths.items()}}, indent=2) + "\n")
        return
    _print_summary(data, paths)


def _print_summary(data: dict, paths: dict[str, Path]) -> None:
    fe = data["calibration"]["fit_error"]
    typer.echo(
        f"{data['name']}: max_iops {data['max_iops']:,.0f}  max_mbps {data['max_mbps']:.1f}  base_latency_ms {data['base_latency_ms']:.4f}"
    )
    for model in ("mm1", "curve"):
        loo = fe[model]["leave_one_out"]
        label = "M/M/1 device class" if model == "mm1" else "measured curve"
        typer.echo(f"  {label:<19} leave-one-out error: mean {loo['mape_pct']:.1f} %, max {loo['max_pct']:.1f} %")
    typer.echo(f"device entry: {paths['yaml']}\nplot: {paths['png']}")


# ----------------------------------------------------------------------------- agent

from host.agent.cli import app as agent_app  # noqa: E402

app.add_typer(agent_app, name="agent", help="Run the backup agent on this host, or show its status.")

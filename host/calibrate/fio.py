"""Running fio: job files for the calibration rungs and the figures read from its JSON.

A rung is one fio run of two concurrent jobs on the target: the foreground (an
open-loop workload: by default 4 KiB random reads arriving as a Poisson process at a
fixed `rate_iops`, so a slower device makes requests queue rather than arrive later)
and the background sequential reader (the backup) limited to `rate` bytes/s, or
unlimited at the saturation rung. Figures come from `--output-format=json`:
`jobs[].read.clat_ns.mean` and `percentile["99.000000"]` (completion latency),
`jobs[].read.bw_bytes` and `iops`. Rates are given to fio in plain bytes/s, so no
k/K, MB/MiB ambiguity creeps in.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

from common.errors import UserError
from common.units import MB


@dataclass(frozen=True)
class JobSpec:
    """One fio job's workload (the foreground or the background reader)."""

    rw: str
    bs: int
    iodepth: int
    rate_iops: int | None = None
    rate_bytes: int | None = None  # None: unlimited

    def lines(self) -> list[str]:
        out = [f"rw={self.rw}", f"bs={self.bs}", f"iodepth={self.iodepth}"]
        if self.rate_iops:
            out += [f"rate_iops={self.rate_iops}", "rate_process=poisson"]
        if self.rate_bytes:
            out.append(f"rate={self.rate_bytes}")
        return out

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class JobResult:
    iops: float
    mbps: float
    clat_mean_ms: float
    clat_p99_ms: float


def fio_binary() -> str:
    """The fio executable, or a one-line error saying how to get it."""
    path = shutil.which("fio")
    if not path:
        raise UserError("fio: not found on PATH (install it, e.g. apt-get install -y fio)")
    return path


def version(binary: str) -> str:
    return subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=30).stdout.strip()


def job_file(target: str, jobs: dict[str, JobSpec], *, runtime_s: float, ramp_s: float, direct: bool, size: int | None) -> str:
    """The fio job file of one rung: every job in `jobs` runs concurrently on `target`."""
    g = [
        "[global]",
        f"filename={target}",
        f"direct={int(direct)}",
        "ioengine=libaio",
        "time_based=1",
        f"runtime={max(1, round(runtime_s))}",
        f"ramp_time={round(ramp_s)}",
        "clat_percentiles=1",
        "group_reporting=0",
    ]
    if size:
        g.append(f"size={size}")
    body = []
    for name, spec in jobs.items():
        body += ["", f"[{name}]", *spec.lines()]
    return "\n".join(g + body) + "\n"


def run(binary: str, jobfile: str, workdir: Path, name: str, timeout_s: float) -> dict:
    """Run one job file; the parsed JSON (kept as `workdir/name.json`)."""
    ini = workdir / f"{name}.fio"
    out = workdir / f"{name}.json"
    ini.write_text(jobfile)
    try:
        proc = subprocess.run(
            [binary, "--output-format=json", f"--output={out}", str(ini)], capture_output=True, text=True, timeout=timeout_s
        )
    except subprocess.TimeoutExpired:
        raise UserError(f"fio: rung {name} did not finish within {timeout_s:.0f} s") from None
    if proc.returncode != 0 or not out.exists():
        msg = (proc.stderr or proc.stdout).strip().splitlines()
        raise UserError(f"fio failed on rung {name}: {msg[-1] if msg else f'exit code {proc.returncode}'}")
    try:
        return json.loads(out.read_text())
    except json.JSONDecodeError as err:
        raise UserError(f"fio: rung {name}: unreadable JSON output ({err})") from None


def result(data: dict, job: str) -> JobResult:
    """Figures of one job of a fio JSON report."""
    for j in data.get("jobs", []):
        if j.get("jobname") != job:
            continue
        if j.get("error"):
            raise UserError(f"fio: job {job} ended with error {j['error']}")
        r = j["read"]
        clat = r.get("clat_ns", {})
        pct = clat.get("percentile", {})
        return JobResult(
            iops=float(r.get("iops", 0.0)),
            mbps=float(r.get("bw_bytes", 0.0)) / MB,
            clat_mean_ms=float(clat.get("mean", 0.0)) / 1e6,
            clat_p99_ms=float(pct.get("99.000000", 0.0)) / 1e6,
        )
    raise UserError(f"fio: no job {job!r} in its output")

"""The calibration run: saturation probes, then the background-rate ladder, then the fit.

1. Probes (each alone on the device, unlimited, at the queue depth of the job it
   stands for): the background reader gives `max_mbps`, the foreground's random reads
   give `max_iops`. Saturation is what *this* reader can take from the device: a deeper
   queue may get more MB/s out of it, but the backup would not, so `u = 1` is where the
   backup saturates.
2. Rungs: the foreground workload with the background reader at `rate` = 0, then evenly
   spaced fractions of `max_mbps` up to `top_fraction`, then unlimited (saturation).
3. Fit (`fit.py`): the device class and the measured curve, with leave-one-out errors.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from common.units import MB
from host.calibrate import fio
from host.calibrate.fit import Fit, Rung, fit
from host.calibrate.target import Target, lay_out, probe_direct


@dataclass
class Settings:
    fg: fio.JobSpec = field(default_factory=lambda: fio.JobSpec("randread", 4096, 16, rate_iops=500))
    bg_bs: int = 1 << 20
    bg_iodepth: int = 4
    rungs: int = 8
    top_fraction: float = 0.9
    rung_s: float = 10.0
    ramp_s: float = 2.0

    def check(self) -> None:
        from common.errors import UserError

        if self.rungs < 4:
            raise UserError(f"--rungs: at least 4 (0, two limited rates and saturation), got {self.rungs}")
        if not 0 < self.top_fraction < 1:
            raise UserError(f"--top-fraction: in (0, 1), got {self.top_fraction}")
        if self.rung_s < 1 or self.ramp_s < 0:
            raise UserError("--rung-s must be >= 1 and --ramp-s >= 0")
        if self.fg.rate_iops is not None and self.fg.rate_iops < 1:
            raise UserError("--fg-rate-iops: at least 1")

    def fractions(self) -> list[float | None]:
        """Background rates as fractions of max MB/s; None = unlimited."""
        return [float(x) for x in np.linspace(0.0, self.top_fraction, self.rungs - 1)] + [None]


@dataclass
class Calibration:
    target: Target
    settings: Settings
    max_iops: float
    max_mbps: float
    rungs: list[Rung]
    fit: Fit
    fio_version: str
    raw: dict[str, dict]


def _run(binary: str, target: Target, s: Settings, jobs: dict[str, fio.JobSpec], work: Path, name: str) -> dict:
    text = fio.job_file(
        str(target.path),
        jobs,
        runtime_s=s.rung_s,
        ramp_s=s.ramp_s,
        direct=target.direct,
        size=None if target.is_block else target.size,
    )
    return fio.run(binary, text, work, name, timeout_s=s.rung_s + s.ramp_s + 120.0)


def calibrate(target: Target, s: Settings, log: Callable[[str], None] = lambda m: None, keep_file: bool = False) -> Calibration:
    """Measure and fit (the target must have passed `target.check`); a laid-out test file is removed unless kept."""
    s.check()
    binary = fio.fio_binary()
    work = Path(tempfile.mkdtemp(prefix="piop-calibrate-"))
    raw: dict[str, dict] = {}
    try:
        lay_out(target)
        probe_direct(target)
        if target.note:
            log(f"note: {target.note}")
        seq = fio.JobSpec("read", s.bg_bs, s.bg_iodepth)
        rnd = fio.JobSpec(s.fg.rw, s.fg.bs, s.fg.iodepth)
        raw["probe_mbps"] = _run(binary, target, s, {"bg": seq}, work, "probe_mbps")
        max_mbps = fio.result(raw["probe_mbps"], "bg").mbps
        raw["probe_iops"] = _run(binary, target, s, {"fg": rnd}, work, "probe_iops")
        max_iops = fio.result(raw["probe_iops"], "fg").iops
        log(f"probes: max {max_mbps:.1f} MB/s (sequential {s.bg_bs >> 10} KiB), max {max_iops:,.0f} IOPS (random {s.fg.bs >> 10} KiB)")
        if max_mbps <= 0 or max_iops <= 0:
            from common.errors import UserError

            raise UserError(f"{target.path}: fio measured no throughput (max {max_mbps} MB/s, {max_iops} IOPS)")
        rungs = []
        for i, frac in enumerate(s.fractions()):
            jobs = {"fg": s.fg}
            target_mbps = None if frac is None else frac * max_mbps
            if frac is None or frac > 0:
                rate = None if frac is None else max(1, int(target_mbps * MB))
                jobs["bg"] = fio.JobSpec("read", s.bg_bs, s.bg_iodepth, rate_bytes=rate)
            name = f"rung{i:02d}"
            raw[name] = _run(binary, target, s, jobs, work, name)
            f = fio.result(raw[name], "fg")
            b = fio.result(raw[name], "bg") if "bg" in jobs else fio.JobResult(0.0, 0.0, 0.0, 0.0)
            rungs.append(Rung(target_mbps, b.mbps, b.iops, f.iops, f.mbps, f.clat_mean_ms, f.clat_p99_ms))
            label = "unlimited" if frac is None else f"{target_mbps:.1f} MB/s"
            log(
                f"rung {i}: background {label:>12} -> {b.mbps:7.1f} MB/s; foreground {f.iops:7.0f} IOPS, "
                f"mean {f.clat_mean_ms:.3f} ms, p99 {f.clat_p99_ms:.3f} ms"
            )
        result = fit(rungs, max_iops, max_mbps)
        return Calibration(target, s, max_iops, max_mbps, rungs, result, fio.version(binary), raw)
    finally:
        if not keep_file:
            target.remove_if_created()
        with contextlib.suppress(OSError):
            shutil.rmtree(work)

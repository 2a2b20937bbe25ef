"""Throttle, pause and measure a backup process on its source device.

Three mechanisms, tried in this order by `probe` (or the one the config names):

- **cgroup v2** `io.max` (`rbps=`) on the source disk, where a cgroup2 mount offers the
  `io` controller;
- **cgroup v1** `blkio.throttle.read_bps_device`, where a v1 `blkio` hierarchy is mounted;
- **SIGSTOP/SIGCONT duty cycle** (`signals`): a thread lets the job's group run while
  its reads stay within a token bucket filled at the target rate, and stops it otherwise.

A cgroup mechanism counts only if it works for a child process here: the probe creates a
group, writes a limit, has a short-lived child join it and removes it again; what each
mechanism answered is kept for `piop agent status`. Each job gets its own group
(`piop-<agent>-<job>`), which its wrapper joins before the tool starts, and whose I/O
counters give the job's exact device reads (the production load is the device's load
minus these). Without a cgroup the job's reads are its processes' `read_bytes`.
Pause is SIGSTOP of the job's group and resume SIGCONT, with every mechanism.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from common.units import MB
from host.agent.proc import Handle, group_members
from host.blockdev import mounts
from sim.types import BACKUP_IO_MB


class ThrottleError(Exception):
    """A limit could not be put in force (the job runs on without it)."""


@dataclass
class Probe:
    """The mechanism chosen and what every mechanism tried answered."""

    name: str
    notes: dict[str, str] = field(default_factory=dict)


def _write(path: Path, text: str) -> None:
    try:
        path.write_text(text)
    except OSError as err:
        raise ThrottleError(f"{path}: {err.strerror or err}") from None


def _group_io(pgid: int) -> tuple[float, float, float]:
    """(read bytes, read I/Os, written bytes) of the group's live processes (storage level).

    A process counts read calls, not device I/Os: those are the bytes in backup-sized
    reads (`BACKUP_IO_MB`), as the device model assumes."""
    rb = wb = 0.0
    for pid in group_members(pgid):
        with contextlib.suppress(psutil.Error, OSError):
            c = psutil.Process(pid).io_counters()
            rb += c.read_bytes
            wb += c.write_bytes
    return rb, rb / (BACKUP_IO_MB * MB), wb


class Mechanism:
    """No limit at all (`throttle: none`): jobs run at full speed; pause still works."""

    name = "none"

    def __init__(self, agent: str):
        self.agent = agent

    def prepare(self, job_id: int, dev: str) -> str | None:
        """Set up the job's group; the `cgroup.procs` its wrapper joins (None: no group)."""
        return None

    def attach(self, job_id: int, handle: Handle, dev: str) -> None:
        """The job's process runs (or was adopted)."""

    def set_rate(self, job_id: int, dev: str, rate_mbps: float | None) -> str:
        return "unthrottled (throttle: none)" if rate_mbps is not None else "unthrottled"

    def pause(self, job_id: int, handle: Handle) -> str:
        handle.signal(signal.SIGSTOP)
        return "paused (SIGSTOP of the job's process group)"

    def resume(self, job_id: int, handle: Handle) -> None:
        handle.signal(signal.SIGCONT)

    def io(self, job_id: int, handle: Handle, dev: str) -> tuple[float, float, float]:
        return _group_io(handle.pid)

    def release(self, job_id: int) -> None:
        """The job ended: remove what `prepare` made."""


class CgroupV1(Mechanism):
    name = "cgroup1"

    def __init__(self, agent: str, root: Path):
        super().__init__(agent)
        self.root = root

    def group(self, job_id: int) -> Path:
        return self.root / (f"piop-{self.agent}-{job_id}" if job_id >= 0 else f"piop-{self.agent}-probe{-job_id}")

    def prepare(self, job_id: int, dev: str) -> str | None:
        g = self.group(job_id)
        try:
            g.mkdir(exist_ok=True)
        except OSError as err:
            raise ThrottleError(f"{g}: {err.strerror or err}") from None
        return str(g / "cgroup.procs")

    def set_rate(self, job_id: int, dev: str, rate_mbps: float | None) -> str:
        bps = 0 if rate_mbps is None else max(1, int(rate_mbps * MB))
        _write(self.group(job_id) / "blkio.throttle.read_bps_device", f"{dev} {bps}\n")
        return "unthrottled" if rate_mbps is None else f"cgroup1 blkio.throttle.read_bps_device {dev} {bps} ({rate_mbps:.1f} MB/s)"

    def io(self, job_id: int, handle: Handle, dev: str) -> tuple[float, float, float]:
        g = self.group(job_id)
        rb = wb = rio = 0.0
        with contextlib.suppress(OSError):
            for line in (g / "blkio.throttle.io_service_bytes").read_text().splitlines():
                f = line.split()
                if len(f) == 3 and f[0] == dev:
                    rb, wb = (float(f[2]), wb) if f[1] == "Read" else (rb, float(f[2])) if f[1] == "Write" else (rb, wb)
            for line in (g / "blkio.throttle.io_serviced").read_text().splitlines():
                f = line.split()
                if len(f) == 3 and f[0] == dev and f[1] == "Read":
                    rio = float(f[2])
        return rb, rio, wb

    def release(self, job_id: int) -> None:
        _rmdir(self.group(job_id))


class CgroupV2(CgroupV1):
    name = "cgroup2"

    def set_rate(self, job_id: int, dev: str, rate_mbps: float | None) -> str:
        val = "max" if rate_mbps is None else str(max(1, int(rate_mbps * MB)))
        _write(self.group(job_id) / "io.max", f"{dev} rbps={val}\n")
        return "unthrottled" if rate_mbps is None else f"cgroup2 io.max {dev} rbps={val} ({rate_mbps:.1f} MB/s)"

    def io(self, job_id: int, handle: Handle, dev: str) -> tuple[float, float, float]:
        with contextlib.suppress(OSError):
            for line in (self.group(job_id) / "io.stat").read_text().splitlines():
                f = line.split()
                if f and f[0] == dev:
                    kv = dict(x.split("=", 1) for x in f[1:] if "=" in x)
                    return float(kv.get("rbytes", 0)), float(kv.get("rios", 0)), float(kv.get("wbytes", 0))
        return 0.0, 0.0, 0.0


class DutyCycle(threading.Thread):
    """Holds a job's group to a read rate with SIGSTOP/SIGCONT: a token bucket on its reads.

    Every `tick_s` the group's reads since the last tick are taken from a budget that
    grows by the target rate (capped at `burst_s` seconds of it); the group runs while the
    budget is positive and is stopped while it is negative. A tool reads in bursts and
    I/O already issued completes after SIGSTOP, so a tick may overshoot, but the stop that
    follows pays it back: the mean rate is the target.
    """

    def __init__(self, handle: Handle, tick_s: float = 0.1, burst_s: float = 1.0):
        super().__init__(daemon=True, name=f"piop-duty-{handle.pid}")
        self.handle = handle
        self.tick_s, self.burst_s = tick_s, burst_s
        self.target: float | None = None
        self.paused = False
        self.stop = threading.Event()
        self.stopped = False  # the group is stopped by this bucket
        self.running_s = self.total_s = 0.0

    def _members(self) -> list[psutil.Process]:
        out = []
        for pid in group_members(self.handle.pid):
            with contextlib.suppress(psutil.Error):
                out.append(psutil.Process(pid))
        return out

    @staticmethod
    def _read(procs: list[psutil.Process]) -> float:
        total = 0.0
        for p in procs:
            with contextlib.suppress(psutil.Error, OSError):
                total += p.io_counters().read_bytes
        return total

    def _set(self, stopped: bool) -> None:
        if stopped != self.stopped:
            self.handle.signal(signal.SIGSTOP if stopped else signal.SIGCONT)
            self.stopped = stopped

    def run(self) -> None:
        procs, refreshed = self._members(), time.monotonic()
        last = self._read(procs)
        budget = 0.0
        while not self.stop.wait(self.tick_s):
            if time.monotonic() - refreshed > 1.0:
                procs, refreshed = self._members(), time.monotonic()
                last = min(last, self._read(procs))  # a process that ended takes its count with it
            now = self._read(procs)
            used, last = max(0.0, now - last), now
            if self.paused:
                self.stopped = True  # the pause stopped it; resume sends SIGCONT
                continue
            if self.target is None:
                budget = 0.0
                self._set(False)
                continue
            rate = self.target * MB
            budget = min(budget + rate * self.tick_s - used, rate * self.burst_s)
            self._set(budget < 0.0)
            self.total_s += self.tick_s
            self.running_s += 0.0 if self.stopped else self.tick_s
        if not self.paused:
            self._set(False)


class Signals(Mechanism):
    name = "signals"

    def __init__(self, agent: str):
        super().__init__(agent)
        self.threads: dict[int, DutyCycle] = {}

    def attach(self, job_id: int, handle: Handle, dev: str) -> None:
        th = DutyCycle(handle)
        self.threads[job_id] = th
        th.start()

    def set_rate(self, job_id: int, dev: str, rate_mbps: float | None) -> str:
        th = self.threads.get(job_id)
        if th is not None:
            th.target = rate_mbps
        return "unthrottled" if rate_mbps is None else f"SIGSTOP/SIGCONT duty cycle for {rate_mbps:.1f} MB/s"

    def pause(self, job_id: int, handle: Handle) -> str:
        th = self.threads.get(job_id)
        if th is not None:
            th.paused = True
        return super().pause(job_id, handle)

    def resume(self, job_id: int, handle: Handle) -> None:
        th = self.threads.get(job_id)
        if th is not None:
            th.paused = False
            th.stopped = False
        super().resume(job_id, handle)

    def release(self, job_id: int) -> None:
        th = self.threads.pop(job_id, None)
        if th is not None:
            th.stop.set()
            th.join(2.0)


def _rmdir(g: Path) -> None:
    for _ in range(50):
        try:
            g.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:  # its processes are still exiting
            time.sleep(0.02)


def _cgroup_root(fstype: str, marker: str) -> Path | None:
    """The mount point of a `fstype` hierarchy holding `marker` (a controller's file)."""
    for m in mounts():
        if m.fstype == fstype and Path(m.point, marker).exists():
            return Path(m.point)
    return None


def _try(mech: CgroupV1, dev: str) -> str | None:
    """None when a child process can join a group of `mech` with a read limit; else why not."""
    job = -os.getpid()
    try:
        procs = mech.prepare(job, dev)
        mech.set_rate(job, dev, 100.0)
        rc = subprocess.run(["/bin/sh", "-c", 'echo $$ > "$0"', procs], capture_output=True, text=True, timeout=10)
        if rc.returncode != 0:
            return f"a child cannot join {procs}: {rc.stderr.strip().splitlines()[-1] if rc.stderr.strip() else rc.returncode}"
        return None
    except ThrottleError as err:
        return str(err)
    finally:
        mech.release(job)


def probe(mode: str, agent: str, dev: str) -> tuple[Mechanism, Probe]:
    """The mechanism for `mode` ("auto" tries cgroup2, cgroup1, then signals) on device `dev`."""
    notes: dict[str, str] = {}
    if mode in ("auto", "cgroup2"):
        root = _cgroup_root("cgroup2", "cgroup.controllers")
        if root is None:
            notes["cgroup2"] = "no cgroup2 mount"
        else:
            ctl = (root / "cgroup.controllers").read_text().split()
            if "io" not in ctl:
                notes["cgroup2"] = f"{root}: no io controller (controllers: {' '.join(ctl) or 'none'})"
            else:
                with contextlib.suppress(OSError):
                    (root / "cgroup.subtree_control").write_text("+io\n")
                why = _try(CgroupV2(agent, root), dev)
                notes["cgroup2"] = why or f"works ({root})"
                if why is None:
                    return CgroupV2(agent, root), Probe("cgroup2", notes)
    if mode in ("auto", "cgroup1"):
        root = _cgroup_root("cgroup", "blkio.throttle.read_bps_device")
        if root is None:
            notes["cgroup1"] = "no cgroup v1 blkio hierarchy with throttle files"
        else:
            why = _try(CgroupV1(agent, root), dev)
            notes["cgroup1"] = why or f"works ({root})"
            if why is None:
                return CgroupV1(agent, root), Probe("cgroup1", notes)
    if mode == "none":
        return Mechanism(agent), Probe("none", {"none": "throttling off by config"})
    notes["signals"] = "SIGSTOP/SIGCONT duty cycle"
    return Signals(agent), Probe("signals", notes)

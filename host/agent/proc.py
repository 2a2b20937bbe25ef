"""Backup processes: started in their own session, found again after a restart, killed whole.

A job runs under a small `sh` wrapper, the leader of a new session and process group:
it first joins the job's cgroup (so not one byte is read outside the limit), then runs
the tool, then writes the tool's exit code to `rc` (atomically, via a rename). Output
goes to files in the job's folder, never to a pipe, so a backup outlives a killed agent
and the next agent reads its outcome from those files.

A process is the job's only if its pid, its start time (`/proc/PID/stat` field 22, in
clock ticks since boot) and the boot id all match what was recorded: a recycled pid
is not adopted. The wrapper's `argv[0]` is `piop-job-<id>`, so the processes of a job
whose pid was never recorded (the agent died between the start and the write) are found
by a scan of `/proc` (that tag and the job's own `rc` path in the agent's state folder).
Stopping a job signals the whole group: SIGTERM, SIGCONT (a
stopped group must run to die), then SIGKILL after a grace period.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

BOOT_ID = "/proc/sys/kernel/random/boot_id"
#: exit code of the wrapper when the job's cgroup could not be joined
CGROUP_JOIN_FAILED = 97
WRAPPER = (
    'cg="$1"; rc="$2"; shift 2; '
    f'if [ -n "$cg" ]; then echo $$ > "$cg" || exit {CGROUP_JOIN_FAILED}; fi; '
    '"$@"; code=$?; echo $code > "$rc.tmp" && mv "$rc.tmp" "$rc"; exit $code'
)


def boot_id() -> str:
    try:
        with open(BOOT_ID) as fh:
            return fh.read().strip()
    except OSError:
        return ""


def start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks since boot; None when it is gone or a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            text = fh.read()
    except OSError:
        return None
    rest = text[text.rfind(")") + 2 :].split()  # fields after the command name
    if rest[0] in ("Z", "X"):
        return None
    return int(rest[19])


@dataclass
class Handle:
    """A job's process group: its leader's pid, start time and boot, and the files it writes."""

    pid: int
    proc_start: int
    boot: str
    folder: Path
    popen: subprocess.Popen | None = None  # None for an adopted process (not our child)

    @property
    def rc_path(self) -> Path:
        return self.folder / "rc"

    def alive(self) -> bool:
        """Whether the group's leader still runs (reaps it when it is our child)."""
        if self.popen is not None:
            return self.popen.poll() is None
        return self.boot == boot_id() and start_ticks(self.pid) == self.proc_start

    def exit_code(self) -> int | None:
        """The tool's exit code from `rc`; else the leader's own status (negative: a signal)."""
        with contextlib.suppress(OSError, ValueError):
            return int(self.rc_path.read_text().strip())
        if self.popen is not None and self.popen.returncode is not None:
            return self.popen.returncode
        return None

    def signal(self, sig: int) -> bool:
        try:
            os.killpg(self.pid, sig)
            return True
        except (ProcessLookupError, PermissionError):
            return False

    def kill(self, grace_s: float = 10.0) -> None:
        """End the whole group (no orphans): TERM, CONT, then KILL if still there after `grace_s`."""
        self.signal(signal.SIGTERM)
        self.signal(signal.SIGCONT)
        end = time.monotonic() + grace_s
        while time.monotonic() < end:
            if not self.alive() and not group_alive(self.pid):
                return
            time.sleep(0.05)
        self.signal(signal.SIGKILL)
        if self.popen is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(5.0)
        end = time.monotonic() + 5.0
        while group_alive(self.pid) and time.monotonic() < end:
            time.sleep(0.05)


def group_alive(pgid: int) -> bool:
    """Whether any process of group `pgid` still exists (zombies excluded)."""
    return bool(group_members(pgid))


def group_members(pgid: int) -> list[int]:
    out = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as fh:
                text = fh.read()
        except OSError:
            continue
        rest = text[text.rfind(")") + 2 :].split()
        if rest[0] not in ("Z", "X") and int(rest[2]) == pgid:
            out.append(int(entry.name))
    return out


def spawn(job_id: int, argv: list[str], env: dict[str, str], folder: Path, cgroup_procs: str | None) -> Handle:
    """Start `argv` for job `job_id` in its own session, joining `cgroup_procs` first."""
    folder.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        (folder / "rc").unlink()
    with open(folder / "out", "wb") as out, open(folder / "err", "wb") as err:
        popen = subprocess.Popen(
            ["/bin/sh", "-c", WRAPPER, f"piop-job-{job_id}", cgroup_procs or "", str(folder / "rc"), *argv],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            env=env,
            start_new_session=True,
            close_fds=True,
        )
    ticks = start_ticks(popen.pid) or 0
    return Handle(popen.pid, ticks, boot_id(), folder, popen)


def find_job_group(job_id: int, folder: Path) -> int | None:
    """The pid of the wrapper of job `job_id` whose files are in `folder` (found by its
    argv: `piop-job-<id>` and the job's own `rc` path, unique to one agent's state), or None."""
    tag, rc = f"piop-job-{job_id}".encode(), str(folder / "rc").encode()
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/cmdline", "rb") as fh:
                args = fh.read().split(b"\0")
        except OSError:
            continue
        if len(args) > 5 and args[0].endswith(b"sh") and args[3] == tag and args[5] == rc:
            return int(entry.name)
    return None


def adopt(job_id: int, pid: int | None, proc_start: int | None, boot: str | None, folder: Path) -> Handle | None:
    """The handle of a job's process if it still runs (same pid, start time and boot), else None."""
    if pid is None:
        pid = find_job_group(job_id, folder)
        if pid is None:
            return None
        proc_start, boot = start_ticks(pid), boot_id()
    h = Handle(int(pid), int(proc_start or 0), str(boot or ""), folder)
    return h if h.alive() else None

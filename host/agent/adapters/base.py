"""What the agent needs from a backup tool: a command line, its outcome, its restore points.

An adapter turns a job (volume, paths, kind, tier) into the process to run, reads the
outcome from the files that process left (its exit code and output), and lists the
restore points the tool itself keeps, where it keeps any (restic does; a generic
command does not, so the agent's state remembers those). A restore point exists only
when the tool reported success; its time is the snapshot time (the job's start, or the
time the tool recorded for its snapshot).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from sim.types import BackupKind


def kind_name(kind: BackupKind | int) -> str:
    return BackupKind(int(kind)).name.lower()


@dataclass(frozen=True)
class JobSpec:
    """One backup to run."""

    job_id: int
    volume: str
    paths: tuple[str, ...]
    kind: BackupKind
    tier: str
    parent_full: str | None = None  # the newest full restore point of this volume on this tier (tool id)


@dataclass
class Outcome:
    """What a finished job left: success (a restore point) or one line saying why not."""

    ok: bool
    error: str | None = None
    snapshot_id: str | None = None
    snapshot_t: float | None = None  # Unix seconds; None: the job's start
    processed_bytes: float | None = None
    added_bytes: float | None = None
    locked: bool = False  # the target was locked by another process
    notes: list[str] = field(default_factory=list)


def last_line(path: Path, prefer: tuple[str, ...] = ("fatal", "unable to", "error")) -> str:
    """The line of a tool's output that says what went wrong: the first naming one of
    `prefer` (case-insensitive), else the last."""
    try:
        lines = [ln.strip() for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    for ln in lines:
        low = ln.lower()
        if any(p in low for p in prefer):
            return ln
    return lines[-1] if lines else ""


class Adapter:
    """The interface every backup tool adapter implements."""

    tool = "adapter"
    #: every restore point restores on its own (no chain of incrementals to read)
    self_contained = False

    def check(self) -> str | None:
        """None when the target can be used; else one line saying why not."""
        return None

    def command(self, job: JobSpec) -> tuple[list[str], dict[str, str]]:
        """(argv, environment) of the backup process."""
        raise NotImplementedError

    def outcome(self, job: JobSpec, folder: Path, rc: int | None) -> Outcome:
        """The outcome of a finished job from its exit code and the files in `folder`."""
        raise NotImplementedError

    def points(self, volumes: dict[str, tuple[str, ...]]) -> list[dict] | None:
        """Restore points the tool lists for `volumes` ({name: paths}); None: it keeps none."""
        return None

    def cleanup(self) -> str | None:
        """After a failed or killed job: undo what it left (e.g. stale locks); a line saying what was done."""
        return None

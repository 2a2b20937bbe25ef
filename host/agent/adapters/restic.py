"""restic as a backup tier: one repository per tier, one tagged snapshot per backup.

Every restic snapshot is a complete, deduplicated restore point: restoring one never
reads a chain of others. The policy's three kinds map onto what restic can honestly do
differently, which is how much of the source it *reads*:

- **full**: `restic backup --force` re-reads every file (nothing is trusted from a
  previous snapshot); the I/O of a real full;
- **incremental**: `restic backup` with its automatic parent (the newest snapshot of the
  same paths in this repository): files whose size, mtime, ctime and inode are unchanged
  are not read, so it reads what changed since the last backup;
- **differential**: `restic backup --parent <newest full of this volume in this
  repository>`: it reads what changed since that full (a plain full when there is none).

So the restore chain is always one point long and the restore time is the volume's
used bytes at the tier's restore rate. Snapshots carry the tags `piop-volume=<name>`,
`piop-kind=<kind>` and `piop-job=<id>`; the restore points of a volume are the snapshots
with its tag, or, made by hand, with exactly its paths (counted as fulls). The restore
point's time is restic's own snapshot time (when restic began). restic exit code 3
("snapshot created, but some source files could not be read") is a failure here: its
snapshot is tagged `piop-incomplete` and never counted as a restore point.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from datetime import datetime
from pathlib import Path

from host.agent.adapters.base import Adapter, JobSpec, Outcome, kind_name, last_line
from sim.types import BackupKind

INCOMPLETE = "piop-incomplete"
LOCKED = re.compile(r"already locked|unable to create lock", re.IGNORECASE)


def parse_time(text: str) -> float:
    """restic's RFC 3339 time (nanoseconds, `Z` or an offset) -> Unix seconds."""
    m = re.fullmatch(r"(.*T\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)?", text.strip())
    if not m:
        raise ValueError(f"not a restic time: {text!r}")
    frac = (m.group(2) or "0")[:6].ljust(6, "0")
    tz = m.group(3) or "Z"
    return datetime.fromisoformat(f"{m.group(1)}.{frac}{'+00:00' if tz == 'Z' else tz}").timestamp()


def tag_value(tags: list[str], key: str) -> str | None:
    for t in tags or []:
        if t.startswith(key + "="):
            return t[len(key) + 1 :]
    return None


class ResticAdapter(Adapter):
    tool = "restic"
    self_contained = True

    def __init__(self, repository: str, password_file: Path, init: bool = False, args: list[str] | None = None, timeout_s: float = 300.0):
        self.repository = repository
        self.password_file = password_file
        self.init = init
        self.args = list(args or [])
        self.timeout_s = timeout_s
        self.dry = False  # a dry run: create nothing (a repository to `init` is advised on as empty)
        self.missing = False  # the repository does not exist yet (a dry run with `init`)

    # ------------------------------------------------------------------ plumbing
    def env(self) -> dict[str, str]:
        return {**os.environ, "RESTIC_PASSWORD_FILE": str(self.password_file), "RESTIC_PROGRESS_FPS": "0.1"}

    def base(self) -> list[str]:
        return [shutil.which("restic") or "restic", "-r", self.repository, *self.args]

    def run(self, *args: str) -> subprocess.CompletedProcess:
        try:
            return subprocess.run([*self.base(), *args], env=self.env(), capture_output=True, text=True, timeout=self.timeout_s)
        except subprocess.TimeoutExpired:
            return subprocess.CompletedProcess(args, 124, "", f"restic {args[0]}: no answer in {self.timeout_s:g} s")

    @staticmethod
    def why(proc: subprocess.CompletedProcess) -> str:
        lines = [ln.strip() for ln in (proc.stderr or "").splitlines() if ln.strip()]
        fatal = [ln for ln in lines if "Fatal" in ln]
        return (fatal or lines or [f"exit code {proc.returncode}"])[0]

    # ------------------------------------------------------------------ adapter
    def check(self) -> str | None:
        if shutil.which("restic") is None:
            return "restic is not installed (e.g. apt-get install restic)"
        if not self.password_file.is_file():
            return f"password_file {self.password_file}: no such file"
        proc = self.run("--no-lock", "cat", "config")
        if proc.returncode == 0:
            return None
        missing = "Is there a repository" in proc.stderr or "does not exist" in proc.stderr
        if missing and self.init and self.dry:
            self.missing = True
            return None
        if missing and self.init:
            made = self.run("init")
            return None if made.returncode == 0 else f"restic repository {self.repository}: cannot create it: {self.why(made)}"
        if missing:
            return f"restic repository {self.repository}: does not exist (create it with `restic init`, or set restic.init: true)"
        return f"restic repository {self.repository}: {self.why(proc)}"

    def command(self, job: JobSpec) -> tuple[list[str], dict[str, str]]:
        argv = [*self.base(), "--json", "backup", "--tag", f"piop-volume={job.volume}", "--tag", f"piop-kind={kind_name(job.kind)}"]
        argv += ["--tag", f"piop-job={job.job_id}"]
        if job.kind == BackupKind.FULL or (job.kind == BackupKind.DIFFERENTIAL and job.parent_full is None):
            argv.append("--force")
        elif job.kind == BackupKind.DIFFERENTIAL:
            argv += ["--parent", job.parent_full]
        return [*argv, *job.paths], self.env()

    def outcome(self, job: JobSpec, folder: Path, rc: int | None) -> Outcome:
        summary = None
        try:
            with open(folder / "out", errors="replace") as fh:
                for line in fh:
                    if '"summary"' in line:
                        try:
                            msg = json.loads(line)
                        except ValueError:
                            continue
                        if msg.get("message_type") == "summary":
                            summary = msg
        except OSError:
            pass
        err = last_line(folder / "err")
        try:
            locked = bool(LOCKED.search((folder / "err").read_text(errors="replace")))
        except OSError:
            locked = False
        sid = summary.get("snapshot_id") if summary else None
        processed = float(summary["total_bytes_processed"]) if summary and "total_bytes_processed" in summary else None
        added = float(summary["data_added"]) if summary and "data_added" in summary else None
        if rc == 0 and sid:
            return Outcome(True, snapshot_id=sid, processed_bytes=processed, added_bytes=added)
        code = "killed" if rc is None else (f"killed by signal {-rc}" if rc < 0 else f"exit code {rc}")
        out = Outcome(
            False,
            f"restic backup failed ({code})" + (f": {err}" if err else ""),
            processed_bytes=processed,
            added_bytes=added,
            locked=locked,
        )
        if sid:  # a snapshot exists but restic did not call it a success (e.g. unreadable files)
            tagged = self.run("tag", "--add", INCOMPLETE, sid)
            out.notes.append(
                f"snapshot {sid} is incomplete; tagged {INCOMPLETE}"
                + ("" if tagged.returncode == 0 else f" (tagging failed: {self.why(tagged)})")
            )
        return out

    def snapshot_time(self, sid: str) -> float | None:
        proc = self.run("--json", "--no-lock", "snapshots", sid)
        try:
            return parse_time(json.loads(proc.stdout)[0]["time"]) if proc.returncode == 0 else None
        except (ValueError, IndexError, KeyError, TypeError):
            return None

    def points(self, volumes: dict[str, tuple[str, ...]]) -> list[dict] | None:
        if self.missing:
            return []
        proc = self.run("--json", "--no-lock", "snapshots")
        if proc.returncode != 0:
            raise OSError(f"restic snapshots on {self.repository}: {self.why(proc)}")
        by_paths = {tuple(sorted(p)): v for v, p in volumes.items()}
        rows = []
        for s in json.loads(proc.stdout or "[]") or []:
            tags = s.get("tags") or []
            if INCOMPLETE in tags:
                continue
            vol = tag_value(tags, "piop-volume") or by_paths.get(tuple(sorted(s.get("paths") or [])))
            if vol not in volumes:
                continue
            kind = tag_value(tags, "piop-kind") or "full"
            job = tag_value(tags, "piop-job")
            rows.append(
                {
                    "volume": vol,
                    "snapshot_id": s.get("short_id") or s["id"][:8],
                    "kind": kind,
                    "snapshot_t": parse_time(s["time"]),
                    "bytes": None,
                    "source": "restic",
                    "job": int(job) if job and job.isdigit() else None,
                }
            )
        return rows

    def cleanup(self) -> str | None:
        proc = self.run("unlock")
        if proc.returncode != 0:
            return f"restic unlock on {self.repository} failed: {self.why(proc)}"
        return f"restic unlock on {self.repository}: stale locks removed (a live lock stays)"

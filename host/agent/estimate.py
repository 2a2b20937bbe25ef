"""How many bytes a backup of a volume will read: a scan of its files' change times.

The simulator's changed-block tracking has no equivalent a file-level tool could use,
but the tools' own rule does: restic (and rsync, tar --newer, ...) reads a file again
when its size or change time moved since the parent snapshot. So the bytes an
incremental will read are the sizes of the regular files whose `max(mtime, ctime)` is
after the last snapshot, a differential those changed since the last full, and a full
everything (the volume's used bytes). One walk gives all three; it is reused for
`estimate_every` seconds (and redone when a snapshot moved the reference times), since
a large tree costs real I/O to walk. The device's sectors written since the last
snapshot (from /proc/diskstats) are kept beside it as a cross-check: an upper bound
(every writer on the device counts), and each job records both against what the tool
reported it read.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import numpy as np


@dataclass
class Scan:
    t: float  # Unix time of the walk
    since_snap: float  # the reference times it used (Unix seconds)
    since_full: float
    used: float
    changed_snap: float
    changed_full: float
    files: int
    errors: int


def scan(paths: tuple[str, ...], since_snap: float, since_full: float, max_entries: int = 2_000_000) -> Scan:
    """Walk `paths` (not following symlinks): used bytes and bytes changed after each time."""
    used = ch_snap = ch_full = 0.0
    files = errors = 0
    stack = list(paths)
    while stack and files < max_entries:
        top = stack.pop()
        try:
            st = os.stat(top, follow_symlinks=False)
            if not os.path.isdir(top) or os.path.islink(top):
                used, ch_snap, ch_full, files = _add(st, since_snap, since_full, used, ch_snap, ch_full, files)
                continue
            with os.scandir(top) as it:
                for e in it:
                    try:
                        if e.is_dir(follow_symlinks=False):
                            stack.append(e.path)
                        elif e.is_file(follow_symlinks=False):
                            used, ch_snap, ch_full, files = _add(
                                e.stat(follow_symlinks=False), since_snap, since_full, used, ch_snap, ch_full, files
                            )
                    except OSError:
                        errors += 1
        except OSError:
            errors += 1
    return Scan(time.time(), since_snap, since_full, used, ch_snap, ch_full, files, errors)


def _add(st: os.stat_result, a: float, b: float, used: float, ca: float, cb: float, files: int):
    size = float(st.st_size)
    changed = max(st.st_mtime, st.st_ctime)
    return used + size, ca + (size if changed > a else 0.0), cb + (size if changed > b else 0.0), files + 1


class DirtyEstimator:
    """Per-volume scans, reused for `every_s` seconds or until a reference time moves."""

    def __init__(self, paths: list[tuple[str, ...]], every_s: float):
        self.paths = paths
        self.every_s = every_s
        self.scans: list[Scan | None] = [None] * len(paths)
        self.scan_s = 0.0  # wall time spent walking

    def get(self, v: int, since_snap: float, since_full: float, now: float) -> Scan:
        s = self.scans[v]
        if s is None or now - s.t >= self.every_s or s.since_snap != since_snap or s.since_full != since_full:
            t0 = time.perf_counter()
            s = scan(self.paths[v], since_snap, since_full)
            self.scan_s += time.perf_counter() - t0
            self.scans[v] = s
        return s

    def dirty(self, last_snap_epoch: np.ndarray, last_full_epoch: np.ndarray, now: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(bytes changed since the last snapshot, since the last full, used bytes) per volume.

        A volume with no snapshot (or no full) counts every file as changed."""
        n = len(self.paths)
        out = np.zeros((3, n))
        for v in range(n):
            a = float(last_snap_epoch[v]) if np.isfinite(last_snap_epoch[v]) else -np.inf
            b = float(last_full_epoch[v]) if np.isfinite(last_full_epoch[v]) else -np.inf
            s = self.get(v, a, b, now)
            out[:, v] = (s.changed_snap, s.changed_full, s.used)
        return out[0], out[1], out[2]

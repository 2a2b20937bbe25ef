"""Worker processes die with the command that started them.

`piop compare --jobs 2` is killed with SIGKILL while its workers simulate: no worker may
outlive it (an orphan would finish its run, write it, and then wait for work forever).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import yaml
from cli_helpers import ROOT


def slow_config(tmp_path: Path) -> Path:
    """Runs that take tens of seconds each: still in flight when the parent is killed."""
    cfg = {
        "name": "orphans",
        "duration_h": 600,
        "seeds": [1, 2, 3],
        "fleet": [{"workload": "constant", "count": 2, "params": {"read_iops": 500, "write_iops": 100, "read_mbps": 10, "write_mbps": 5}}],
        "policies": [{"policy": "fixed"}, {"policy": "reactive"}],
    }
    path = tmp_path / "orphans.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def spawned_workers(parent: psutil.Process) -> list[psutil.Process]:
    return [c for c in parent.children(recursive=True) if "multiprocessing.spawn" in " ".join(c.cmdline())]


def test_workers_die_with_a_killed_parent(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-m", "experiments", "compare", str(slow_config(tmp_path)), "--jobs", "2", "--out", str(tmp_path / "r"), "-q"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    parent = psutil.Process(proc.pid)
    workers: list[psutil.Process] = []
    try:
        deadline = time.monotonic() + 120
        while len(workers) < 2 and time.monotonic() < deadline:
            time.sleep(0.5)
            workers = spawned_workers(parent)
        assert len(workers) == 2, "the two workers never started"
        time.sleep(8)  # both import and start simulating
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        gone, alive = psutil.wait_procs(workers, timeout=5)
        assert not alive, f"workers outlived their parent: {[p.pid for p in alive]}"
    finally:
        for p in [*workers, parent]:
            try:
                p.kill()
            except psutil.Error:
                pass

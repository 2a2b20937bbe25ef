"""Running `piop` as a user would, and checking its one-line errors (shared by CLI tests)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MONDAY = 1704067200.0  # 2024-01-01 00:00 UTC: the start of the tests' synthetic histories


def piop(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "experiments", *map(str, args)], capture_output=True, text=True, cwd=cwd or ROOT)


def assert_one_line_error(proc, *needles):
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    for n in needles:
        assert n in lines[0], lines[0]

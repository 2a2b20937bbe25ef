"""What every report figure shares: the file-only backend, colours, resolution, saving."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from common.atomic import atomic_path  # noqa: E402

KIND_COLOURS = {"full": "tab:red", "incremental": "tab:orange", "differential": "tab:purple"}
DPI = 100


def policy_colours(policies: Sequence[str]) -> dict[str, str]:
    """One colour per policy, the same in every figure of a report."""
    cmap = plt.get_cmap("tab10")
    return {p: cmap(i % 10) for i, p in enumerate(policies)}


def slug(s: str) -> str:
    """A policy or study name made safe for a file name."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", s)


def save_figure(fig, out: Path) -> Path:
    """Write `fig` as `out` atomically (a killed report leaves no half image) and close it."""
    with atomic_path(out) as tmp:
        fig.savefig(tmp, dpi=DPI)
    plt.close(fig)
    return Path(out)

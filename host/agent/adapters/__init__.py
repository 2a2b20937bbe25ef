"""Backup tool adapters: restic (`restic.py`) and a generic command template (`command.py`)."""

from __future__ import annotations

from pathlib import Path

from host.agent.adapters.base import Adapter, JobSpec, Outcome, kind_name
from host.agent.adapters.command import CommandAdapter
from host.agent.adapters.restic import ResticAdapter

__all__ = ["Adapter", "CommandAdapter", "JobSpec", "Outcome", "ResticAdapter", "for_tier", "kind_name"]


def for_tier(tier, resolve) -> Adapter:
    """The adapter of a tier config (`restic:` or `command:`); `resolve` makes config paths absolute."""
    if tier.restic is not None:
        r = tier.restic
        repo = r.repository
        if "://" not in repo and ":" not in repo.split("/")[0]:  # a local folder, not sftp:/s3:/rest:
            repo = str(resolve(repo))
        return ResticAdapter(repo, Path(resolve(r.password_file)), r.init, r.args)
    return CommandAdapter(tier.command)

"""Restore points of the agent's volumes and the per-volume figures the policy reads.

The same figures as the simulator's `RestoreBook`: newest snapshot, newest full, the
length of the chain a restore reads and its estimated time. A self-contained point (a
restic snapshot) restores alone: the chain is that point and the restore reads the
volume's used bytes at the tier's restore rate. Points of a generic command form chains
as in the simulator (`sim.chains`): newest full, newest differential after it, the
incrementals after that.
"""

from __future__ import annotations

import numpy as np

from common.units import MB
from sim.chains import RestorePoint, VolumeChain
from sim.types import BackupKind

KINDS = {k.name.lower(): k for k in BackupKind}


class PointBook:
    """Per-volume restore-point arrays on the agent's clock (seconds since `start_epoch`)."""

    def __init__(self, volumes: list[str], tiers: list[str], restore_mbps: list[float], overhead_s: float, start_epoch: float):
        n = len(volumes)
        self.index = {v: i for i, v in enumerate(volumes)}
        self.tier_index = {t: i for i, t in enumerate(tiers)}
        self.restore_mbps = restore_mbps
        self.overhead_s = overhead_s
        self.start_epoch = start_epoch
        self.rows: list[list[dict]] = [[] for _ in range(n)]
        self.last_snap = np.full(n, -np.inf)
        self.last_full = np.full(n, -np.inf)
        self.rto_est = np.full(n, np.inf)
        self.chain_len = np.zeros(n, np.int64)
        self.count = np.zeros(n, np.int64)

    def load(self, rows: list[dict], used_bytes: np.ndarray) -> None:
        """Rebuild from every known point (state rows and the tools' listings)."""
        for r in self.rows:
            r.clear()
        seen = set()
        for p in sorted(rows, key=lambda r: r["snapshot_t"]):
            v = self.index.get(p["volume"])
            key = (p["volume"], p["tier"], p["snapshot_id"])
            if v is None or p["tier"] not in self.tier_index or key in seen:
                continue
            seen.add(key)
            self.rows[v].append(p)
        for v in range(len(self.rows)):
            self.refresh(v, used_bytes[v])

    def add(self, p: dict, used_bytes: float) -> None:
        v = self.index[p["volume"]]
        self.rows[v].append(p)
        self.rows[v].sort(key=lambda r: r["snapshot_t"])
        self.refresh(v, used_bytes)

    def refresh(self, v: int, used_bytes: float) -> None:
        """Recompute volume `v`'s figures (also when its used bytes changed)."""
        pts = self.rows[v]
        self.count[v] = len(pts)
        if not pts:
            return
        newest = pts[-1]
        self.last_snap[v] = newest["snapshot_t"] - self.start_epoch
        fulls = [p for p in pts if p["kind"] == "full"]
        self.last_full[v] = fulls[-1]["snapshot_t"] - self.start_epoch if fulls else -np.inf
        if newest["source"] == "restic":
            self.chain_len[v] = 1
            rate = self.restore_mbps[self.tier_index[newest["tier"]]]
            self.rto_est[v] = used_bytes / (rate * MB) + self.overhead_s
            return
        chain = VolumeChain()
        for p in pts:
            if p["source"] == "restic":
                continue
            size = used_bytes if p["kind"] == "full" else float(p["bytes"] or 0.0)
            chain.add(RestorePoint(KINDS[p["kind"]], p["snapshot_t"], p["snapshot_t"], size, self.tier_index[p["tier"]]))
        self.chain_len[v] = len(chain.restore_chain())
        self.rto_est[v] = chain.restore_seconds(self.restore_mbps, self.overhead_s)

    def newest_full_id(self, volume: str, tier: str) -> str | None:
        """The tool id of the volume's newest full on `tier` (a differential's parent)."""
        for p in reversed(self.rows[self.index[volume]]):
            if p["tier"] == tier and p["kind"] == "full":
                return p["snapshot_id"]
        return None


def gather_points(state, host, names: list[str], dry_run: bool, log) -> list[dict]:
    """Restore points: the state's, and every one the tools list (those the state did not
    know are added to it, so none is lost across restarts); a tool that cannot list is one line."""
    rows = state.points() if state else []
    by_tool = {name: paths for name, paths, own in zip(names, host.paths, host.own) if own is None}
    for t, a in zip(host.tiers, host.adapters):
        try:
            listed = a.points(by_tool) if by_tool else None
        except (OSError, ValueError) as err:
            log(f"error: tier {t.name}: cannot list restore points: {err}")
            continue
        for r in listed or []:
            r["tier"] = t.name
        rows += listed or []
    if state is not None and not dry_run:
        with state.tx():
            new = state.add_points(rows)
        if new:
            log(f"restore points: {new} found in the tools' listings that the state did not know")
    return rows

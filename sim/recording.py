"""What a run leaves behind: the `RunResult` and the logs and frames it is built from.

The simulator appends plain rows and arrays while it runs (cheap) and turns them into
pandas frames once at the end: jobs, scheduler decisions, per-volume metrics, bytes per
tier and kind, the per-volume time series and the forecast-vs-actual log.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from common.units import GB, HOUR_S
from sim.jobs import Job
from sim.metrics import MetricsAccumulator
from sim.tiers import Tier
from sim.types import Action, BackupKind, Forecast, LoadHistory, VolumeTable

JOB_COLUMNS = ["volume", "kind", "tier", "queued_t", "snapshot_t", "complete_t", "size_bytes", "moved_bytes", "pauses", "forced", "reason"]
DECISION_COLUMNS = ["t", "volume", "action", "kind", "tier", "rate_mbps", "reason", "forced", "accepted"]
SERIES_COLUMNS = ("prod_iops", "prod_mbps", "backup_mbps", "impact", "rp_age_s", "rto_estimate_s", "utilisation")


@dataclass
class RunResult:
    fleet: dict[str, float]
    volumes: pd.DataFrame
    jobs: pd.DataFrame
    decisions: pd.DataFrame
    series: pd.DataFrame | None
    backup: pd.DataFrame  # bytes moved per tier and kind
    meta: dict = field(default_factory=dict)
    forecasts: pd.DataFrame | None = None  # what the policy was told vs what happened


# ----------------------------------------------------------------------------- rows


def job_row(job: Job, volume_id: str, tier_name: str) -> dict:
    """The row of a completed job in `RunResult.jobs`."""
    return {
        "volume": volume_id,
        "kind": job.kind.name.lower(),
        "tier": tier_name,
        "queued_t": job.queued_t,
        "snapshot_t": job.snapshot_t,
        "complete_t": job.complete_t,
        "size_bytes": job.size_bytes,
        "moved_bytes": job.moved_bytes,
        "pauses": job.pauses,
        "forced": job.forced,
        "reason": job.reason,
    }


def decision_row(a: Action, t: float, accepted: bool, volume_id: str, tiers: list[Tier]) -> tuple:
    """The row of a scheduler action in `RunResult.decisions`."""
    kind = getattr(a, "kind", None)
    tier = getattr(a, "tier", None)
    return (
        t,
        volume_id,
        type(a).__name__.lower(),
        BackupKind(kind).name.lower() if kind is not None else "",
        tiers[tier].spec.name if tier is not None and 0 <= tier < len(tiers) else "",
        float(getattr(a, "rate_mbps", None) or np.nan),
        a.reason,
        bool(getattr(a, "forced", False)),
        accepted,
    )


# ----------------------------------------------------------------------------- time series


class SeriesLog:
    """Per-volume time series at the recording resolution, block by block.

    Rows go into preallocated `[rows, volumes]` float32 arrays (the frame's own dtype, so
    memory is one copy of the result, linear in volumes); `rows` sizes them up front (the
    run's recorded steps), and they grow by doubling past it."""

    def __init__(self, ids: list[str], rows: int = 0):
        self.ids = ids
        self.n_rows = 0
        self.blocks = 0  # blocks added (a run shorter than one row still has a frame, an empty one)
        self._t = np.empty(max(0, rows))
        self._cols = {key: np.empty((max(0, rows), len(ids)), np.float32) for key in SERIES_COLUMNS}

    def add_block(self, b0: int, dt: float, every: int, columns: dict[str, np.ndarray]) -> None:
        """Fold `[n_ticks, n_volumes]` arrays of the block from tick `b0` into `every`-tick rows.

        Rows are means, except restore-point age and RTO estimate: their maxima.
        """
        r = every
        m = next(iter(columns.values())).shape[0] // r
        lo, hi = self.n_rows, self.n_rows + m
        self._reserve(hi)
        self._t[lo:hi] = (np.arange(m) * r + b0) * dt
        for key, x in columns.items():
            folded = x[: m * r].reshape(m, r, -1)
            self._cols[key][lo:hi] = folded.max(axis=1) if key in ("rp_age_s", "rto_estimate_s") else folded.mean(axis=1)
        self.n_rows = hi
        self.blocks += 1

    def _reserve(self, rows: int) -> None:
        if rows <= self._t.shape[0]:
            return
        cap = max(rows, 2 * self._t.shape[0])
        self._t = np.concatenate([self._t[: self.n_rows], np.empty(cap - self.n_rows)])
        for key, a in self._cols.items():
            self._cols[key] = np.concatenate([a[: self.n_rows], np.empty((cap - self.n_rows, a.shape[1]), np.float32)])

    def frame(self) -> pd.DataFrame | None:
        if self.blocks == 0:
            return None
        t = self._t[: self.n_rows]
        n = len(self.ids)
        cols = {"t": np.repeat(t, n), "volume": np.tile(np.array(self.ids, dtype=object), t.size)}
        for key in SERIES_COLUMNS:
            cols[key] = self._cols[key][: self.n_rows].ravel()
        return pd.DataFrame(cols, copy=False)  # the columns are the log's own arrays (no second copy)


# ----------------------------------------------------------------------------- forecasts


class ForecastLog:
    """The forecast the policy was given for one hour ahead (or the horizon's last step)."""

    def __init__(self, ids: list[str]):
        self.ids = ids
        self.rows: list[tuple[int, str, np.ndarray]] = []  # (target step, model, [4, V])

    def add(self, fc: Forecast | None, n_steps: int) -> None:
        """Log `fc`, made when the history held `n_steps` steps."""
        if fc is None or fc.horizon == 0:
            return
        lead = min(fc.horizon, max(1, round(HOUR_S / fc.step_s))) - 1
        values = np.stack([fc.mean[:, lead, 0], fc.upper[:, lead, 0], fc.mean[:, lead, 1], fc.upper[:, lead, 1]])
        self.rows.append((n_steps + lead, fc.model, values.astype(np.float32)))

    def frame(self, hist: LoadHistory) -> pd.DataFrame | None:
        """Logged forecasts next to what happened (steps the run reached only)."""
        if not self.rows:
            return None
        step_s = hist.step_s
        n = len(self.ids)
        rows = [(i, m, v) for i, m, v in self.rows if i < hist.n_steps]
        if not rows:
            return None
        idx = np.array([i for i, _, _ in rows])
        vals = np.stack([v for _, _, v in rows])  # [rows, 4, V]
        return pd.DataFrame(
            {
                "t": np.repeat(idx * step_s, n),
                "volume": np.tile(np.array(self.ids, dtype=object), len(rows)),
                "model": np.repeat(np.array([m for _, m, _ in rows], dtype=object), n),
                "iops_mean": vals[:, 0].ravel(),
                "iops_upper": vals[:, 1].ravel(),
                "iops_actual": hist.iops[idx].ravel(),
                "mbps_mean": vals[:, 2].ravel(),
                "mbps_upper": vals[:, 3].ravel(),
                "mbps_actual": hist.mbps[idx].ravel(),
            }
        )


# ----------------------------------------------------------------------------- result


def build_result(
    table: VolumeTable,
    tiers: list[Tier],
    metrics: MetricsAccumulator,
    job_log: list[dict],
    decision_log: list[tuple],
    moved: np.ndarray,
    timing: dict[str, float],
) -> RunResult:
    """Frames and fleet figures of a finished run (series and forecasts are set by the caller)."""
    per_vol = pd.DataFrame(
        {
            "volume": table.ids,
            "kind": table.kinds,
            "device": table.device,
            "rpo_s": table.rpo_s,
            "rto_s": table.rto_s,
            **metrics.per_volume(),
        }
    )
    jobs = pd.DataFrame(job_log, columns=JOB_COLUMNS)
    counts = jobs.groupby("kind").size() if len(jobs) else pd.Series(dtype=int)
    per_vol["jobs"] = per_vol["volume"].map(jobs.groupby("volume").size()).fillna(0).astype(int) if len(jobs) else 0
    per_vol["backup_bytes"] = per_vol["volume"].map(jobs.groupby("volume")["size_bytes"].sum()).fillna(0.0) if len(jobs) else 0.0
    decisions = pd.DataFrame(decision_log, columns=DECISION_COLUMNS)
    backup = pd.DataFrame(
        [{"tier": tier.spec.name, "kind": k.name.lower(), "bytes": float(moved[tier.index, k])} for tier in tiers for k in BackupKind]
    )
    fleet = metrics.fleet()
    fleet.update(
        {
            "backup_tb": float(moved.sum() / (1e3 * GB)),
            "jobs_full": int(counts.get("full", 0)),
            "jobs_incremental": int(counts.get("incremental", 0)),
            "jobs_differential": int(counts.get("differential", 0)),
            "forced_decisions": int(decisions["forced"].sum()) if len(decisions) else 0,
            "storage_cost": float(sum(t.cost for t in tiers)),
            "sim_wall_s": timing["sim_s"],
            "decide_wall_s": timing["decide_s"],
            "forecast_wall_s": timing["forecast_s"],
        }
    )
    return RunResult(fleet=fleet, volumes=per_vol, jobs=jobs, decisions=decisions, series=None, backup=backup)

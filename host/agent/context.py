"""The `DecisionContext` of a real host: every field the simulator fills, from real state.

Field by field, as `sim/context.py` fills it:

- `t`, `tick`, `tick_s`: seconds since the agent's clock origin (kept across restarts),
  the decision count on that clock, and the decision period (the host's "tick": load is
  observed once per period);
- `volumes`: the config's volumes (device model, RPO, RTO; used bytes from the latest
  scan of their files); `tiers`: the config's tiers with the jobs holding and waiting
  for their slots now, and the bytes the agent's backups added to them;
- `impact_threshold`, `backup_max_util`, `restore_overhead_s`, `history_step_s`,
  `start_epoch`: the config's (the clock origin's calendar time);
- restore points (`rp_age_s`, `last_snapshot_t`, `last_full_t`, `rto_estimate_s`,
  `chain_len`): from the restore points the tools list and the state keeps (`points.py`);
- the job of each volume (`job_*`): from the live jobs (`jobs.py`), its rate being what
  it read from the source device in the last period;
- `prod_iops`, `prod_mbps`: the last period's production load (device minus backups);
  `impact`: the device model's impact of the backup reads measured on top of it;
- `dirty_bytes()`: the changed-file scan (`estimate.py`), only when the policy asks;
  `history()`: the observed steps; `forecast`: the forecast service's latest.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from host.agent.jobs import JobTable
from host.agent.points import PointBook
from sim.types import DecisionContext, DeviceClass, Forecast, LoadHistory, TierView, VolumeTable, impact


def volume_table(vols: list, models: list[DeviceClass], devices: list[str], used_bytes: np.ndarray) -> VolumeTable:
    return VolumeTable(
        ids=[v.name for v in vols],
        kinds=[v.kind for v in vols],
        device=devices,
        max_iops=np.array([m.max_iops for m in models], float),
        max_mbps=np.array([m.max_mbps for m in models], float),
        base_latency_ms=np.array([m.base_latency_ms for m in models], float),
        used_bytes=used_bytes,
        rpo_s=np.array([v.rpo for v in vols], float),
        rto_s=np.array([v.rto for v in vols], float),
    )


def tier_views(tiers: list, jobs: JobTable, stored: list[float]) -> list[TierView]:
    return [
        TierView(
            index=i,
            name=t.name,
            media=t.media,
            ingest_mbps=t.ingest_mbps,
            restore_mbps=t.restore_mbps,
            slots=t.slots,
            busy=jobs.busy(i),
            queued=jobs.queued(i),
            priority=t.priority,
            cost_per_gb_month=t.cost_per_gb_month,
            stored_bytes=stored[i],
            capacity_bytes=t.capacity_gb * 1e9,
        )
        for i, t in enumerate(tiers)
    ]


def observed_impact(table: VolumeTable, prod_iops: np.ndarray, prod_mbps: np.ndarray, backup_mbps: np.ndarray) -> np.ndarray:
    """Impact of the last period by the device model (zero where no backup read)."""
    out = np.zeros(table.n)
    on = np.flatnonzero(backup_mbps > 0)
    if on.size:
        out[on] = impact(prod_iops[on], prod_mbps[on], backup_mbps[on], table.max_iops[on], table.max_mbps[on])
    return out


def build_context(
    t: float,
    cfg,
    start_epoch: float,
    table: VolumeTable,
    tiers: list[TierView],
    book: PointBook,
    jobs: JobTable,
    prod: tuple[np.ndarray, np.ndarray],
    dirty: Callable[[], tuple[np.ndarray, np.ndarray]],
    history: Callable[[], LoadHistory],
    forecast: Forecast | None,
) -> DecisionContext:
    """The context of a decision at agent time `t`; `prod` is the last period's (iops, mbps)."""
    prod_iops, prod_mbps = prod
    return DecisionContext(
        t=t,
        tick=int(round(t / cfg.period)),
        tick_s=cfg.period,
        volumes=table,
        tiers=tiers,
        impact_threshold=cfg.impact_threshold,
        start_epoch=start_epoch,
        backup_max_util=cfg.backup_max_util,
        restore_overhead_s=cfg.restore_overhead,
        history_step_s=cfg.history_step,
        rp_age_s=t - book.last_snap,
        last_snapshot_t=book.last_snap.copy(),
        last_full_t=book.last_full.copy(),
        rto_estimate_s=book.rto_est.copy(),
        chain_len=book.chain_len.copy(),
        job_kind=jobs.kind.copy(),
        job_state=jobs.jstate.copy(),
        job_tier=jobs.tier.copy(),
        job_rate_mbps=jobs.rate.copy(),
        job_throttle_mbps=jobs.throttle.copy(),
        job_remaining_bytes=jobs.remaining.copy(),
        prod_iops=prod_iops,
        prod_mbps=prod_mbps,
        impact=observed_impact(table, prod_iops, prod_mbps, jobs.rate),
        _dirty=dirty,
        _history=history,
        forecast=forecast,
    )

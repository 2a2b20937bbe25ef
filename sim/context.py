"""The `DecisionContext` the simulator hands its scheduler, and the tier views in it.

The context holds the live state arrays (not copies: a decision costs no per-volume
allocation) and the observations of the last tick; changed-block tracking and the load
history are computed only when the scheduler asks for them.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from sim.devices import impact
from sim.jobs import JobTable
from sim.restore import RestoreBook
from sim.spec import SimSpec
from sim.tiers import Tier
from sim.types import DecisionContext, Forecast, LoadHistory, TierView, VolumeTable


def tier_views(tiers: list[Tier]) -> list[TierView]:
    """Each tier's configuration and current occupancy."""
    return [
        TierView(
            index=tier.index,
            name=tier.spec.name,
            media=tier.spec.media,
            ingest_mbps=tier.spec.ingest_mbps,
            restore_mbps=tier.spec.restore_mbps,
            slots=tier.spec.slots,
            busy=tier.slots.count,
            queued=len(tier.slots.queue),
            priority=tier.spec.priority,
            cost_per_gb_month=tier.spec.cost_per_gb_month,
            stored_bytes=tier.stored_bytes,
            capacity_bytes=tier.spec.capacity_bytes,
        )
        for tier in tiers
    ]


def observed_impact(table: VolumeTable, prod_iops: np.ndarray, prod_mbps: np.ndarray, backup_mbps: np.ndarray) -> np.ndarray:
    """Impact of the last tick (zero where no backup ran)."""
    out = np.zeros(table.n)
    on = np.flatnonzero(backup_mbps > 0)
    if on.size:
        out[on] = impact(prod_iops[on], prod_mbps[on], backup_mbps[on], table.max_iops[on], table.max_mbps[on])
    return out


def build_context(
    t: float,
    tick: int,
    spec: SimSpec,
    table: VolumeTable,
    tiers: list[Tier],
    points: RestoreBook,
    jobs: JobTable,
    prod: tuple[np.ndarray, np.ndarray],
    dirty: Callable[[], tuple[np.ndarray, np.ndarray]],
    history: Callable[[], LoadHistory],
    forecast: Forecast | None,
) -> DecisionContext:
    """The context of a decision at `t`; `prod` is the last tick's (iops, mbps)."""
    prod_iops, prod_mbps = prod
    return DecisionContext(
        t=t,
        tick=tick,
        tick_s=spec.tick_s,
        volumes=table,
        tiers=tier_views(tiers),
        impact_threshold=spec.impact_threshold,
        start_epoch=spec.start_epoch,
        backup_max_util=spec.backup_max_util,
        restore_overhead_s=spec.restore_overhead_s,
        history_step_s=spec.history_step_s,
        rp_age_s=t - points.last_snap,
        last_snapshot_t=points.last_snap,
        last_full_t=points.last_full,
        rto_estimate_s=points.rto_est,
        chain_len=points.chain_len,
        job_kind=jobs.kind,
        job_state=jobs.state,
        job_tier=jobs.tier,
        job_rate_mbps=jobs.rate,
        job_throttle_mbps=jobs.throttle,
        job_remaining_bytes=jobs.remaining,
        prod_iops=prod_iops,
        prod_mbps=prod_mbps,
        impact=observed_impact(table, prod_iops, prod_mbps, jobs.backup_mbps),
        _dirty=dirty,
        _history=history,
        forecast=forecast,
    )

"""Every threshold and weight of the predictive policy (all tunable), validated once.

The run's own settings (the impact threshold, the device headroom a backup may use, the
per-restore-point overhead, the history step) are read from the `DecisionContext`, so the
policy plans with the values the environment scores it with; only `impact_threshold` may
be overridden here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class PredictiveParams:
    """Every threshold and weight of the predictive policy (all tunable).

    How hard:
        impact_threshold: acceptable relative latency increase; None = the run's. Default None.
        impact_target: plan rates for this fraction of the threshold (room for forecast error). Default 0.8.
        min_rate_mbps: slowest useful rate; a step allowing less counts as blocked. Default 2.0.
        rethrottle_tol: re-throttle a job when its target rate moves by more than this fraction. Default 0.15.
        pause_bursts: pause running jobs through predicted bursts / blocked steps. Default True.
        pause_max_h: pause only through predicted bursts at most this long. Default 1.0.
        (Forced rates are bounded by the run's `backup_max_util`, read from the context.)
    When:
        horizon_h: planning horizon; None = the forecast's whole horizon. Default None.
        lookahead: plan the cheapest *sequence* of backups over the horizon (a shortest path over
            start steps, each hop within the RPO) and start now when it begins now; False: the
            greedy rule (latest start within `window_tolerance` of the cheapest cost per GB). Default True.
        job_overhead_gb: fixed cost of one more backup, as GB moved at its window's price
            (restore-chain growth, per-job work); damps over-frequent backups. Default 0.0.
        window_tolerance: (greedy) a window costing within this fraction of the cheapest counts as cheapest. Default 0.1.
        min_interval_frac: no planned start sooner than this x RPO after the last snapshot (a
            plan may otherwise chain near-free tiny backups, each growing the restore chain). Default 0.25.
        deadline_margin_frac: finish this fraction of the RPO before the deadline... Default 0.05.
        deadline_margin_s: ...and at least this many seconds before it. Default 600.
        duration_safety: planned job durations are stretched by this factor. Default 1.5.
        quiet_ratio: extra backup when the job now costs (per GB) at most this x the horizon's
            median; 0 = only where it costs nothing (the lookahead adds quiet-period backups where
            they pay). Default 0.0.
        quiet_min_interval_frac: quiet-period extra backups at most every this x RPO. Default 0.25.
        sustained_penalty: extra cost weight of steps labelled sustained load. Default 0.5.
        size_margin: planned sizes are CBT's dirty bytes (+ predicted growth) x (1 + this). Default 0.1.
        dirty_exponent: prior of the growth law: unique dirty bytes grow as kappa x (production
            I/O since the snapshot) ** this (hot chunks are re-dirtied: a Zipf working set gives
            about 1 / zipf_s); kappa and the exponent are refitted per volume from CBT. Default 0.6.
        growth_memory: forgetting factor per CBT sample (every history step) of that fit. Default 0.995.
    What:
        full_every_h: a full is due this long after the last one; None = only when RTO needs one. Default 168.
        full_early_h: a due full may start up to this much early, in a quiet window. Default 24.
        full_late_h: a full due by `full_every_h` that no window fitted is taken this long after it was due
            (a full, at the rates its RPO deadline needs), unless the fleet's tiers are short of capacity (RPO
            first); None = it waits for a window for ever. Default 24.
        full_quiet_ratio: an early full needs a window costing (per GB) at most this x the horizon median. Default 0.5.
        full_diff_frac: take a full instead of a differential this large (fraction of used bytes). Default 0.5.
        rto_margin: keep the predicted RTO estimate under this fraction of the RTO. Default 0.9.
        max_chain: take a differential when the restore chain is this long; None = no limit. Default None.
        (The per-restore-point overhead of the RTO estimate is the run's `restore_overhead_s`.)
    Where:
        tier: always use this tier (name); None = choose per job. Default None.
        w_cost: weight of the tier's storage cost (normalised 0..1 across tiers). Default 1.0.
        w_priority: weight of the tier's configured priority (normalised 0..1). Default 0.5.
        w_contention: weight of (busy + queued) / slots. Default 1.0.
        full_slot_penalty: extra score of a tier with no free slot. Default 2.0.
        w_urgency: weight of urgency (1 at no slack) x how much the tier's ingest share would
            slow the job (or, with no free slot, its slower ingest). Default 3.0.
        w_rto: weight of RTO pressure: how far the RTO estimate with this job on the tier
            passes `rto_tight_frac` x RTO (0..1). Default 3.0.
        urgent_slack_frac: urgency grows as the slack falls below this fraction of the RPO. Default 0.25.
        rto_tight_frac: RTO pressure grows as the predicted RTO passes this fraction of the RTO. Default 0.5.
    RPO first (the fleet's earliest-deadline-first view, `fleet`):
        queue_per_tier: a tier's queue (first come, first served) takes at most this many starts
            beyond its free slots; the rest wait, most urgent first, for the next free slot. Default 1.
        full_slots_frac: fulls due only by the calendar (`full_every_h`) hold at most this fraction of a
            tier's slots (at least one), so restore points keep flowing through the rest. Default 0.5.
    Now-cast:
        nowcast: the current step's upper load is at least the last tick's observed load, and
            running jobs are re-throttled at the tick observed load passes the forecast by
            more than `rethrottle_tol`. Default False: on the Bitbrains replay it cost more
            impact than it saved (jobs throttled in a surprise run on into later load), on
            the synthetic fleet it removed most I/O over the threshold at the same mean.
    Fallback (no forecast yet; its steps are the run's history step):
        fallback_upper: upper forecast = this x the observed EWMA load. Default 1.5.
        fallback_horizon_h: flat forecast horizon. Default 6.0.
        ewma_s: time constant of the observed-load EWMA. Default 300.
    """

    impact_threshold: float | None = None
    impact_target: float = 0.8
    min_rate_mbps: float = 2.0
    rethrottle_tol: float = 0.15
    pause_bursts: bool = True
    pause_max_h: float = 1.0
    horizon_h: float | None = None
    lookahead: bool = True
    job_overhead_gb: float = 0.0
    window_tolerance: float = 0.1
    min_interval_frac: float = 0.25
    deadline_margin_frac: float = 0.05
    deadline_margin_s: float = 600.0
    duration_safety: float = 1.5
    quiet_ratio: float = 0.0
    quiet_min_interval_frac: float = 0.25
    sustained_penalty: float = 0.5
    size_margin: float = 0.1
    dirty_exponent: float = 0.6
    growth_memory: float = 0.995
    full_every_h: float | None = 168.0
    full_early_h: float = 24.0
    full_late_h: float | None = 24.0
    full_quiet_ratio: float = 0.5
    full_diff_frac: float = 0.5
    rto_margin: float = 0.9
    max_chain: int | None = None
    tier: str | None = None
    w_cost: float = 1.0
    w_priority: float = 0.5
    w_contention: float = 1.0
    full_slot_penalty: float = 2.0
    w_urgency: float = 3.0
    w_rto: float = 3.0
    urgent_slack_frac: float = 0.25
    rto_tight_frac: float = 0.5
    queue_per_tier: int = 1
    full_slots_frac: float = 0.5
    fallback_upper: float = 1.5
    fallback_horizon_h: float = 6.0
    ewma_s: float = 300.0
    nowcast: bool = False

    def __post_init__(self) -> None:
        positive = (
            "impact_target",
            "duration_safety",
            "rto_margin",
            "ewma_s",
            "fallback_horizon_h",
            "fallback_upper",
            "dirty_exponent",
            "growth_memory",
        )
        for name in positive:
            if not getattr(self, name) > 0:
                raise ValueError(f"predictive: {name} must be > 0, got {getattr(self, name)}")
        if self.queue_per_tier < 0:
            raise ValueError(f"predictive: queue_per_tier must be >= 0, got {self.queue_per_tier}")
        if self.full_late_h is not None and not self.full_late_h >= 0:
            raise ValueError(f"predictive: full_late_h must be >= 0 or None, got {self.full_late_h}")
        if self.impact_threshold is not None and self.impact_threshold <= 0:
            raise ValueError("predictive: impact_threshold must be > 0")
        if not 0 < self.full_slots_frac <= 1:
            raise ValueError(f"predictive: full_slots_frac must be in (0, 1], got {self.full_slots_frac}")
        for name in ("window_tolerance", "quiet_ratio", "quiet_min_interval_frac", "sustained_penalty", "size_margin", "min_rate_mbps"):
            if getattr(self, name) < 0:
                raise ValueError(f"predictive: {name} must be >= 0, got {getattr(self, name)}")

    def planning_threshold(self, run_threshold: float) -> float:
        """The impact rates are planned for: the threshold (this one's or the run's) x `impact_target`."""
        return (run_threshold if self.impact_threshold is None else self.impact_threshold) * self.impact_target

    def margin(self, rpo: np.ndarray) -> np.ndarray:
        """How long before the RPO deadline a backup should be complete."""
        return np.maximum(self.deadline_margin_s, self.deadline_margin_frac * rpo)

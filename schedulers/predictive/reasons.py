"""The reason every action of the predictive policy carries: the forecast facts it used.

Reasons land in the decision log, so a reader can check each choice against the numbers
it was made on (forecast, predicted impact, deadline, RTO estimate, tier scores).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from common.units import GB, HOUR_S
from schedulers.predictive.params import PredictiveParams
from sim.types import BackupKind, Forecast

if TYPE_CHECKING:  # (only for the type: the planner does not need its reasons)
    from schedulers.predictive.windows import Plan

# ----------------------------------------------------------------------------- forecast, kind, tier


def forecast(fc: Forecast, flat: bool) -> str:
    """The forecast a decision was made on (model, upper quantile, origin)."""
    if flat:
        return "no forecast yet: flat observed EWMA"
    return f"forecast {fc.model or '?'} p{round(100 * fc.quantile)} @{fc.origin_t / HOUR_S:.2f}h"


def kind(
    k: BackupKind,
    rto_s: float,
    rto_est_s: float,
    rto_after: float,
    after_incr: float,
    lim: float,
    soft_full: bool,
    full_every_h: float | None,
) -> str:
    """Why this kind: the RTO estimates behind it (`rto_est_s`: the volume's current estimate)."""
    if k == BackupKind.INCREMENTAL:
        return f"RTO est after {rto_after / HOUR_S:.2f} h <= {lim / HOUR_S:.2f} h"
    if k == BackupKind.DIFFERENTIAL:
        return f"incremental would make RTO est {after_incr / HOUR_S:.2f} h > {lim / HOUR_S:.2f} h (RTO {rto_s / HOUR_S:g} h)"
    if soft_full:
        return f"full due (every {full_every_h:g} h)"
    if not np.isfinite(rto_est_s):
        return "no restore chain"
    return f"differential too large or RTO est {after_incr / HOUR_S:.2f} h > {lim / HOUR_S:.2f} h"


def overdue_full(full_every_h: float, since_full_s: float, full_late_h: float) -> str:
    """Why a calendar full starts now although no window fitted it."""
    late = since_full_s / HOUR_S - full_every_h
    return f"full overdue: due every {full_every_h:g} h, now {late:.1f} h past due (no window fitted it within {full_late_h:g} h)"


def configured_tier(name: str) -> str:
    return f"tier {name} (configured)"


def chosen_tier(name: str, urgency: float, rto_pressure: np.ndarray, k: int, free: float) -> str:
    """The facts of a tier choice: urgency, RTO pressure on the chosen tier, free slots."""
    parts = []
    if urgency > 0:
        parts.append(f"urgency {urgency:.2f}")
    if rto_pressure.max() > 0:
        parts.append(f"RTO pressure {rto_pressure[k]:.2f} (max {rto_pressure.max():.2f})")
    parts.append(f"{int(max(free, 0))} slots free")
    return f"tier {name} ({', '.join(parts)})"


def edf_urgent(count: int, until_s: float, need: float, avail: float, unit: str) -> str:
    """Why a volume starts before its plan would: the fleet's earliest-deadline-first schedule
    (`need` of the resource in `unit` that ran short by then, `avail` of it)."""
    return (
        f"RPO first (earliest deadline first over the tiers): {count} backups due by +{until_s / HOUR_S:.1f} h need "
        f"{need:.3g} {unit}, {max(avail, 0.0):.3g} available at the planned rates: start now, in deadline order"
    )


def saturated(misses: list[tuple[str, float]], capacity: str, tiers_short: bool, top: int = 3) -> str:
    """No schedule meets every RPO: who misses, by how much, and what would suffice (when the tiers are short)."""
    worst = ", ".join(f"{v} by {s / HOUR_S:.1f} h" for v, s in misses[:top]) + (" ..." if len(misses) > top else "")
    if tiers_short:
        return f"tiers saturated: no schedule meets every RPO, {len(misses)} volumes miss ({worst}); {capacity}"
    return f"no schedule meets every RPO: {len(misses)} volumes miss ({worst}), their sources too slow or their deadlines past"


def mbps(x: float) -> str:
    """A rate in MB/s with the digits that tell it apart from another (never "0 > 0")."""
    return f"{x:.3g}" if abs(x) < 10 else f"{x:.0f}"


# ----------------------------------------------------------------------------- starts


@dataclass
class StartFacts:
    """What a start's reason reports."""

    kind: BackupKind
    size: float  # bytes
    rate: float  # MB/s
    impact: float  # predicted at the upper forecast and `rate`
    quantile: int  # of the upper forecast, in percent
    threshold: float  # the impact threshold (not the planning target)
    left_s: float  # to the RPO deadline
    what: str  # why this kind
    tier: str  # why this tier
    forecast: str

    @property
    def deadline(self) -> str:
        return f"deadline in {self.left_s / HOUR_S:.1f} h" if np.isfinite(self.left_s) else "no restore point"


def forced(f: StartFacts, need_mbps: float, threshold_mbps: float) -> str:
    return (
        f"forced: no window completes under the threshold before the RPO deadline ({f.deadline}); "
        f"{_needs(need_mbps)} > {mbps(threshold_mbps)} MB/s at the threshold {f.threshold:g}; "
        f"{f.kind.name.lower()} {_gb(f.size)} at {mbps(f.rate)} MB/s, predicted p{f.quantile} impact {f.impact:.3f}; "
        f"{f.what}; {f.tier}; {f.forecast}"
    )


def planned(f: StartFacts, head: str, dur_s: float) -> str:
    """A start the plan (or contention, or the deadline) chose; `head` says which rule."""
    return (
        f"{head}; predicted p{f.quantile} impact {f.impact:.3f} {'<=' if f.impact <= f.threshold + 1e-12 else '>'} {f.threshold:g} "
        f"at {mbps(f.rate)} MB/s, est {dur_s / HOUR_S:.2f} h; {f.deadline}; {f.kind.name.lower()} {_gb(f.size)}, {f.what}; "
        f"{f.tier}; {f.forecast}"
    )


def _needs(need_mbps: float) -> str:
    if np.isfinite(need_mbps):
        return f"needs {mbps(need_mbps)} MB/s"
    return "its deadline less the margin has passed: needs any rate"


def _gb(nbytes: float) -> str:
    return f"{nbytes / GB:.1f} GB" if nbytes >= 0.05 * GB else f"{nbytes / 1e6:.3g} MB"


def start_rule(
    p: PredictiveParams, plan: Plan, j: int, first: bool, age_s: float, urgent: bool, urgent_why: str, t: float
) -> tuple[str, str]:
    """(the rule that chose planned volume `j`'s start, not forced, in words; its counter in the
    policy's summary). `plan`: the window planner's `Plan`; `first`: an incremental first, so the
    full or differential fits after it; `urgent`: the fleet's EDF schedule needs the start now."""
    if first:
        return incremental_first("full or differential"), "starts_incremental_first"
    if plan.empty[j]:
        return empty(age_s), "starts_empty"
    if plan.late[j] or plan.forced[j]:  # (forced, but the rate it gets keeps the impact under the threshold)
        return late(plan.need_rate[j]), "starts_late"
    if urgent and not plan.start_now[j]:
        return urgent_why, "starts_rpo_first"
    if plan.quiet[j]:
        return quiet(p, plan.cost_now[j], plan.cost_median[j]), "starts_quiet"
    if plan.path[j] is not None and np.isnan(plan.cost_wait[j]):
        return flat_price(plan.cost_now[j]), "starts_flat_price"
    if plan.path[j] is not None:
        return sequence(t, plan.path[j], plan.cost_best[j], plan.cost_wait[j], plan.cost_now[j]), "starts_lookahead"
    return window(plan.cost_now[j], plan.cost_best[j], plan.cost_median[j]), "starts_window"


def late(need_mbps: float) -> str:
    return f"last moment before the RPO deadline: no later window completes in time ({_needs(need_mbps)})"


def empty(age_s: float) -> str:
    return f"nothing changed since the last snapshot ({age_s / HOUR_S:.1f} h ago): an empty incremental renews the restore point"


def incremental_first(kind: str) -> str:
    return f"incremental first: the {kind} cannot complete before the current restore point's deadline; it follows from the fresh one"


def quiet(p: PredictiveParams, cost_now: float, cost_median: float) -> str:
    return f"quiet now: {cost_now:.3g}/GB <= {p.quiet_ratio:g} x horizon median {cost_median:.3g}/GB"


def flat_price(cost_now: float) -> str:
    return f"flat predicted price over the horizon ({cost_now:.3g}): the latest start that meets the deadline"


def sequence(t: float, path: list[float], cost_plan: float, cost_wait: float, cost_now: float) -> str:
    """The lookahead's cheapest sequence of backups, which begins now."""
    at = ", ".join(f"+{(x - t) / HOUR_S:.1f}" for x in path[:4]) + (" ..." if len(path) > 4 else "")
    return (
        f"cheapest plan starts now: backups at {at} h, plan cost {cost_plan:.3g} (waiting past the horizon "
        f"{cost_wait:.3g}); now {cost_now:.3g}"
    )


def window(cost_now: float, cost_best: float, cost_median: float) -> str:
    return f"cheapest window now: {cost_now:.3g}/GB (best {cost_best:.3g}, median {cost_median:.3g})"


# ----------------------------------------------------------------------------- running jobs


def pause(seen: bool, burst_s: float, up_iops: float, up_mbps: float, rate_imp: float, desc: str) -> str:
    return (
        f"{'observed' if seen else 'predicted'} burst for {burst_s / 60:.0f} min (upper {up_iops:.0f} IOPS / {up_mbps:.0f} MB/s, "
        f"impact-limited rate {rate_imp:.0f} MB/s); slack allows pausing; {desc}"
    )


def resume(target: float, threshold: float, slack_exhausted: bool, desc: str, mild: bool = False) -> str:
    if slack_exhausted:
        return f"RPO slack exhausted: resume through predicted load at {target:.0f} MB/s; {desc}"
    if mild:
        return f"the predicted burst leaves about the rate after it: resume at {mbps(target)} MB/s (p90 impact <= {threshold:g}); {desc}"
    return f"predicted burst over: resume at {mbps(target)} MB/s (p90 impact <= {threshold:g}); {desc}"


def deadline_rate(remaining: float, need: float, rate_imp: float, desc: str) -> str:
    return f"RPO deadline: remaining {remaining / GB:.1f} GB needs {need:.0f} MB/s > impact-limited {rate_imp:.0f} MB/s; {desc}"


def rethrottle(seen: bool, up_iops: float, up_mbps: float, impact: float, target: float, desc: str) -> str:
    load = "observed load above the forecast" if seen else "re-throttle for forecast step: p90"
    return f"{load} {up_iops:.0f} IOPS / {up_mbps:.0f} MB/s, predicted impact {impact:.3f} at {target:.0f} MB/s; {desc}"

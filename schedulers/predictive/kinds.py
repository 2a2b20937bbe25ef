"""What to back up: full, incremental or differential, and how fast changes accumulate.

Incremental by default; differential when the incremental would push the RTO estimate
above `rto_margin` x RTO (or the chain is `max_chain` long); full when the differential
would too, when it would hold `full_diff_frac` of the volume, or every `full_every_h`
hours (a "soft" full: it may start up to `full_early_h` early in a quiet window and
otherwise waits for the cheapest window the RPO deadline allows; one still not taken
`full_late_h` after it was due goes at the rate its deadline needs, so a full too long
for any window at the planned rates is not skipped for ever). RTO estimates add the
run's per-restore-point overhead (`ctx.restore_overhead_s`), as the environment does.

While the fleet is tight (its earliest-deadline-first schedule misses a deadline: RPO
first), a full due only by the calendar is deferred, and one the RTO asks for is split:
a differential first while that keeps the RTO estimate within the RTO itself (an
incremental where that does); a volume with no restore chain still takes a full.

Sizes come from changed-block tracking and grow with the production I/O until the start
by a per-volume fitted law (dirty = kappa x io ** alpha: hot chunks are re-dirtied, so
frequent backups move more bytes in total).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from common.units import HOUR_S, MB
from schedulers.predictive.params import PredictiveParams
from sim.types import BackupKind, DecisionContext

FULL, INCR, DIFF = int(BackupKind.FULL), int(BackupKind.INCREMENTAL), int(BackupKind.DIFFERENTIAL)


class GrowthLaw:
    """Per-volume growth of unique dirty bytes with production I/O since the snapshot:
    dirty = kappa x io ** alpha, a decayed log-log least-squares fit to CBT samples,
    shrunk towards the prior exponent while the samples span little of log io."""

    def __init__(self, n: int, p: PredictiveParams):
        self.p = p
        self.io_since = np.zeros(n)  # production I/Os since the volume's last snapshot (observed)
        self._fit = np.zeros((5, n))  # decayed sums of 1, x, y, xx, xy (x = log io, y = log bytes)
        self.kappa = np.full(n, np.nan)
        self.alpha = np.full(n, p.dirty_exponent)

    def observe(self, iops: np.ndarray, dt: float) -> None:
        self.io_since += iops * dt

    def snapshot(self, v: int) -> None:
        """A backup of `v` started: its snapshot resets changed-block tracking."""
        self.io_since[v] = 0.0

    def refit(self, incr: np.ndarray) -> None:
        """Add the current CBT sizes (bytes since the last backup, all volumes) to the fit."""
        p = self.p
        w = self.io_since
        ok = (w >= 1e3) & (incr >= MB)
        if not ok.any():
            return
        x, y = np.log(w[ok]), np.log(incr[ok])
        f = self._fit[:, ok] * p.growth_memory
        f += np.stack([np.ones_like(x), x, y, x * x, x * y])
        self._fit[:, ok] = f
        n, sx, sy, sxx, sxy = f
        var = n * sxx - sx * sx
        prior = p.dirty_exponent
        alpha = np.where(var > 1e-6 * n * n, (n * sxy - sx * sy) / np.where(var > 0, var, 1.0), prior)
        # shrink towards the prior while the fit has little spread in log io
        conf = np.clip(var / np.maximum(n * n, 1e-12) / 0.5, 0.0, 1.0)
        alpha = np.clip(conf * alpha + (1.0 - conf) * prior, 0.2, 1.0)
        self.alpha[ok] = alpha
        self.kappa[ok] = np.exp((sy - alpha * sx) / n)

    def grown(self, vols: np.ndarray, incr: np.ndarray, io_ahead: np.ndarray) -> np.ndarray:
        """Bytes `vols` (dirty now: `incr`) will have dirtied after `io_ahead` more production I/Os."""
        kappa, alpha = self.law(vols, incr)
        w0 = self.io_since[vols]
        return incr + kappa * ((w0 + np.maximum(io_ahead, 0.0)) ** alpha - w0**alpha)

    def per_period(self, vols: np.ndarray, incr: np.ndarray, io_period: np.ndarray) -> np.ndarray:
        """Bytes `vols` dirty over `io_period` production I/Os from a fresh snapshot."""
        kappa, alpha = self.law(vols, incr)
        return kappa * np.maximum(io_period, 0.0) ** alpha

    def law(self, vols: np.ndarray, incr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(kappa, alpha) of `vols` (current sizes `incr`); not fitted yet: the law through the current size."""
        kappa, alpha = self.kappa[vols], self.alpha[vols]
        if np.isnan(kappa).any():
            w = self.io_since[vols]
            guess = np.where(w > 0, incr / np.maximum(w, 1.0) ** alpha, 0.0)
            kappa = np.where(np.isnan(kappa), guess, kappa)
        return kappa, alpha


@dataclass
class KindChoice:
    """The kind of each planned volume's next backup and the RTO estimates behind it."""

    kind: np.ndarray
    soft_full: np.ndarray  # a full is due by `full_every_h` (taken only in a window it fits)
    rto_after: np.ndarray  # predicted RTO estimate once the backup completes
    after_incr: np.ndarray  # ... were it an incremental
    lim: np.ndarray  # rto_margin x RTO
    deferred: np.ndarray  # a calendar full due, deferred: the fleet is tight
    split: np.ndarray  # an RTO-driven full (or differential) made smaller while the fleet is tight
    overdue: np.ndarray  # a soft full `full_late_h` past due: taken at the rate its deadline needs where one fits


def full_restore_s(used: np.ndarray, restore_mbps: float, overhead_s: float) -> np.ndarray:
    """RTO estimate of a chain holding only a full of `used` bytes."""
    return used / (restore_mbps * MB) + overhead_s


class KindChooser:
    """Chooses kinds; remembers each volume's restore time from a lone full (seen when its chain was 1 long)."""

    def __init__(self, n: int):
        self.full_restore = np.full(n, np.nan)

    def observe(self, ctx: DecisionContext) -> None:
        one = ctx.chain_len == 1
        self.full_restore[one] = ctx.rto_estimate_s[one]

    def choose(
        self,
        p: PredictiveParams,
        ctx: DecisionContext,
        vols: np.ndarray,
        incr: np.ndarray,
        diff: np.ndarray,
        bulk: float,
        tight: bool = False,
    ) -> KindChoice:
        """Kinds for idle volumes `vols` (sizes: `incr` / `diff` bytes), restoring from a tier at `bulk` MB/s;
        `tight`: the fleet has no capacity to spare (RPO first: defer and split fulls)."""
        vt = ctx.volumes
        overhead = ctx.restore_overhead_s
        rto = vt.rto_s[vols]
        used = vt.used_bytes[vols]
        full_rs = self.full_restore[vols]
        full_rs = np.where(np.isnan(full_rs), full_restore_s(used, bulk, overhead), full_rs)
        rto_est = ctx.rto_estimate_s[vols]
        after_incr = rto_est + incr / (bulk * MB) + overhead
        after_diff = full_rs + diff / (bulk * MB) + overhead
        lim = p.rto_margin * rto
        no_chain = ~np.isfinite(rto_est) | ~np.isfinite(ctx.last_full_t[vols])
        chain_long = np.zeros(vols.size, bool) if p.max_chain is None else ctx.chain_len[vols] >= p.max_chain
        need_diff = (after_incr > lim) | chain_long
        need_full = no_chain | (need_diff & ((after_diff > lim) | (diff >= p.full_diff_frac * used)))
        soft_full = np.zeros(vols.size, bool)
        overdue = np.zeros(vols.size, bool)
        if p.full_every_h is not None:
            age = ctx.t - ctx.last_full_t[vols]
            soft_full = ~need_full & (age >= (p.full_every_h - p.full_early_h) * HOUR_S)
            if p.full_late_h is not None and not tight:  # waited its grace for a window (RPO first keeps deferring)
                overdue = soft_full & (age >= (p.full_every_h + p.full_late_h) * HOUR_S)
        deferred = soft_full & tight
        split = np.zeros(vols.size, bool)
        if tight:
            soft_full = np.zeros(vols.size, bool)
            to_diff = need_full & ~no_chain & (after_diff <= rto) & (diff < used)
            to_incr = (to_diff | need_diff) & ~need_full & ~chain_long & (after_incr <= rto)
            to_incr |= to_diff & ~chain_long & (after_incr <= rto)
            split = to_diff | to_incr
            need_full &= ~split
            need_diff = (need_diff | to_diff) & ~to_incr
        kind = np.where(need_full, FULL, np.where(need_diff, DIFF, INCR))
        rto_after = np.where(kind == FULL, full_restore_s(used, bulk, overhead), np.where(kind == DIFF, after_diff, after_incr))
        return KindChoice(kind, soft_full, rto_after, after_incr, lim, deferred, split, overdue)

    @staticmethod
    def full_early(p: PredictiveParams, ctx: DecisionContext, vols: np.ndarray) -> np.ndarray:
        """Which soft fulls of `vols` would start before `full_every_h` is up (early: quiet windows only)."""
        return ctx.t - ctx.last_full_t[vols] < (p.full_every_h or 0.0) * HOUR_S

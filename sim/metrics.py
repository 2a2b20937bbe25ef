"""Run metrics (DESIGN.md "Metrics every run reports"), accumulated block by block.

Per-tick arrays of a block are folded in vectorised, so memory does not grow with run
length. Impact quantiles come from a log-spaced histogram (50 bins per decade from
1e-4 to 1e3, plus an exact-zero bin): quantiles are reported as the upper edge of their
bin, at most 5% above the true value.
"""

from __future__ import annotations

import numpy as np

from common.units import HOUR_S
from sim.devices import impact_of_utilisation, latency_of_utilisation

_EDGES = np.logspace(-4, 3, 7 * 50 + 1)
N_BINS = _EDGES.size + 1  # bin 0: impact < 1e-4 (incl. 0); last: >= 1e3


def _quantile(counts: np.ndarray, q: float) -> float:
    total = counts.sum()
    if total == 0:
        return 0.0
    i = int(np.searchsorted(np.cumsum(counts), q * total))
    if i == 0:
        return 0.0
    return float(_EDGES[min(i, _EDGES.size - 1)])


class MetricsAccumulator:
    def __init__(self, n_volumes: int, threshold: float):
        v = n_volumes
        self.n = v
        self.threshold = threshold
        self.time_s = np.zeros(v)
        self.rpo_ok_s = np.zeros(v)
        self.rto_ok_s = np.zeros(v)
        self.violations = np.zeros(v, np.int64)
        self.violation_s = np.zeros(v)
        self.worst_age_s = np.zeros(v)
        self.io = np.zeros(v)
        self.io_impact = np.zeros(v)
        self.io_over = np.zeros(v)
        self.added_io_ms = np.zeros(v)
        self.backup_ticks = np.zeros(v, np.int64)
        self.hist = np.zeros((v, N_BINS), np.int64)
        self._prev_viol = np.zeros(v, bool)

    def add_block(self, dt: float, io, u_p, u_pb, base_latency_ms, age_end, rpo_s, rto_est, rto_s) -> np.ndarray:
        """Fold one block of `[n_ticks, n_volumes]` arrays in; returns the block's impact."""
        impact = impact_of_utilisation(u_p, u_pb)
        added_ms = latency_of_utilisation(u_pb, base_latency_ms) - latency_of_utilisation(u_p, base_latency_ms)
        n = impact.shape[0]
        self.time_s += n * dt
        ok = age_end <= rpo_s
        self.rpo_ok_s += ok.sum(axis=0) * dt
        viol = ~ok
        starts = viol & ~np.vstack([self._prev_viol[None, :], viol[:-1]])
        self.violations += starts.sum(axis=0)
        self.violation_s += viol.sum(axis=0) * dt
        self._prev_viol = viol[-1].copy()
        self.worst_age_s = np.maximum(self.worst_age_s, age_end.max(axis=0))
        self.rto_ok_s += (rto_est <= rto_s).sum(axis=0) * dt
        self.io += io.sum(axis=0)
        self.io_impact += (io * impact).sum(axis=0)
        self.io_over += (io * (impact > self.threshold)).sum(axis=0)
        self.added_io_ms += (io * added_ms).sum(axis=0)
        nz = impact >= _EDGES[0]
        self.backup_ticks += (impact > 0).sum(axis=0)
        self.hist[:, 0] += n - nz.sum(axis=0)
        if nz.any():
            rows, cols = np.nonzero(nz)
            bins = np.searchsorted(_EDGES, impact[rows, cols], side="right")
            self.hist += np.bincount(cols * N_BINS + bins, minlength=self.n * N_BINS).reshape(self.n, N_BINS)
        return impact

    def per_volume(self) -> dict[str, np.ndarray]:
        t = np.maximum(self.time_s, 1e-9)
        io = np.maximum(self.io, 1e-9)
        return {
            "rpo_compliance_pct": 100.0 * self.rpo_ok_s / t,
            "rpo_violations": self.violations,
            "rpo_violation_s": self.violation_s,
            "worst_rp_age_s": self.worst_age_s,
            "rto_compliance_pct": 100.0 * self.rto_ok_s / t,
            "impact_io_mean": self.io_impact / io,
            "impact_p95": np.array([_quantile(h, 0.95) for h in self.hist]),
            "impact_p99": np.array([_quantile(h, 0.99) for h in self.hist]),
            "io_over_threshold_pct": 100.0 * self.io_over / io,
            "added_latency_io_ms": self.added_io_ms,
            "prod_io": self.io,
        }

    def fleet(self) -> dict[str, float]:
        t = max(self.time_s.sum(), 1e-9)
        io = max(self.io.sum(), 1e-9)
        hist = self.hist.sum(axis=0)
        return {
            "rpo_compliance_pct": 100.0 * self.rpo_ok_s.sum() / t,
            "rpo_violations": int(self.violations.sum()),
            "rpo_violation_h": float(self.violation_s.sum() / HOUR_S),
            "worst_rp_age_h": float(self.worst_age_s.max() / HOUR_S) if self.n else 0.0,
            "rto_compliance_pct": 100.0 * self.rto_ok_s.sum() / t,
            "impact_io_mean": float(self.io_impact.sum() / io),
            "impact_p95": _quantile(hist, 0.95),
            "impact_p99": _quantile(hist, 0.99),
            "io_over_threshold_pct": 100.0 * float(self.io_over.sum() / io),
            "added_latency_io_ms": float(self.added_io_ms.sum()),
        }

"""Host CPU, memory and network utilisation from psutil, as rates between snapshots.

CPU % is busy time (all but idle and iowait) over total time across all cores since the
previous snapshot; memory % is psutil's `virtual_memory().percent` (used by programs,
not cache); network MB/s is bytes sent + received on every interface but loopback.
The cumulative counters of a snapshot are kept in the store with the disk counters, so a
restarted recorder's first interval is measured from the last recorded one; counters
that went down (reboot, interface gone) give no rate for that interval.
"""

from __future__ import annotations

from dataclasses import dataclass

import psutil

from common.units import MB


@dataclass(frozen=True)
class HostSnapshot:
    busy_s: float
    total_s: float
    mem_pct: float
    net_bytes: int


@dataclass(frozen=True)
class HostRates:
    cpu_pct: float | None
    mem_pct: float
    net_mbps: float | None


def snapshot() -> HostSnapshot:
    cpu = psutil.cpu_times()
    total = float(sum(cpu))
    idle = float(cpu.idle) + float(getattr(cpu, "iowait", 0.0))
    nics = psutil.net_io_counters(pernic=True, nowrap=True)
    net = sum(int(c.bytes_sent) + int(c.bytes_recv) for n, c in nics.items() if n != "lo")
    return HostSnapshot(total - idle, total, float(psutil.virtual_memory().percent), net)


def rates(prev: HostSnapshot | None, cur: HostSnapshot, dt: float) -> HostRates:
    """Utilisation over the interval; None where the counters went down or there is no previous snapshot."""
    if prev is None or dt <= 0:
        return HostRates(None, cur.mem_pct, None)
    d_total = cur.total_s - prev.total_s
    d_busy = cur.busy_s - prev.busy_s
    cpu = None
    if d_total > 0 and d_busy >= 0:
        cpu = min(100.0, max(0.0, 100.0 * d_busy / d_total))
    d_net = cur.net_bytes - prev.net_bytes
    net = d_net / MB / dt if d_net >= 0 else None
    return HostRates(cpu, cur.mem_pct, net)


def to_state(s: HostSnapshot | None) -> list | None:
    return None if s is None else [s.busy_s, s.total_s, s.mem_pct, s.net_bytes]


def from_state(v) -> HostSnapshot | None:
    if not v:
        return None
    return HostSnapshot(float(v[0]), float(v[1]), float(v[2]), int(v[3]))

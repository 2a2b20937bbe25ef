"""Source-volume device classes and the latency / impact model (DESIGN.md).

Utilisation `u = max(iops / max_iops, mbps / max_mbps)`, clipped below 1, and an
M/M/1-like latency `lat = base * (1 + u / (1 - u)) = base / (1 - u)`. A backup reading
at `r` MB/s adds `r` MB/s and `r / io_mb` IOPS (large sequential reads). Impact is
`lat(prod + backup) / lat(prod) - 1`. Functions work on scalars or NumPy arrays, so
schedulers can predict impact from forecasts with the same code the simulator scores.
The simulator, its metrics and the one-process-per-volume baseline all compute
utilisation, latency and impact here, and nowhere else. Plain Python floats take a
builtin path through the same arithmetic (NumPy costs some 20x more per scalar call,
which would distort the per-volume baseline's benchmark figures).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: utilisation is clipped here: latency tops out at 100 x base
U_MAX = 0.99


@dataclass(frozen=True)
class DeviceClass:
    name: str
    max_iops: float
    max_mbps: float
    base_latency_ms: float


DEVICE_CLASSES: dict[str, DeviceClass] = {
    "nvme": DeviceClass("nvme", 400_000.0, 3_000.0, 0.08),
    "ssd": DeviceClass("ssd", 80_000.0, 500.0, 0.2),
    "san": DeviceClass("san", 20_000.0, 800.0, 1.0),
    "hdd": DeviceClass("hdd", 250.0, 180.0, 6.0),
    # a VM's virtual disk on shared SAN storage, under a per-VM QoS cap
    "vdisk": DeviceClass("vdisk", 1500.0, 60.0, 1.0),
}

#: size of one backup read I/O (large sequential reads)
BACKUP_IO_MB = 1.0


def _floats(a, b, c, d=0.0) -> bool:
    return type(a) is float and type(b) is float and type(c) is float and type(d) is float


def utilisation(iops, mbps, max_iops, max_mbps):
    """Device utilisation in [0, U_MAX]."""
    if _floats(iops, mbps, max_iops, max_mbps):
        return min(max(iops / max_iops, mbps / max_mbps, 0.0), U_MAX)
    u = np.maximum(np.asarray(iops) / max_iops, np.asarray(mbps) / max_mbps)
    return u.clip(0.0, U_MAX)  # (what `np.clip` calls, without its dispatch: this runs some 40,000 times a simulated day)


def latency_of_utilisation(u, base_latency_ms):
    """Latency at utilisation `u`: the M/M/1-like curve."""
    return base_latency_ms / (1.0 - u)


def latency_ms(iops, mbps, max_iops, max_mbps, base_latency_ms):
    return latency_of_utilisation(utilisation(iops, mbps, max_iops, max_mbps), base_latency_ms)


def utilisation_with_backup(prod_iops, prod_mbps, backup_mbps, max_iops, max_mbps, io_mb: float = BACKUP_IO_MB):
    """(utilisation of production alone, with a backup reading at `backup_mbps` added)."""
    u_p = utilisation(prod_iops, prod_mbps, max_iops, max_mbps)
    if not _floats(prod_iops, prod_mbps, backup_mbps):
        prod_iops, prod_mbps, backup_mbps = np.asarray(prod_iops), np.asarray(prod_mbps), np.asarray(backup_mbps)
    u_b = utilisation(prod_iops + backup_mbps / io_mb, prod_mbps + backup_mbps, max_iops, max_mbps)
    return u_p, u_b


def impact_of_utilisation(u_p, u_b):
    """Impact from the two utilisations: `lat(u_b) / lat(u_p) - 1`, base latency cancelled."""
    return (1.0 - u_p) / (1.0 - u_b) - 1.0


def impact(prod_iops, prod_mbps, backup_mbps, max_iops, max_mbps, io_mb: float = BACKUP_IO_MB):
    """Relative latency increase caused by a backup reading at `backup_mbps`."""
    return impact_of_utilisation(*utilisation_with_backup(prod_iops, prod_mbps, backup_mbps, max_iops, max_mbps, io_mb))


def rate_for_utilisation(prod_iops, prod_mbps, max_iops, max_mbps, u_target, io_mb: float = BACKUP_IO_MB):
    """Largest backup rate (MB/s, >= 0) keeping utilisation at or below `u_target`."""
    if _floats(prod_iops, prod_mbps, max_iops, max_mbps) and type(u_target) is float:
        return max(0.0, min((u_target * max_iops - prod_iops) * io_mb, u_target * max_mbps - prod_mbps))
    by_iops = (u_target * max_iops - np.asarray(prod_iops)) * io_mb
    by_mbps = u_target * max_mbps - np.asarray(prod_mbps)
    return np.maximum(0.0, np.minimum(by_iops, by_mbps))


def rate_for_impact(prod_iops, prod_mbps, max_iops, max_mbps, max_impact, io_mb: float = BACKUP_IO_MB):
    """Largest backup rate (MB/s, >= 0) whose impact stays at or below `max_impact`.

    Inverts the model: impact <= m  <=>  1 - u_b >= (1 - u_p) / (1 + m).
    """
    u_p = utilisation(prod_iops, prod_mbps, max_iops, max_mbps)
    u_target = np.minimum(U_MAX, 1.0 - (1.0 - u_p) / (1.0 + np.asarray(max_impact)))
    return rate_for_utilisation(prod_iops, prod_mbps, max_iops, max_mbps, u_target, io_mb)

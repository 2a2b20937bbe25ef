"""The data of a bound: per volume, its tick costs, writes, RPO and byte releases.

`from_config` builds the fleet and its load exactly as a run does (the runner's
`build_fleet`, `split_history`, `sim_spec`), reads the simulated span's production load
and writes block by block, and the change-tracking model from `sim.cbt.FleetTracker`.
`volume_input` builds one volume from arrays, for small hand-made instances.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from common.errors import UserError
from common.units import MB
from experiments.bound.costs import TickCosts
from experiments.bound.demand import MeanChangedBytes, extent_chunks, releases, releases_from_chunks
from experiments.config import ExperimentConfig
from experiments.runner import build_fleet, sim_spec, split_history
from sim.cbt import FleetTracker
from sim.devices import DeviceClass


@dataclass
class VolumeInput:
    volume_id: str
    costs: TickCosts
    writes: np.ndarray  # write I/Os per tick
    rpo_ticks: int  # RPO in whole ticks (rounded down)
    used_mb: float
    release_mb: np.ndarray  # per-tick releases (demand.releases)
    changed: MeanChangedBytes | None  # the working-set curve; None where exact extents give the bytes

    @property
    def window(self) -> int:
        """Most write ticks one job can cover: its snapshot precedes its completion tick."""
        return max(1, self.rpo_ticks - 1)

    @property
    def prod_io(self) -> float:
        return float(self.costs.io.sum())


@dataclass
class Instance:
    dt: float
    volumes: list[VolumeInput]
    ingest_mbps: float  # all tiers together (the coupled version's limit per tick)
    name: str = "instance"
    seed: int = 0

    @property
    def total_io(self) -> float:
        """Denominator of the IO-weighted mean impact (every volume, every tick)."""
        return float(sum(v.prod_io for v in self.volumes))


def rpo_ticks(rpo_s: float, dt: float) -> int:
    return int(math.floor(rpo_s / dt + 1e-9))


def volume_input(
    volume_id: str,
    dt: float,
    iops,
    mbps,
    writes,
    device: DeviceClass,
    rpo_s: float,
    used_bytes: float,
    changed: MeanChangedBytes,
    backup_max_util: float = 0.95,
    rate_cap: float = np.inf,
) -> VolumeInput:
    """One working-set volume from per-tick arrays (production IOPS, MB/s, write I/Os)."""
    costs = TickCosts.from_load(dt, iops, mbps, device.max_iops, device.max_mbps, backup_max_util, rate_cap)
    rho = rpo_ticks(rpo_s, dt)
    w = np.asarray(writes, np.float64)
    return VolumeInput(volume_id, costs, w, rho, used_bytes / MB, releases(w, max(1, rho - 1), changed), changed)


def exact_volume_input(
    volume_id: str,
    dt: float,
    iops,
    mbps,
    ticks: np.ndarray,
    chunks: np.ndarray,
    device: DeviceClass,
    rpo_s: float,
    used_bytes: float,
    chunk_bytes: int,
    backup_max_util: float = 0.95,
    rate_cap: float = np.inf,
) -> VolumeInput:
    """One volume whose written chunks are known (request-level traces): `ticks[i]` wrote chunk `chunks[i]`."""
    costs = TickCosts.from_load(dt, iops, mbps, device.max_iops, device.max_mbps, backup_max_util, rate_cap)
    rho = rpo_ticks(rpo_s, dt)
    rel = releases_from_chunks(ticks, chunks, costs.n, max(1, rho - 1), chunk_bytes, used_bytes)
    return VolumeInput(volume_id, costs, np.zeros(costs.n), rho, used_bytes / MB, rel, None)


def changed_curves(tracker: FleetTracker, used_bytes: np.ndarray) -> list[MeanChangedBytes]:
    return [
        MeanChangedBytes(
            tracker.zone_n[v], tracker.zone_w[v], float(tracker.chunks_per_write[v]), float(tracker.chunk_bytes), float(used_bytes[v])
        )
        for v in range(used_bytes.size)
    ]


def load_arrays(load, n_ticks: int, n_vol: int, dt: float, chunk_bytes: int, block: int = 360):
    """Production IOPS, MB/s, write I/Os per tick `[n, V]` (float64, as the simulator casts them) and exact chunks."""
    iops = np.empty((n_ticks, n_vol))
    mbps = np.empty((n_ticks, n_vol))
    writes = np.empty((n_ticks, n_vol))
    exact: dict[int, list[tuple[np.ndarray, np.ndarray]]] = {}
    for b0 in range(0, n_ticks, block):
        nb = min(block, n_ticks - b0)
        blk = load.block(b0, nb)
        iops[b0 : b0 + nb] = blk.iops.astype(np.float64)
        mbps[b0 : b0 + nb] = blk.mbps.astype(np.float64)
        writes[b0 : b0 + nb] = blk.write_iops.astype(np.float64) * dt
        for col, ext in blk.extents.items():
            t, c = extent_chunks(ext.tick.astype(np.int64) + b0, ext.offset, ext.length, chunk_bytes)
            exact.setdefault(col, []).append((t, c))
    return iops, mbps, writes, exact


def from_config(cfg: ExperimentConfig, seed: int) -> Instance:
    """The instance of one (config, seed): the same fleet, load and devices as its runs."""
    if not cfg.initial_full:
        raise UserError("initial_full: the bound assumes every volume starts with a restore point at t=0 (set initial_full: true)")
    fleet, volumes, fleet_start = build_fleet(cfg, seed)
    load, start, _ = split_history(cfg, fleet, fleet_start)
    spec = sim_spec(cfg, volumes, start, seed, record_series=False)
    dt, n = spec.tick_s, spec.n_ticks
    used = np.array([v.used_bytes for v in spec.volumes])
    tracker = FleetTracker(
        used, [m.working_set for m in load.volumes], np.array([m.write_io_bytes for m in load.volumes], float), spec.chunk_bytes, spec.seed
    )
    curves = changed_curves(tracker, used)
    iops, mbps, writes, exact = load_arrays(load, n, len(spec.volumes), dt, spec.chunk_bytes)
    rate_cap = max(t.ingest_mbps for t in spec.tiers)
    out = []
    for i, vs in enumerate(spec.volumes):
        if i in exact:
            t = np.concatenate([e[0] for e in exact[i]])
            c = np.concatenate([e[1] for e in exact[i]])
            out.append(
                exact_volume_input(
                    vs.volume_id,
                    dt,
                    iops[:, i],
                    mbps[:, i],
                    t,
                    c,
                    vs.device,
                    vs.rpo_s,
                    vs.used_bytes,
                    spec.chunk_bytes,
                    spec.backup_max_util,
                    rate_cap,
                )
            )
        else:
            out.append(
                volume_input(
                    vs.volume_id,
                    dt,
                    iops[:, i],
                    mbps[:, i],
                    writes[:, i],
                    vs.device,
                    vs.rpo_s,
                    vs.used_bytes,
                    curves[i],
                    spec.backup_max_util,
                    rate_cap,
                )
            )
    return Instance(dt, out, float(sum(t.ingest_mbps for t in spec.tiers)), cfg.name, seed)

"""The slow baseline for the benchmark: one SimPy process per volume.

Each volume's process does the same per-tick work as the vectorised fleet tick
(production load, writes into changed-block tracking, device utilisation and impact,
cron-like incremental start sized by the same tracker, job progress bounded by device
headroom and an equal tier share, restore points and RTO estimate at completion, RPO
age accounting), in scalar form, with one SimPy timeout per volume per tick. Events per
tick grow with the number of volumes: that is what the vectorised model avoids. Device
figures come from `sim.devices`, as in the fleet model.
"""

from __future__ import annotations

import numpy as np

from common.units import MB
from sim.cbt import FleetTracker
from sim.chains import RestorePoint, VolumeChain
from sim.clock import CountingEnvironment
from sim.devices import impact, rate_for_utilisation
from sim.spec import SimSpec
from sim.types import BackupKind
from workloads.base import LoadSource


class NaiveFleet:
    def __init__(self, spec: SimSpec, load: LoadSource, incremental_every_s: float):
        self.spec = spec
        self.load = load
        self.every = incremental_every_s
        self.env = CountingEnvironment()
        self.block = None
        self.block_start = -1
        self.rpo_ok_s = 0.0
        self.impact_io = 0.0
        self.jobs_done = 0
        self.tracker = FleetTracker(
            np.array([v.used_bytes for v in spec.volumes]),
            [m.working_set for m in load.volumes],
            np.array([m.write_io_bytes for m in load.volumes], float),
            spec.chunk_bytes,
            spec.seed,
        )
        self.chains = [VolumeChain() for _ in spec.volumes]
        self.rto_est = [0.0] * len(spec.volumes)

    def _row(self, tick: int, v: int) -> tuple[float, float, float]:
        start = tick - tick % 360
        if start != self.block_start:
            self.block = self.load.block(start, 360)
            self.block_start = start
        i = tick - start
        b = self.block
        return float(b.read_iops[i, v] + b.write_iops[i, v]), float(b.read_mbps[i, v] + b.write_mbps[i, v]), float(b.write_iops[i, v])

    def _volume(self, v: int):
        spec = self.spec
        vs = spec.volumes[v]
        dev = vs.device
        tier = spec.tiers[0]
        share = tier.ingest_mbps / tier.slots
        dt = spec.tick_s
        last_snap, next_due, remaining, snap_t, running = 0.0, 0.0, 0.0, 0.0, False
        for k in range(spec.n_ticks):
            t = k * dt
            iops, mbps, writes = self._row(k, v)
            if not running and t >= next_due:
                running, snap_t = True, t
                size = remaining = self.tracker.start_backup(v, BackupKind.INCREMENTAL)
                next_due += self.every
            rate = 0.0
            if running:
                head = rate_for_utilisation(iops, mbps, dev.max_iops, dev.max_mbps, spec.backup_max_util)
                rate = min(share, head)
                remaining -= rate * dt * MB
                if remaining <= 0:
                    running, last_snap = False, snap_t
                    self.chains[v].add(RestorePoint(BackupKind.INCREMENTAL, snap_t, t + dt, size, 0))
                    self.rto_est[v] = self.chains[v].restore_seconds([tier.restore_mbps], spec.restore_overhead_s)
                    self.jobs_done += 1
            self.impact_io += iops * dt * impact(iops, mbps, rate, dev.max_iops, dev.max_mbps)
            if t + dt - last_snap <= vs.rpo_s:
                self.rpo_ok_s += dt
            self.tracker.pending[v] += writes * dt
            yield self.env.timeout(dt)

    def run(self) -> int:
        """Run; returns the number of SimPy events processed."""
        for v, vs in enumerate(self.spec.volumes):  # the same initial full as the fleet model
            self.chains[v].add(RestorePoint(BackupKind.FULL, 0.0, 0.0, vs.used_bytes, 0))
        for v in range(len(self.spec.volumes)):
            self.env.process(self._volume(v))
        self.env.run()
        return self.env.processed

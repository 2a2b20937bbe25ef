"""`fileserver`: SMB/NFS file-server volumes, office hours and large file copies."""

from __future__ import annotations

import dataclasses

import numpy as np

from workloads.synthetic.keyed import u01, uniform
from workloads.synthetic.params import CommonParams, check
from workloads.synthetic.shapes import add_events, business_curve
from workloads.synthetic.source import Page, SyntheticSource


@dataclasses.dataclass(frozen=True)
class FileserverParams(CommonParams):
    """Parameters of the `fileserver` workload (plus those of `CommonParams`).

    Load model per volume: activity `a(t)` = strong office-hours weekly profile (quiet
    nights and weekends) x slow wander; IOPS = peak x a x volume scale, plus sparse
    large-file copies (short high-MB/s bursts, more likely when users are active).

    Attributes:
        peak_read_iops, peak_write_iops: IOPS at the weekday office-hours peak. Default 600, 250.
        read_io_kb, write_io_kb: I/O sizes, KiB. Default 128 and 64.
        night_floor: activity at night relative to the peak. Default 0.04.
        weekend_factor: weekend activity relative to weekdays. Default 0.12.
        business_start_h, business_end_h: local office hours. Default 8 and 18.
        lunch_dip: relative dip of activity around 12:30. Default 0.2.
        copies_per_hour: expected large-file copies per volume per hour at peak activity
            (5% of it at idle; at most one per hour). Default 0.5.
        copy_min_min, copy_max_min: copy length range, minutes. Default 1 and 10.
        copy_mbps: mean MB/s of a copy (each draws 0.5-1.5x). Default 90.
        copy_io_kb: copy I/O size, KiB. Default 256.
        copy_write_fraction: share of copies that write (uploads) rather than read. Default 0.4.
        cpu_idle_pct, cpu_peak_pct: CPU % idle and at peak activity (x scale). Default 3, 25.
        mem_min_pct, mem_max_pct: range of a volume's base memory % (page cache). Default 30, 60.
        nfs_fraction: share of volumes exported over NFS rather than SMB. Default 0.3.
        users: typical number of users per volume (metadata, x volume scale). Default 150.
    """

    peak_read_iops: float = 600.0
    peak_write_iops: float = 250.0
    read_io_kb: float = 128.0
    write_io_kb: float = 64.0
    night_floor: float = 0.04
    weekend_factor: float = 0.12
    business_start_h: float = 8.0
    business_end_h: float = 18.0
    lunch_dip: float = 0.2
    copies_per_hour: float = 0.5
    copy_min_min: float = 1.0
    copy_max_min: float = 10.0
    copy_mbps: float = 90.0
    copy_io_kb: float = 256.0
    copy_write_fraction: float = 0.4
    cpu_idle_pct: float = 3.0
    cpu_peak_pct: float = 25.0
    mem_min_pct: float = 30.0
    mem_max_pct: float = 60.0
    nfs_fraction: float = 0.3
    users: float = 150.0
    zipf_s: float = 1.5

    def validate(self, kind: str) -> None:
        super().validate(kind)
        for lo, hi in [("copy_min_min", "copy_max_min"), ("mem_min_pct", "mem_max_pct"), ("business_start_h", "business_end_h")]:
            self.check_range(kind, lo, hi)
        self.check_each(kind, ("lunch_dip", "copy_write_fraction", "nfs_fraction"), lambda v: not v > 1, "must be <= 1")
        self.check_each(kind, ("read_io_kb", "write_io_kb", "copy_io_kb"), lambda v: not v <= 0, "must be > 0")
        check(kind, not self.copy_max_min > 24 * 60, "copy_max_min", "must be <= 1440", self.copy_max_min)


_COPY_SLOT_S = 3600.0


class FileserverWorkload(SyntheticSource):
    """Synthetic file-server volumes: `factory(*, count, tick_s, seed, id_prefix,
    start_epoch=1704067200.0, **FileserverParams)`."""

    kind = "fileserver"
    Params = FileserverParams
    params: FileserverParams

    def _week_profile(self, hours, dow):
        p = self.params
        day = business_curve(hours, p.business_start_h, p.business_end_h, 0.6)
        day = day * (1.0 - p.lunch_dip * np.exp(-0.5 * ((hours - 12.5) / 0.6) ** 2))
        prof = p.night_floor + (1.0 - p.night_floor) * day
        return prof * np.where(dow >= 5, p.weekend_factor, 1.0)

    def _setup(self) -> None:
        p = self.params
        v = self._vidx
        self.nfs = u01(self.key("proto"), v) < p.nfs_fraction
        self.mem_base = uniform(self.key("mem"), p.mem_min_pct, p.mem_max_pct, v).astype(np.float32)

    def _app_meta(self, i):
        p = self.params
        return {
            "protocol": "nfs" if self.nfs[i] else "smb",
            "users": float(max(1, round(p.users * self.vol_scale[i] / max(p.scale, 1e-9)))),
            "phase_s": float(self.vol_phase_s[i]),
            "load_scale": float(self.vol_scale[i]),
        }

    def _write_io_bytes(self) -> int:
        return int(self.params.write_io_kb * 1024)

    # --- rendering ------------------------------------------------------------------

    def _copies(self, pg: Page) -> tuple[np.ndarray, np.ndarray]:
        """Extra MB/s of large-file copies (reads, writes), [ticks, volumes] each."""
        p = self.params
        v = self._vidx
        reads = np.zeros((pg.n, self.count), np.float32)
        writes = np.zeros((pg.n, self.count), np.float32)
        if p.copies_per_hour <= 0 or p.copy_mbps <= 0:
            return reads, writes
        lo, hi = pg.t0[0], pg.t0[-1] + pg.dt
        S = _COPY_SLOT_S
        for k in range(int(np.floor((lo - 60.0 * p.copy_max_min) / S)) - 1, int(np.floor(hi / S)) + 1):
            slot_mid = np.full(self.count, (k + 0.5) * S)
            prob = np.minimum(0.95, p.copies_per_hour * (0.05 + 0.95 * self.profile_at(slot_mid)))
            start = k * S + S * u01(self.key("cp_t"), k, v)
            start = np.where(u01(self.key("cp_on"), k, v) < prob, start, np.inf)
            end = start + 60.0 * uniform(self.key("cp_len"), p.copy_min_min, p.copy_max_min, k, v)
            amp = p.copy_mbps * uniform(self.key("cp_amp"), 0.5, 1.5, k, v) * self.vol_scale
            is_write = u01(self.key("cp_dir"), k, v) < p.copy_write_fraction
            add_events(reads, pg.t0, pg.dt, np.where(is_write, np.inf, start), end, amp)
            add_events(writes, pg.t0, pg.dt, np.where(is_write, start, np.inf), end, amp)
        return reads, writes

    def _render(self, pg: Page) -> dict[str, np.ndarray]:
        p = self.params
        f32 = np.float32
        act = self.profile(pg) * self.wander(pg)
        load = act * self.vol_scale[None, :]
        e_r, e_w, e_c = pg.white(3, p.noise)
        base_r = load * f32(p.peak_read_iops) * (1 + e_r)
        base_w = load * f32(p.peak_write_iops) * (1 + e_w)
        cp_r, cp_w = self._copies(pg)
        kb = 1.0 / 1024.0
        read_mbps = base_r * f32(p.read_io_kb * kb) + cp_r
        write_mbps = base_w * f32(p.write_io_kb * kb) + cp_w
        per_io = f32(1024.0 / p.copy_io_kb)
        copying = cp_r + cp_w
        cpu = f32(p.cpu_idle_pct) + f32(p.cpu_peak_pct - p.cpu_idle_pct) * act * f32(p.scale) * (1 + e_c) + f32(0.05) * copying
        mem = self.mem_base[None, :] + f32(15.0) * act + f32(0.05) * copying + e_c
        net = f32(1.02) * (read_mbps + write_mbps) + f32(0.2)  # file data crosses the network
        return {
            "read_iops": base_r + cp_r * per_io,
            "write_iops": base_w + cp_w * per_io,
            "read_mbps": read_mbps,
            "write_mbps": write_mbps,
            "cpu_pct": np.clip(cpu, 0.0, 100.0),
            "mem_pct": np.clip(mem, 0.0, 100.0),
            "net_mbps": net,
        }

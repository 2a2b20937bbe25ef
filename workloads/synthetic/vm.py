"""`vm`: virtual-machine volumes with mixed I/O, patch/boot storms and noisy neighbours."""

from __future__ import annotations

import dataclasses

import numpy as np

from common.units import DAY_S
from workloads.synthetic.keyed import u01, uniform
from workloads.synthetic.params import CommonParams, check
from workloads.synthetic.shapes import add_events, business_curve
from workloads.synthetic.source import Page, SyntheticSource


@dataclasses.dataclass(frozen=True)
class VmParams(CommonParams):
    """Parameters of the `vm` workload (plus those of `CommonParams`).

    Load model per volume: activity `a(t)` = moderate weekly profile x slow wander x
    (1 + noisy-neighbour boost); mixed read/write IOPS = peak x a x volume scale, plus
    storms (weekly patch window, random group-wide boot storms) of heavy mixed I/O.

    Attributes:
        peak_read_iops, peak_write_iops: IOPS at the weekday daytime peak. Default 1300, 900.
        read_io_kb, write_io_kb: I/O sizes, KiB. Default 32 and 32.
        night_floor: activity at night relative to the peak. Default 0.4.
        weekend_factor: weekend activity relative to weekdays. Default 0.75.
        business_start_h, business_end_h: local hours of the daytime plateau. Default 7, 20.
        patch_dow: weekday of the patch window, 0 = Monday. Default 1 (Tuesday).
        patch_start_h: local hour the patch window opens. Default 22.
        patch_window_h: volumes start patching at a uniform time within this many hours
            (redrawn weekly). Default 4.
        patch_prob: chance a volume is patched in a given week. Default 0.9.
        boot_storms_per_week: expected group-wide boot storms per week, at random times.
            Default 1.
        boot_storm_join: share of volumes taking part in a boot storm. Default 0.6.
        boot_storm_spread_min: a volume joins a storm within this many minutes. Default 15.
        storm_min_min, storm_max_min: length of a volume's storm (patch or boot), minutes.
            Default 10 and 40.
        storm_read_iops, storm_write_iops: extra IOPS during a storm (x0.7-1.3 per
            storm). Default 2500 and 1500.
        storm_io_kb: storm I/O size, KiB. Default 32.
        storm_cpu_pct: extra CPU % during a storm. Default 40.
        neighbour_per_day: expected noisy-neighbour episodes per volume per day. Default 1.
        neighbour_min_h, neighbour_max_h: episode length range, hours. Default 0.5 and 3.
        neighbour_boost: largest extra relative load of an episode (each draws 30-100%
            of it). Default 0.8.
        cpu_idle_pct, cpu_peak_pct: CPU % idle and at peak activity (x scale). Default 8, 45.
        mem_min_pct, mem_max_pct: range of a volume's base memory %. Default 35 and 75.
        windows_fraction: share of Windows guests (metadata). Default 0.5.
        tenants: number of tenants volumes are spread over (metadata). Default 8.
    """

    peak_read_iops: float = 1300.0
    peak_write_iops: float = 900.0
    read_io_kb: float = 32.0
    write_io_kb: float = 32.0
    night_floor: float = 0.4
    weekend_factor: float = 0.75
    business_start_h: float = 7.0
    business_end_h: float = 20.0
    patch_dow: int = 1
    patch_start_h: float = 22.0
    patch_window_h: float = 4.0
    patch_prob: float = 0.9
    boot_storms_per_week: float = 1.0
    boot_storm_join: float = 0.6
    boot_storm_spread_min: float = 15.0
    storm_min_min: float = 10.0
    storm_max_min: float = 40.0
    storm_read_iops: float = 2500.0
    storm_write_iops: float = 1500.0
    storm_io_kb: float = 32.0
    storm_cpu_pct: float = 40.0
    neighbour_per_day: float = 1.0
    neighbour_min_h: float = 0.5
    neighbour_max_h: float = 3.0
    neighbour_boost: float = 0.8
    cpu_idle_pct: float = 8.0
    cpu_peak_pct: float = 45.0
    mem_min_pct: float = 35.0
    mem_max_pct: float = 75.0
    windows_fraction: float = 0.5
    tenants: int = 8
    zipf_s: float = 1.85

    def validate(self, kind: str) -> None:
        super().validate(kind)
        for lo, hi in [
            ("storm_min_min", "storm_max_min"),
            ("neighbour_min_h", "neighbour_max_h"),
            ("mem_min_pct", "mem_max_pct"),
            ("business_start_h", "business_end_h"),
        ]:
            self.check_range(kind, lo, hi)
        check(kind, 0 <= self.patch_dow <= 6, "patch_dow", "must be 0..6 (0 = Monday)", self.patch_dow)
        self.check_each(kind, ("patch_prob", "boot_storm_join", "windows_fraction"), lambda v: not v > 1, "must be <= 1")
        self.check_each(kind, ("read_io_kb", "write_io_kb", "storm_io_kb"), lambda v: not v <= 0, "must be > 0")
        check(kind, not self.tenants < 1, "tenants", "must be >= 1", self.tenants)
        longest_h = max(self.neighbour_max_h, self.patch_window_h, self.storm_max_min / 60)
        check(
            kind,
            not longest_h > 24,
            "neighbour_max_h / patch_window_h / storm_max_min",
            "the longest episode, storm or patch window must be <= 24 h",
            longest_h,
        )


#: noisy-neighbour episodes are drawn per slot of this length (at most one per slot)
_NEIGHBOUR_SLOT_S = 6 * 3600.0


class VmWorkload(SyntheticSource):
    """Synthetic VM volumes: `factory(*, count, tick_s, seed, id_prefix,
    start_epoch=1704067200.0, **VmParams)`."""

    kind = "vm"
    Params = VmParams
    params: VmParams

    def _week_profile(self, hours, dow):
        p = self.params
        day = business_curve(hours, p.business_start_h, p.business_end_h, 1.5)
        prof = p.night_floor + (1.0 - p.night_floor) * day
        return prof * np.where(dow >= 5, p.weekend_factor, 1.0)

    def _setup(self) -> None:
        p = self.params
        v = self._vidx
        self.windows = u01(self.key("os"), v) < p.windows_fraction
        self.tenant = np.floor(u01(self.key("tenant"), v) * p.tenants).astype(int)
        self.mem_base = uniform(self.key("mem"), p.mem_min_pct, p.mem_max_pct, v).astype(np.float32)

    def _app_meta(self, i):
        p = self.params
        return {
            "os": "windows" if self.windows[i] else "linux",
            "tenant": f"tenant-{self.tenant[i]:02d}",
            "patch_window": f"dow{p.patch_dow} {p.patch_start_h:g}h+{p.patch_window_h:g}h",
            "phase_s": float(self.vol_phase_s[i]),
            "load_scale": float(self.vol_scale[i]),
        }

    def _write_io_bytes(self) -> int:
        return int(self.params.write_io_kb * 1024)

    # --- rendering ------------------------------------------------------------------

    def _storm_len(self, key_name: str, *idx) -> np.ndarray:
        p = self.params
        return 60.0 * uniform(self.key(key_name), p.storm_min_min, p.storm_max_min, *idx)

    def _storms(self, pg: Page) -> np.ndarray:
        """Storm intensity (patch + boot), [ticks, volumes]; ~1 inside a storm."""
        p = self.params
        v = self._vidx
        out = np.zeros((pg.n, self.count), np.float32)
        lo, hi = pg.t0[0], pg.t0[-1] + pg.dt
        max_len = 60.0 * p.storm_max_min
        # weekly patch window
        if p.patch_prob > 0:
            for w in range(self.local_week(lo - 3600.0 * p.patch_window_h - max_len) - 1, self.local_week(hi) + 1):
                open_t = self.week_start_utc(w) + p.patch_dow * DAY_S + p.patch_start_h * 3600.0
                if open_t > hi or open_t + 3600.0 * p.patch_window_h + max_len < lo:
                    continue
                start = open_t + 3600.0 * p.patch_window_h * u01(self.key("patch_t"), w, v)
                start = np.where(u01(self.key("patch_on"), w, v) < p.patch_prob, start, np.inf)
                amp = uniform(self.key("patch_amp"), 0.7, 1.3, w, v)
                add_events(out, pg.t0, pg.dt, start, start + self._storm_len("patch_len", w, v), amp)
        # random group-wide boot storms, at most one per UTC day
        rate = min(1.0, p.boot_storms_per_week / 7.0)
        if rate > 0 and p.boot_storm_join > 0:
            reach = DAY_S + 60.0 * p.boot_storm_spread_min + max_len
            for d in range(int(np.floor((lo - reach) / DAY_S)), int(np.floor(hi / DAY_S)) + 1):
                if u01(self.key("boot_on"), d) >= rate:
                    continue
                at = d * DAY_S + DAY_S * float(u01(self.key("boot_t"), d))
                start = at + 60.0 * p.boot_storm_spread_min * u01(self.key("boot_vt"), d, v)
                start = np.where(u01(self.key("boot_join"), d, v) < p.boot_storm_join, start, np.inf)
                amp = uniform(self.key("boot_amp"), 0.7, 1.3, d, v)
                add_events(out, pg.t0, pg.dt, start, start + self._storm_len("boot_len", d, v), amp)
        return out

    def _neighbours(self, pg: Page) -> np.ndarray:
        """Noisy-neighbour extra relative load, [ticks, volumes]."""
        p = self.params
        v = self._vidx
        out = np.zeros((pg.n, self.count), np.float32)
        prob = min(1.0, p.neighbour_per_day * _NEIGHBOUR_SLOT_S / DAY_S)
        if prob <= 0 or p.neighbour_boost <= 0:
            return out
        lo, hi = pg.t0[0], pg.t0[-1] + pg.dt
        S = _NEIGHBOUR_SLOT_S
        for k in range(int(np.floor((lo - 3600.0 * p.neighbour_max_h) / S)) - 1, int(np.floor(hi / S)) + 1):
            start = k * S + S * u01(self.key("nb_t"), k, v)
            start = np.where(u01(self.key("nb_on"), k, v) < prob, start, np.inf)
            end = start + 3600.0 * uniform(self.key("nb_len"), p.neighbour_min_h, p.neighbour_max_h, k, v)
            amp = p.neighbour_boost * uniform(self.key("nb_amp"), 0.3, 1.0, k, v)
            add_events(out, pg.t0, pg.dt, start, end, amp)
        return out

    def _render(self, pg: Page) -> dict[str, np.ndarray]:
        p = self.params
        f32 = np.float32
        act = self.profile(pg) * self.wander(pg) * (1 + self._neighbours(pg))
        scale = self.vol_scale[None, :]
        load = act * scale
        e_r, e_w, e_c = pg.white(3, p.noise)
        storm = self._storms(pg)
        storm_s = storm * scale
        base_r = load * f32(p.peak_read_iops) * (1 + e_r)
        base_w = load * f32(p.peak_write_iops) * (1 + e_w)
        st_r = storm_s * f32(p.storm_read_iops) * (1 + e_r)
        st_w = storm_s * f32(p.storm_write_iops) * (1 + e_w)
        kb = 1.0 / 1024.0
        read_mbps = base_r * f32(p.read_io_kb * kb) + st_r * f32(p.storm_io_kb * kb)
        write_mbps = base_w * f32(p.write_io_kb * kb) + st_w * f32(p.storm_io_kb * kb)
        cpu = f32(p.cpu_idle_pct) + f32(p.cpu_peak_pct - p.cpu_idle_pct) * act * f32(p.scale) * (1 + e_c)
        cpu += f32(p.storm_cpu_pct) * storm
        mem = self.mem_base[None, :] + f32(10.0) * act + f32(10.0) * storm + e_c
        net = f32(0.3) * (read_mbps + write_mbps) + f32(1.0) * scale
        return {
            "read_iops": base_r + st_r,
            "write_iops": base_w + st_w,
            "read_mbps": read_mbps,
            "write_mbps": write_mbps,
            "cpu_pct": np.clip(cpu, 0.0, 100.0),
            "mem_pct": np.clip(mem, 0.0, 100.0),
            "net_mbps": net,
        }

"""`database`: an OLTP database volume (PostgreSQL-like)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from common.units import DAY_S
from workloads.synthetic.keyed import u01, uniform
from workloads.synthetic.params import CommonParams, check
from workloads.synthetic.shapes import business_curve, trapezoid
from workloads.synthetic.source import Page, SyntheticSource


@dataclasses.dataclass(frozen=True)
class DatabaseParams(CommonParams):
    """Parameters of the `database` workload (plus those of `CommonParams`).

    Load model per volume: query activity `a(t)` = weekly profile (business hours,
    weekdays) x slow wander; OLTP IOPS = peak x a x volume scale, plus continuous
    WAL writes, periodic checkpoint write bursts and a nightly batch/ETL window.

    Attributes:
        engine: reported in the volume metadata. Default "postgres".
        peak_read_iops: OLTP read IOPS at the weekday business-hour peak. Default 7000.
        peak_write_iops: OLTP data-page write IOPS at the peak. Default 2000.
        read_io_kb, write_io_kb: OLTP I/O sizes, KiB. Default 8 and 8.
        night_floor: query activity at night as a fraction of the peak. Default 0.12.
        weekend_factor: query activity on Saturday/Sunday relative to weekdays. Default 0.5.
        business_start_h, business_end_h: local hours where the daytime plateau rises
            and falls. Default 8 and 19.
        log_write_iops: WAL (small sequential) write IOPS at the peak; never below 25% of
            it, even at night. Default 400.
        log_io_kb: WAL write size, KiB. Default 16.
        checkpoint_interval_min_s, checkpoint_interval_max_s: each volume's checkpoint
            period is drawn in this range (whole minutes). Default 300 and 900.
        checkpoint_duration_s: length of a checkpoint write burst, seconds (+-25% per
            volume). Default 60.
        checkpoint_write_iops: extra write IOPS during a checkpoint at peak activity
            (30% of it at idle). Default 4000.
        checkpoint_io_kb: checkpoint write size, KiB. Default 16.
        batch_start_h: local hour the nightly batch/ETL window opens. Default 1.0.
        batch_stagger_min: per-volume fixed offset of the window, uniform in [0, x]
            minutes. Default 30.
        batch_jitter_min: per-night start jitter, uniform in [-x, x] minutes. Default 10.
        batch_min_h, batch_max_h: per-night duration range, hours. Default 1 and 3.
        batch_read_mbps, batch_write_mbps: sustained batch read/write MB/s (ramps up and
            down over 10 minutes). Default 110 and 20.
        batch_io_kb: batch I/O size, KiB (large sequential). Default 128.
        replica_fraction: share of volumes that are replicas (OLTP reads x0.6). Default 0.25.
        cpu_idle_pct, cpu_peak_pct: CPU % with no queries and at peak activity (x scale).
            Default 4 and 55.
        batch_cpu_pct: extra CPU % while the batch runs. Default 20.
        mem_min_pct, mem_max_pct: range of a volume's resident buffer-pool memory %.
            Default 70 and 85.
    """

    engine: str = "postgres"
    peak_read_iops: float = 7000.0
    peak_write_iops: float = 2000.0
    read_io_kb: float = 8.0
    write_io_kb: float = 8.0
    night_floor: float = 0.12
    weekend_factor: float = 0.5
    business_start_h: float = 8.0
    business_end_h: float = 19.0
    log_write_iops: float = 400.0
    log_io_kb: float = 16.0
    checkpoint_interval_min_s: float = 300.0
    checkpoint_interval_max_s: float = 900.0
    checkpoint_duration_s: float = 60.0
    checkpoint_write_iops: float = 4000.0
    checkpoint_io_kb: float = 16.0
    batch_start_h: float = 1.0
    batch_stagger_min: float = 30.0
    batch_jitter_min: float = 10.0
    batch_min_h: float = 1.0
    batch_max_h: float = 3.0
    batch_read_mbps: float = 110.0
    batch_write_mbps: float = 20.0
    batch_io_kb: float = 128.0
    replica_fraction: float = 0.25
    cpu_idle_pct: float = 4.0
    cpu_peak_pct: float = 55.0
    batch_cpu_pct: float = 20.0
    mem_min_pct: float = 70.0
    mem_max_pct: float = 85.0
    zipf_s: float = 2.0

    def validate(self, kind: str) -> None:
        super().validate(kind)
        for lo, hi in [
            ("checkpoint_interval_min_s", "checkpoint_interval_max_s"),
            ("batch_min_h", "batch_max_h"),
            ("mem_min_pct", "mem_max_pct"),
            ("business_start_h", "business_end_h"),
        ]:
            self.check_range(kind, lo, hi)
        check(kind, not self.checkpoint_interval_min_s < 60, "checkpoint_interval_min_s", "must be >= 60", self.checkpoint_interval_min_s)
        self.check_each(
            kind, ("read_io_kb", "write_io_kb", "log_io_kb", "checkpoint_io_kb", "batch_io_kb"), lambda v: not v <= 0, "must be > 0"
        )
        check(kind, not self.batch_max_h > 20, "batch_max_h", "must be <= 20 h", self.batch_max_h)
        check(kind, not self.replica_fraction > 1, "replica_fraction", "must be <= 1", self.replica_fraction)


def _hhmm(h: float) -> str:
    m = int(round(h * 60)) % 1440
    return f"{m // 60:02d}:{m % 60:02d}"


class DatabaseWorkload(SyntheticSource):
    """Synthetic OLTP database volumes: `factory(*, count, tick_s, seed, id_prefix,
    start_epoch=1704067200.0, **DatabaseParams)`."""

    kind = "database"
    Params = DatabaseParams
    params: DatabaseParams

    def _week_profile(self, hours, dow):
        p = self.params
        day = business_curve(hours, p.business_start_h, p.business_end_h, 0.8)
        day = day * (1.0 - 0.08 * np.exp(-0.5 * ((hours - 12.5) / 0.6) ** 2))  # lunch dip
        prof = p.night_floor + (1.0 - p.night_floor) * day
        return prof * np.where(dow >= 5, p.weekend_factor, 1.0)

    def _setup(self) -> None:
        p = self.params
        v = self._vidx
        lo, hi = math.ceil(p.checkpoint_interval_min_s / 60), math.floor(p.checkpoint_interval_max_s / 60)
        hi = max(hi, lo)
        self.ckpt_interval_s = 60.0 * np.floor(uniform(self.key("ckpt_i"), lo, hi + 1 - 1e-9, v))
        self.ckpt_phase_s = np.floor(u01(self.key("ckpt_phase"), v) * self.ckpt_interval_s)
        self.ckpt_dur_s = np.minimum(p.checkpoint_duration_s * uniform(self.key("ckpt_d"), 0.75, 1.25, v), 0.5 * self.ckpt_interval_s)
        self.replica = u01(self.key("role"), v) < p.replica_fraction
        self.read_factor = np.where(self.replica, 0.6, 1.0).astype(np.float32)
        self.batch_offset_s = uniform(self.key("batch_off"), 0.0, p.batch_stagger_min * 60.0, v)
        self.mem_base = uniform(self.key("mem"), p.mem_min_pct, p.mem_max_pct, v).astype(np.float32)

    def _app_meta(self, i):
        p = self.params
        start_h = p.batch_start_h + self.batch_offset_s[i] / 3600.0
        return {
            "engine": p.engine,
            "role": "replica" if self.replica[i] else "primary",
            "checkpoint_interval_s": float(self.ckpt_interval_s[i]),
            "batch_window": f"{_hhmm(start_h)}-{_hhmm(start_h + p.batch_max_h)}",
            "batch_start_h": float(round(start_h, 4)),
            "batch_min_h": p.batch_min_h,
            "batch_max_h": p.batch_max_h,
            "phase_s": float(self.vol_phase_s[i]),
            "load_scale": float(self.vol_scale[i]),
        }

    def _write_io_bytes(self) -> int:
        return int(self.params.write_io_kb * 1024)

    # --- rendering ------------------------------------------------------------------

    def _checkpoints(self, pg: Page) -> np.ndarray:
        """Fraction of each tick covered by a checkpoint burst, [ticks, volumes]."""
        dt = pg.dt
        interval = self.ckpt_interval_s
        page_rel0 = pg.t0[0] - self.start_epoch
        off = ((self.ckpt_phase_s - page_rel0) % interval).astype(np.float32)  # first start in page-relative time
        interval32 = interval.astype(np.float32)
        dur = self.ckpt_dur_s.astype(np.float32)
        r0 = (np.arange(pg.n, dtype=np.float64) * dt).astype(np.float32)[:, None]
        r1 = r0 + np.float32(dt)
        k_last = np.floor((r1 - off) / interval32)
        frac = np.zeros((pg.n, self.count), np.float32)
        for j in range(int(math.ceil(dt / float(interval.min()))) + 1):
            s = off + (k_last - j) * interval32
            ov = np.minimum(r1, s + dur) - np.maximum(r0, s)
            np.clip(ov, 0.0, None, out=ov)
            frac += ov
        frac *= np.float32(1.0 / dt)
        return frac

    def _batch(self, pg: Page) -> np.ndarray:
        """0..1 batch/ETL envelope, [ticks, volumes]."""
        p = self.params
        env = np.zeros((pg.n, self.count), np.float32)
        if p.batch_read_mbps == 0 and p.batch_write_mbps == 0 and p.batch_cpu_pct == 0:
            return env
        lo_t, hi_t = pg.t0[0], pg.t0[-1] + pg.dt
        v = self._vidx
        for d in range(self.local_day(lo_t) - 1, self.local_day(hi_t) + 1):
            midnight = d * DAY_S - self._local_off_s
            start = midnight + p.batch_start_h * 3600.0 + self.batch_offset_s
            start = start + uniform(self.key("batch_jit"), -p.batch_jitter_min * 60.0, p.batch_jitter_min * 60.0, d, v)
            end = start + 3600.0 * uniform(self.key("batch_dur"), p.batch_min_h, p.batch_max_h, d, v)
            cols = np.nonzero((start < hi_t) & (end > lo_t))[0]
            if cols.size:
                env[:, cols] += trapezoid(pg.t_mid, start[cols], end[cols], 600.0).astype(np.float32)
        return env

    def _render(self, pg: Page) -> dict[str, np.ndarray]:
        p = self.params
        f32 = np.float32
        act = self.profile(pg) * self.wander(pg)  # query activity, ~1 at peak
        scale = self.vol_scale[None, :]
        load = act * scale
        e_r, e_w, e_c = pg.white(3, p.noise)

        oltp_r = load * (f32(p.peak_read_iops) * self.read_factor[None, :]) * (1 + e_r)
        oltp_w = load * f32(p.peak_write_iops) * (1 + e_w)
        log_w = scale * f32(p.log_write_iops) * (f32(0.25) + f32(0.75) * act) * (1 + f32(0.3) * e_w)
        ckpt_frac = self._checkpoints(pg)
        ckpt_w = ckpt_frac * scale * f32(p.checkpoint_write_iops) * (f32(0.3) + f32(0.7) * act)
        batch = self._batch(pg)
        batch_r = batch * scale * f32(p.batch_read_mbps) * (1 + f32(0.5) * e_r)
        batch_w = batch * scale * f32(p.batch_write_mbps) * (1 + f32(0.5) * e_w)

        kb = f32(1.0 / 1024.0)
        oltp_r_mb = oltp_r * f32(p.read_io_kb * kb)
        oltp_w_mb = oltp_w * f32(p.write_io_kb * kb)
        read_mbps = oltp_r_mb + batch_r
        write_mbps = oltp_w_mb + log_w * f32(p.log_io_kb * kb) + ckpt_w * f32(p.checkpoint_io_kb * kb) + batch_w
        read_iops = oltp_r + batch_r * f32(1024.0 / p.batch_io_kb)
        write_iops = oltp_w + log_w + ckpt_w + batch_w * f32(1024.0 / p.batch_io_kb)

        cpu = f32(p.cpu_idle_pct) + f32(p.cpu_peak_pct - p.cpu_idle_pct) * act * f32(p.scale) * (1 + e_c)
        cpu += f32(p.batch_cpu_pct) * batch + f32(5.0) * ckpt_frac
        mem = self.mem_base[None, :] + f32(5.0) * act + f32(5.0) * batch + e_c
        net = f32(0.35) * (oltp_r_mb + oltp_w_mb) + f32(0.8) * batch_r + f32(0.3) * scale
        return {
            "read_iops": read_iops,
            "write_iops": write_iops,
            "read_mbps": read_mbps,
            "write_mbps": write_mbps,
            "cpu_pct": np.clip(cpu, 0.0, 100.0),
            "mem_pct": np.clip(mem, 0.0, 100.0),
            "net_mbps": net,
        }

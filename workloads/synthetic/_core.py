"""Machinery shared by the synthetic workload generators.

Purity and speed come from one rule: **every random number is keyed by absolute
indices**, never drawn from a stream whose position depends on what was asked before.

- Discrete events (checkpoints, batch windows, storms, copies, ...) and slow load
  wander are drawn with a counter-based hash (`u01`) of (seed, stream, absolute slot
  index, volume index), so any tick range can be rendered on its own.
- Tick-level white noise is drawn per *page* (a fixed, aligned run of ticks) from a
  NumPy Generator seeded by (seed, kind, page index).
- A block is always assembled from whole pages rendered with identical array shapes,
  then sliced, so even SIMD-vs-scalar rounding differences cannot make a tick's value
  depend on how a range was requested. The last few pages are cached.

Everything is vectorised over [ticks, volumes]; Python loops run per page, per event
slot (day, week, hour) or per checkpoint lag, never per tick or per volume.
"""

from __future__ import annotations

import dataclasses
import zlib
from collections import OrderedDict
from typing import Any, ClassVar

import numpy as np

from workloads.base import SERIES, LoadBlock, VolumeMeta, WorkingSet

#: calendar time of tick 0 unless told: 2024-01-01 00:00 UTC, a Monday
DEFAULT_START_EPOCH = 1704067200.0
#: 1970-01-05 00:00 UTC, the first Monday of the Unix epoch: origin of weeks
_MONDAY0 = 345600.0
DAY_S = 86400.0
WEEK_S = 7 * DAY_S
_MIN_PER_WEEK = 7 * 24 * 60
_MASK64 = (1 << 64) - 1

# ----------------------------------------------------------------------------- hashing

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLD = np.uint64(0x9E3779B97F4A7C15)
_S30, _S27, _S31, _S11 = (np.uint64(s) for s in (30, 27, 31, 11))


def _mix(z: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser on a uint64 array (wrapping arithmetic)."""
    z = z ^ (z >> _S30)
    z *= _M1
    z ^= z >> _S27
    z *= _M2
    z ^= z >> _S31
    return z


def stream_key(seed: int, *names: str | int) -> int:
    """A 64-bit key for one random stream: (seed, kind, stream name, ...)."""
    h = (int(seed) * 0x9E3779B97F4A7C15 + 0x632BE59BD9B4E019) & _MASK64
    for n in names:
        v = zlib.crc32(n.encode()) if isinstance(n, str) else int(n) & _MASK64
        h ^= (v * 0xBF58476D1CE4E5B9) & _MASK64
        h = ((h ^ (h >> 31)) * 0x94D049BB133111EB) & _MASK64
    return h


def u01(key: int, *idx: np.ndarray | int) -> np.ndarray:
    """Uniform [0, 1) values, a pure function of `key` and the (broadcast) integer indices."""
    with np.errstate(over="ignore"):
        h = np.full((), key, dtype=np.uint64)
        for a in idx:
            h = _mix(h ^ (np.asarray(a).astype(np.int64).astype(np.uint64) * _GOLD))
        return (h >> _S11).astype(np.float64) * (1.0 / 9007199254740992.0)


def normal(key: int, *idx: np.ndarray | int) -> np.ndarray:
    """Standard normal values keyed like `u01` (Box-Muller on two hashed uniforms)."""
    u1 = u01(key, *idx, 1)
    u2 = u01(key, *idx, 2)
    return np.sqrt(-2.0 * np.log1p(-u1)) * np.cos(2.0 * np.pi * u2)


def uniform(key: int, lo: float, hi: float, *idx: np.ndarray | int) -> np.ndarray:
    return lo + (hi - lo) * u01(key, *idx)


# ----------------------------------------------------------------------------- rhythms


def business_curve(h: np.ndarray, start_h: float, end_h: float, rise_h: float) -> np.ndarray:
    """Smooth 0..1 plateau between `start_h` and `end_h` (local hours), logistic edges."""
    up = 1.0 / (1.0 + np.exp(-(h - start_h) / rise_h))
    down = 1.0 / (1.0 + np.exp((h - end_h) / rise_h))
    return up * down


def week_grid() -> tuple[np.ndarray, np.ndarray]:
    """(local hour of day, day of week with Monday = 0) for every minute of a week."""
    m = np.arange(_MIN_PER_WEEK, dtype=np.float64)
    return (m % 1440.0) / 60.0, (m // 1440.0).astype(np.int64)


def value_noise(key: int, t: np.ndarray, knot_s: float, n_vol: int) -> np.ndarray:
    """Smooth noise [len(t), n_vol], ~unit variance, through hashed knots every `knot_s` s.

    Knots are keyed by their absolute index, so the curve is the same whatever range of
    `t` is evaluated.
    """
    x = t / knot_s
    k = np.floor(x).astype(np.int64)
    f = x - k
    w = (f * f * (3.0 - 2.0 * f)).astype(np.float32)[:, None]
    k0 = int(k[0])
    ks = np.arange(k0, int(k[-1]) + 2, dtype=np.int64)
    knots = ((u01(key, ks[:, None], np.arange(n_vol)[None, :]) - 0.5) * np.sqrt(12.0)).astype(np.float32)
    rel = k - k0
    a = knots[rel]
    b = knots[rel + 1]
    return a + (b - a) * w


def box_fraction(t0: np.ndarray, dt: float, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """Fraction of each tick `[t0, t0 + dt)` covered by `[start, end)`: [len(t0), len(start)]."""
    ov = np.minimum(t0[:, None] + dt, end[None, :]) - np.maximum(t0[:, None], start[None, :])
    np.clip(ov, 0.0, None, out=ov)
    ov *= 1.0 / dt
    return ov


def add_events(out: np.ndarray, t0: np.ndarray, dt: float, start: np.ndarray, end: np.ndarray, amp: np.ndarray) -> None:
    """Add box events (one per volume column, amplitude `amp`, NaN start = none) to `out`."""
    page_lo, page_hi = t0[0], t0[-1] + dt
    cols = np.nonzero((start < page_hi) & (end > page_lo))[0]
    if cols.size == 0:
        return
    frac = box_fraction(t0, dt, start[cols], end[cols])
    out[:, cols] += (frac * amp[cols]).astype(np.float32)


def trapezoid(t: np.ndarray, start: np.ndarray, end: np.ndarray, ramp_s: float) -> np.ndarray:
    """0..1 envelope rising over `ramp_s` after `start` and falling over `ramp_s` before `end`."""
    env = np.minimum(t[:, None] - start[None, :], end[None, :] - t[:, None]) * (1.0 / ramp_s)
    return np.clip(env, 0.0, 1.0)


# ----------------------------------------------------------------------------- parameters


@dataclasses.dataclass(frozen=True)
class CommonParams:
    """Parameters every synthetic kind accepts (see the kind's class for the rest).

    Attributes:
        scale: multiplies all I/O load (IOPS and MB/s) of every volume; CPU and network
            follow the load. Default 1.0.
        volume_scale_sigma: per-volume load factor is lognormal with this sigma (median
            1), clipped to [0.25, 4]. Default 0.3.
        phase_jitter_s: each volume's daily/weekly rhythm is shifted by a uniform
            amount in [-x, +x] seconds. Default 1800 (up to half an hour either way).
        utc_offset_h: local time = UTC + this many hours (business hours are local).
            Default 0.
        noise: relative standard deviation of tick-level white noise. Default 0.1.
        wander: relative standard deviation of slow load wander (smooth noise over
            minutes to hours). Default 0.15.
        zipf_s: skew of the `WorkingSet` (Zipf exponent over chunk ranks; larger =
            writes re-dirty fewer chunks); per-kind defaults.
    """

    scale: float = 1.0
    volume_scale_sigma: float = 0.3
    phase_jitter_s: float = 1800.0
    utc_offset_h: float = 0.0
    noise: float = 0.1
    wander: float = 0.15
    zipf_s: float = 1.7

    @classmethod
    def from_mapping(cls, kind: str, params: dict[str, Any]):
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(params) - set(fields))
        if unknown:
            raise ValueError(
                f"unknown {kind} workload parameter(s) {', '.join(map(repr, unknown))}; known: {', '.join(sorted(fields))}"
            )
        values: dict[str, Any] = {}
        for name, value in params.items():
            default = fields[name].default
            try:
                if isinstance(default, tuple):
                    values[name] = tuple(float(v) for v in value)
                elif isinstance(default, bool):
                    values[name] = bool(value)
                elif isinstance(default, int):
                    values[name] = int(value)
                elif isinstance(default, float):
                    values[name] = float(value)
                else:
                    values[name] = str(value)
            except (TypeError, ValueError):
                raise ValueError(f"{kind} workload parameter {name!r}: cannot use {value!r} (default {default!r})") from None
            if isinstance(values[name], float) and not np.isfinite(values[name]):
                raise ValueError(f"{kind} workload parameter {name!r} must be finite, got {value!r}")
        p = cls(**values)
        p.validate(kind)
        return p

    def validate(self, kind: str) -> None:
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if isinstance(v, float) and v < 0 and f.name != "utc_offset_h":
                raise ValueError(f"{kind} workload parameter {f.name!r} must be >= 0, got {v}")
        if self.phase_jitter_s >= DAY_S:
            raise ValueError(f"{kind} workload parameter 'phase_jitter_s' must be < 86400, got {self.phase_jitter_s}")
        WorkingSet(self.zipf_s)  # raises ValueError when out of range

    def check_range(self, kind: str, lo: str, hi: str) -> None:
        if getattr(self, lo) > getattr(self, hi):
            raise ValueError(f"{kind} workload parameters: {lo!r} ({getattr(self, lo)}) must be <= {hi!r} ({getattr(self, hi)})")

    def as_dict(self) -> dict[str, Any]:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(self).items()}


# ----------------------------------------------------------------------------- the source


class Page:
    """Per-page render context handed to a kind's `_render`."""

    def __init__(self, src: SyntheticSource, first_tick: int, n: int):
        dt = src.tick_s
        ticks = np.arange(first_tick, first_tick + n, dtype=np.int64)
        self.n = n
        self.nvol = src.count
        self.dt = dt
        self.t0 = src.start_epoch + ticks * dt  # tick start, absolute UTC seconds (float64)
        self.t_mid = self.t0 + 0.5 * dt
        self.rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([src.seed & _MASK64, src.kind_id, first_tick])))

    def white(self, k: int, sigma: float) -> np.ndarray:
        """`k` fields [ticks, volumes] of zero-mean white noise with std `sigma`, >= -0.9.

        Uniform marginals (cheaper than normal draws and bounded).
        """
        x = self.rng.random((k, self.n, self.nvol), dtype=np.float32)
        x -= np.float32(0.5)
        x *= np.float32(sigma * np.sqrt(12.0))
        if sigma > 0.25:
            np.clip(x, -0.9, None, out=x)
        return x


class SyntheticSource:
    """Base of the synthetic generators: parameters, per-volume draws, paged blocks."""

    kind: ClassVar[str] = ""
    Params: ClassVar[type[CommonParams]] = CommonParams
    #: cached pages (each page holds 7 float32 arrays [page_ticks, count])
    cache_pages: ClassVar[int] = 4

    def __init__(
        self,
        *,
        count: int,
        tick_s: float,
        seed: int,
        id_prefix: str,
        start_epoch: float = DEFAULT_START_EPOCH,
        **params: Any,
    ):
        if int(count) != count or count < 1:
            raise ValueError(f"{self.kind} workload: count must be a positive integer, got {count!r}")
        if not (tick_s > 0 and np.isfinite(tick_s)):
            raise ValueError(f"{self.kind} workload: tick_s must be > 0, got {tick_s!r}")
        self.count = int(count)
        self.tick_s = float(tick_s)
        self.seed = int(seed)
        self.id_prefix = str(id_prefix)
        self.start_epoch = float(start_epoch)
        self.params = self.Params.from_mapping(self.kind, params)
        self.kind_id = zlib.crc32(self.kind.encode())
        #: ticks per page: about one simulated hour, at least 16 and at most 1024 ticks
        self.page_ticks = int(min(1024, max(16, round(3600.0 / self.tick_s))))
        self._cache: OrderedDict[int, dict[str, np.ndarray]] = OrderedDict()

        p = self.params
        v = np.arange(self.count)
        self._vidx = v
        sig = p.volume_scale_sigma
        self.vol_scale = (p.scale * np.clip(np.exp(sig * normal(self.key("vol_scale"), v)), 0.25, 4.0)).astype(np.float32)
        self.vol_phase_s = np.round(uniform(self.key("vol_phase"), -p.phase_jitter_s, p.phase_jitter_s, v))
        self._local_off_s = p.utc_offset_h * 3600.0
        # per-volume offset into the weekly profile table, in minutes, made non-negative
        self._phase_min = (np.round((self.vol_phase_s + self._local_off_s) / 60.0).astype(np.int64)) % _MIN_PER_WEEK
        hours, dow = week_grid()
        table = np.asarray(self._week_profile(hours, dow), dtype=np.float32)
        self._profile_table = np.concatenate([table, table])
        self._setup()
        width = max(3, len(str(self.count - 1)))
        self.volumes = [
            VolumeMeta(
                volume_id=f"{self.id_prefix}{i:0{width}d}",
                kind=self.kind,
                app=self._app_meta(i),
                working_set=WorkingSet(p.zipf_s),
                write_io_bytes=self._write_io_bytes(),
            )
            for i in range(self.count)
        ]

    # --- hooks for the kinds ----------------------------------------------------------

    def _week_profile(self, hours: np.ndarray, dow: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _setup(self) -> None:
        """Draw the kind's per-volume constants (after the common ones)."""

    def _app_meta(self, i: int) -> dict[str, str | float]:
        raise NotImplementedError

    def _write_io_bytes(self) -> int:
        raise NotImplementedError

    def _render(self, pg: Page) -> dict[str, np.ndarray]:
        raise NotImplementedError

    # --- helpers ----------------------------------------------------------------------

    def key(self, *names: str | int) -> int:
        return stream_key(self.seed, self.kind_id, *names)

    def profile(self, pg: Page) -> np.ndarray:
        """The kind's weekly profile (diurnal x weekday) per [tick, volume], local time."""
        minute = np.floor(((pg.t_mid - _MONDAY0) % WEEK_S) / 60.0).astype(np.int64)
        return self._profile_table[minute[:, None] + self._phase_min[None, :]]

    def profile_at(self, t: np.ndarray) -> np.ndarray:
        """The profile at one absolute time per volume (`t` shape [count])."""
        minute = np.floor(((t - _MONDAY0) % WEEK_S) / 60.0).astype(np.int64)
        return self._profile_table[minute + self._phase_min]

    def wander(self, pg: Page) -> np.ndarray:
        """Slow multiplicative load wander (mean ~1), smooth over minutes and hours."""
        w = self.params.wander
        slow = value_noise(self.key("wander_slow"), pg.t_mid, 3600.0, self.count)
        fast = value_noise(self.key("wander_fast"), pg.t_mid, 300.0, self.count)
        x = slow * np.float32(w) + fast * np.float32(0.5 * w)
        return np.exp(x - np.float32(0.625 * w * w))

    def local_day(self, t: float) -> int:
        """Local calendar day index (days since the epoch) of absolute time `t`."""
        return int(np.floor((t + self._local_off_s) / DAY_S))

    def local_week(self, t: float) -> int:
        """Local Monday-aligned week index of absolute time `t`."""
        return int(np.floor((t + self._local_off_s - _MONDAY0) / WEEK_S))

    def week_start_utc(self, week: int) -> float:
        return _MONDAY0 + week * WEEK_S - self._local_off_s

    # --- LoadSource ---------------------------------------------------------------------

    def _page(self, index: int) -> dict[str, np.ndarray]:
        got = self._cache.get(index)
        if got is not None:
            self._cache.move_to_end(index)
            return got
        pg = Page(self, index * self.page_ticks, self.page_ticks)
        out = self._render(pg)
        arrays = {}
        for s in SERIES:
            a = np.asarray(out[s], dtype=np.float32)
            np.fmax(a, np.float32(0.0), out=a)  # also maps any NaN to 0
            arrays[s] = a
        self._cache[index] = arrays
        while len(self._cache) > self.cache_pages:
            self._cache.popitem(last=False)
        return arrays

    def block(self, start_tick: int, n_ticks: int) -> LoadBlock:
        """Load for ticks `[start_tick, start_tick + n_ticks)`; any `start_tick >= 0`."""
        start_tick, n_ticks = int(start_tick), int(n_ticks)
        if start_tick < 0 or n_ticks < 0:
            raise ValueError(f"block: start_tick and n_ticks must be >= 0, got {start_tick}, {n_ticks}")
        if n_ticks == 0:
            return LoadBlock.zeros(start_tick, 0, self.count)
        P = self.page_ticks
        first, last = start_tick // P, (start_tick + n_ticks - 1) // P
        lo = start_tick - first * P
        if first == last:
            pg = self._page(first)
            arrays = {s: pg[s][lo : lo + n_ticks].copy() for s in SERIES}
        else:
            pages = [self._page(i) for i in range(first, last + 1)]
            arrays = {s: np.concatenate([p[s] for p in pages])[lo : lo + n_ticks] for s in SERIES}
        return LoadBlock(start_tick=start_tick, **arrays)

    def describe(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "generator": type(self).__name__,
            "count": self.count,
            "seed": self.seed,
            "tick_s": self.tick_s,
            "start_epoch": self.start_epoch,
            "id_prefix": self.id_prefix,
            "params": self.params.as_dict(),
        }

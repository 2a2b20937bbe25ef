"""`SyntheticSource`: the base of the generators (parameters, per-volume draws, paged blocks).

Purity and speed come from one rule: **every random number is keyed by absolute
indices** (`keyed.py`), never drawn from a stream whose position depends on what was
asked before.

- Tick-level white noise is drawn per *page* (a fixed, aligned run of ticks) from a
  NumPy Generator seeded by (seed, kind, page index).
- A block is always assembled from whole pages rendered with identical array shapes,
  then sliced, so even SIMD-vs-scalar rounding differences cannot make a tick's value
  depend on how a range was requested. The last few pages are cached.

Everything is vectorised over [ticks, volumes]; Python loops run per page, per event
slot (day, week, hour) or per checkpoint lag, never per tick or per volume.
"""

from __future__ import annotations

import zlib
from collections import OrderedDict
from typing import Any, ClassVar

import numpy as np

from common.units import DAY_S, MONDAY0_S, WEEK_S
from workloads.base import SERIES, LoadBlock, VolumeMeta, WorkingSet
from workloads.synthetic.keyed import MASK64, normal, stream_key, uniform
from workloads.synthetic.params import CommonParams, check
from workloads.synthetic.shapes import MIN_PER_WEEK, value_noise, week_grid

#: calendar time of tick 0 unless told: 2024-01-01 00:00 UTC, a Monday
DEFAULT_START_EPOCH = 1704067200.0


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
        self.rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([src.seed & MASK64, src.kind_id, first_tick])))

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
        check(self.kind, int(count) == count and count >= 1, "count", "must be a positive integer", count)
        check(self.kind, bool(tick_s > 0 and np.isfinite(tick_s)), "tick_s", "must be > 0", tick_s)
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
        self._phase_min = (np.round((self.vol_phase_s + self._local_off_s) / 60.0).astype(np.int64)) % MIN_PER_WEEK
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

    # --- shared by the kinds -----------------------------------------------------------

    def key(self, *names: str | int) -> int:
        return stream_key(self.seed, self.kind_id, *names)

    def profile(self, pg: Page) -> np.ndarray:
        """The kind's weekly profile (diurnal x weekday) per [tick, volume], local time."""
        minute = np.floor(((pg.t_mid - MONDAY0_S) % WEEK_S) / 60.0).astype(np.int64)
        return self._profile_table[minute[:, None] + self._phase_min[None, :]]

    def profile_at(self, t: np.ndarray) -> np.ndarray:
        """The profile at one absolute time per volume (`t` shape [count])."""
        minute = np.floor(((t - MONDAY0_S) % WEEK_S) / 60.0).astype(np.int64)
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
        return int(np.floor((t + self._local_off_s - MONDAY0_S) / WEEK_S))

    def week_start_utc(self, week: int) -> float:
        return MONDAY0_S + week * WEEK_S - self._local_off_s

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

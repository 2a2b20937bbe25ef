"""`TraceSource`: a replayed trace behind the `LoadSource` protocol.

Time: natural tick 0 is `start_epoch` (the first tick of the selected volumes, or the
configured start); the trace covers natural ticks `[0, n_ticks)`. `block()` serves any
tick range from 0 up: past the end the trace loops (`loop=True`, the default for
interval traces) or is zero (`loop=False`, the default for request-level traces).
Looping restarts at natural tick 0 with the same values and (for request-level
traces) the same write extents.

Values at a tick depend only on the tick (every backend computes a tick from the
tick's own edges or from per-tick sums), so blocks agree however a range is split.
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np

from workloads.base import SERIES, Extents, LoadBlock, VolumeMeta
from workloads.traces.errors import BadLineLog
from workloads.traces.request import make_extents, split_extents


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, tz=UTC).isoformat().replace("+00:00", "Z")


class TraceSource:
    """A trace's volumes as a `LoadSource` (see the module docstring for the timeline)."""

    def __init__(
        self,
        *,
        family: str,
        title: str,
        path: str,
        files: list[str],
        tick_s: float,
        time_scale: float,
        loop: bool,
        start_epoch: float,
        n_ticks: int,
        volumes: list[VolumeMeta],
        backend,
        has_extents: bool,
        log: BadLineLog,
        records: int,
        info: dict,
        seed: int | None = None,
        cache_hit: bool = False,
        data_ticks: list[tuple[int, int]] | None = None,
    ):
        self.family = family
        self.title = title
        self.path = path
        self.files = files
        self.tick_s = float(tick_s)
        self.time_scale = float(time_scale)
        self.loop = bool(loop)
        self.start_epoch = float(start_epoch)
        self.n_ticks = int(n_ticks)
        self.volumes = volumes
        self.backend = backend
        self.has_extents = has_extents
        self.log = log
        self.records = int(records)
        self.info = info
        self.seed = seed
        self.cache_hit = cache_hit
        #: per volume, the natural ticks [first, end) of its own data; outside them its first
        #: or last value stands in (interval traces); request-level traces: the whole span
        self.data_ticks = data_ticks if data_ticks is not None else [(0, self.n_ticks)] * len(volumes)

    # -- facts -------------------------------------------------------------------------
    @property
    def span_s(self) -> float:
        """Length of the trace in simulated seconds (natural ticks x tick)."""
        return self.n_ticks * self.tick_s

    @property
    def malformed(self) -> int:
        return self.log.count

    @property
    def warnings(self) -> list[str]:
        """The first malformed lines (file:line: reason: text) and other data notes."""
        out = self.log.messages()
        if self.log.count > len(self.log.samples):
            out.append(f"... {self.log.count - len(self.log.samples)} more malformed line(s): {dict(self.log.reasons)}")
        out.extend(self.info.get("notes", []))
        return out

    # -- LoadSource --------------------------------------------------------------------
    def block(self, start_tick: int, n_ticks: int) -> LoadBlock:
        start_tick, n_ticks = int(start_tick), int(n_ticks)
        if start_tick < 0 or n_ticks < 0:
            raise ValueError(f"block: start_tick and n_ticks must be >= 0 (got {start_tick}, {n_ticks})")
        nv = len(self.volumes)
        out = {s: np.zeros((n_ticks, nv), np.float32) for s in SERIES}
        found = []
        pos, filled, period = start_tick, 0, self.n_ticks
        while filled < n_ticks:
            if self.loop:
                k = pos % period
            elif pos >= period:
                break
            else:
                k = pos
            length = min(period - k, n_ticks - filled)
            for name, a in self.backend.values(k, k + length).items():
                out[name][filled : filled + length] = a
            if self.has_extents:
                for t, c, o, ln in self.backend.extents(k, k + length):
                    found.append((t + filled, c, o, ln))
            pos += length
            filled += length
        extents: dict[int, Extents] = {}
        if self.has_extents:
            grouped = split_extents(found, nv)
            empty = (np.zeros(0, np.int64),) * 3
            extents = {col: make_extents(*grouped.get(col, empty)) for col in range(nv)}
        return LoadBlock(start_tick=start_tick, extents=extents, **out)

    def describe(self) -> dict[str, object]:
        kinds: dict[str, int] = {}
        for v in self.volumes:
            kinds[v.kind] = kinds.get(v.kind, 0) + 1
        files = self.files if len(self.files) <= 12 else [*self.files[:10], f"... {len(self.files) - 10} more"]
        d = {
            "source": "trace",
            "family": self.family,
            "title": self.title,
            "path": self.path,
            "files": files,
            "n_files": len(self.files),
            "records": self.records,
            "malformed_lines": self.log.count,
            "malformed_by_reason": dict(self.log.reasons),
            "warnings": self.warnings[:10],
            "tick_s": self.tick_s,
            "time_scale": self.time_scale,
            "start_epoch": self.start_epoch,
            "start": iso(self.start_epoch),
            "n_ticks": self.n_ticks,
            "span_s": self.span_s,
            "past_end": "loop" if self.loop else "zeros",
            "volumes": len(self.volumes),
            "volume_ids": [v.volume_id for v in self.volumes][:50],
            "kinds": kinds,
            "exact_extents": self.has_extents,
            "cache_hit": self.cache_hit,
            "seed": self.seed,
        }
        d.update({k: v for k, v in self.info.items() if k != "notes"})
        return d

    # -- for `piop trace` --------------------------------------------------------------
    def iter_natural(self, max_cells: int = 4_000_000):
        """Yield blocks covering the natural span `[0, n_ticks)` (never looping)."""
        step = max(1, max_cells // max(1, len(self.volumes)))
        for k in range(0, self.n_ticks, step):
            yield self.block(k, min(step, self.n_ticks - k))

    def summary(self) -> list[dict]:
        """Per-volume statistics, each volume over its own span (`data_ticks`: not over the
        ticks where its first or last value stands in), rates per tick."""
        nv = len(self.volumes)
        first = np.array([a for a, _ in self.data_ticks], np.int64)
        end = np.array([b for _, b in self.data_ticks], np.int64)
        sums = {s: np.zeros(nv) for s in ("iops", "mbps", "read_mbps", "write_mbps")}
        peaks = {s: np.zeros(nv) for s in ("iops", "mbps")}
        for b in self.iter_natural():
            ticks = np.arange(b.start_tick, b.start_tick + b.n_ticks)[:, None]
            own = (ticks >= first[None, :]) & (ticks < end[None, :])
            iops = np.where(own, b.iops.astype(np.float64), 0.0)
            mbps = np.where(own, b.mbps.astype(np.float64), 0.0)
            sums["iops"] += iops.sum(axis=0)
            sums["mbps"] += mbps.sum(axis=0)
            sums["read_mbps"] += np.where(own, b.read_mbps, 0.0).sum(axis=0, dtype=np.float64)
            sums["write_mbps"] += np.where(own, b.write_mbps, 0.0).sum(axis=0, dtype=np.float64)
            if b.n_ticks:
                peaks["iops"] = np.maximum(peaks["iops"], iops.max(axis=0))
                peaks["mbps"] = np.maximum(peaks["mbps"], mbps.max(axis=0))
        rows = []
        for i, v in enumerate(self.volumes):
            n = max(1, int(end[i] - first[i]))
            read_mb = sums["read_mbps"][i] * self.tick_s
            write_mb = sums["write_mbps"][i] * self.tick_s
            total = read_mb + write_mb
            row = {
                "volume": v.volume_id,
                "kind": v.kind,
                "span_h": float((end[i] - first[i]) * self.tick_s / 3600.0),
                "mean_iops": float(sums["iops"][i] / n),
                "peak_iops": float(peaks["iops"][i]),
                "mean_mbps": float(sums["mbps"][i] / n),
                "peak_mbps": float(peaks["mbps"][i]),
                "read_mb": float(read_mb),
                "write_mb": float(write_mb),
                "write_pct": float(100.0 * write_mb / total) if total > 0 else 0.0,
            }
            for k in ("records", "samples"):
                if k in v.app:
                    row[k] = v.app[k]
            rows.append(row)
        return rows

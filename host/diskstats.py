"""`/proc/diskstats` counters and the rates they give, with wrap and reset detection.

The kernel keeps cumulative counters per block device. Two successive snapshots give
read/write IOPS and MB/s (sectors are always 512 bytes here), utilisation (time doing
I/O per wall second), mean wait (`await`: time spent by completed I/Os / I/Os), mean
service time (`svctm`: time doing I/O / I/Os) and mean queue length (weighted time per
wall second).

Counters are monotonic until one of three things happens, none of which may turn into a
negative rate or a spike:

- **wrap**: a counter passes its width. I/O and sector counts are `unsigned long`
  (64 bits on 64-bit kernels, 32 on 32-bit ones); the millisecond fields are printed as
  `unsigned int` and wrap at 2**32 on every kernel. A counter that went down while the
  others went up wrapped when `value + 2**w - previous` is a plausible increase (`w` is
  32 while the previous value fits in 32 bits, else 64); its increase is that.
- **reset**: the device was removed and added again, or the host rebooted: a counter
  goes down by more than a wrap explains, or jumps up by more than the device could
  have done. `io_ms` (at most one second of busy time per second) makes this sharp:
  after a reset it goes down while far from 2**32, which no wrap explains. The interval's rates are unknown and are not
  invented: no rate for that device and interval, an event instead; the next interval
  starts from the new counters.
- **device set change**: a device missing from a snapshot was removed; a new one was
  added (its first snapshot is a baseline only).

`DiskTracker.update` does that bookkeeping on parsed snapshots, so it is tested on
crafted sequences as well as on the real file.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from common.units import MB

DISKSTATS = "/proc/diskstats"
SECTOR_BYTES = 512

#: the first eleven counter fields of a diskstats line, in kernel order
FIELDS = (
    "reads",
    "reads_merged",
    "sectors_read",
    "read_ms",
    "writes",
    "writes_merged",
    "sectors_written",
    "write_ms",
    "in_flight",
    "io_ms",
    "weighted_ms",
)
#: a gauge, not a counter
GAUGES = frozenset({"in_flight"})
#: fields the kernel prints as `unsigned int` (32 bits on every kernel)
U32_FIELDS = frozenset({"read_ms", "write_ms", "io_ms", "weighted_ms"})

#: the largest believable increase of a counter per second of wall time (with
#: generous margins: 20 M IOPS, 200 GB/s, 65536 I/Os in flight for a second)
MAX_PER_S = {
    "reads": 2e7,
    "reads_merged": 2e7,
    "sectors_read": 200e9 / SECTOR_BYTES,
    "read_ms": 1000.0 * 65536,
    "writes": 2e7,
    "writes_merged": 2e7,
    "sectors_written": 200e9 / SECTOR_BYTES,
    "write_ms": 1000.0 * 65536,
    "io_ms": 1000.0 * 1.5,
    "weighted_ms": 1000.0 * 65536,
}


@dataclass(frozen=True)
class Counters:
    """One device's line of `/proc/diskstats`."""

    name: str
    major: int
    minor: int
    values: tuple[int, ...]  # FIELDS, in order

    def get(self, name: str) -> int:
        return self.values[FIELDS.index(name)]

    @property
    def dev(self) -> str:
        return f"{self.major}:{self.minor}"


@dataclass(frozen=True)
class Rates:
    """What one interval of one device gives (MB = 10**6 bytes)."""

    read_iops: float
    write_iops: float
    read_mbps: float
    write_mbps: float
    util_pct: float
    await_ms: float | None  # None: no I/O completed in the interval
    svctm_ms: float | None
    queue: float


@dataclass
class Delta:
    """The outcome of one interval: rates, or the reason there are none."""

    rates: Rates | None
    wrapped: list[str] = field(default_factory=list)
    reset: str | None = None


def parse(text: str) -> dict[str, Counters]:
    """Parse the content of `/proc/diskstats` (lines with fewer than 14 fields are skipped)."""
    out: dict[str, Counters] = {}
    for line in text.splitlines():
        f = line.split()
        if len(f) < 3 + len(FIELDS):
            continue
        try:
            vals = tuple(int(x) for x in f[3 : 3 + len(FIELDS)])
            out[f[2]] = Counters(f[2], int(f[0]), int(f[1]), vals)
        except ValueError:
            continue
    return out


def read(path: str = DISKSTATS) -> dict[str, Counters]:
    with open(path) as fh:
        return parse(fh.read())


def counter_increase(name: str, prev: int, cur: int, dt: float) -> tuple[int | None, bool]:
    """(increase, wrapped) of one counter over `dt` seconds; increase None = not believable."""
    bound = MAX_PER_S[name] * max(dt, 1.0)
    if cur >= prev:
        inc = cur - prev
        return (inc if inc <= bound else None), False
    width = 32 if (name in U32_FIELDS or prev < 2**32) else 64
    inc = cur + 2**width - prev
    if inc < 0 or inc > bound:
        return None, False
    return inc, True


def interval_rates(prev: Counters, cur: Counters, dt: float) -> Delta:
    """Rates of one device between two snapshots `dt` seconds apart (see the module doc)."""
    if dt <= 0:
        return Delta(None, reset="non-positive interval")
    if (prev.major, prev.minor) != (cur.major, cur.minor):
        return Delta(None, reset=f"device number changed {prev.dev} -> {cur.dev}")
    inc: dict[str, int] = {}
    wrapped: list[str] = []
    for i, n in enumerate(FIELDS):
        if n in GAUGES:
            continue
        d, w = counter_increase(n, prev.values[i], cur.values[i], dt)
        if d is None:
            down = [m for k, m in enumerate(FIELDS) if m not in GAUGES and cur.values[k] < prev.values[k]]
            if down:
                return Delta(None, reset=f"counters went down ({', '.join(down)}), not by a wrap")
            return Delta(None, reset=f"{n} changed by an implausible amount ({prev.values[i]} -> {cur.values[i]} in {dt:.3g} s)")
        inc[n] = d
        if w:
            wrapped.append(n)
    ios = inc["reads"] + inc["writes"]
    rates = Rates(
        read_iops=inc["reads"] / dt,
        write_iops=inc["writes"] / dt,
        read_mbps=inc["sectors_read"] * SECTOR_BYTES / MB / dt,
        write_mbps=inc["sectors_written"] * SECTOR_BYTES / MB / dt,
        util_pct=min(100.0, inc["io_ms"] / (10.0 * dt)),
        await_ms=(inc["read_ms"] + inc["write_ms"]) / ios if ios else None,
        svctm_ms=inc["io_ms"] / ios if ios else None,
        queue=inc["weighted_ms"] / (1000.0 * dt),
    )
    return Delta(rates, wrapped=wrapped)


@dataclass
class Event:
    """Something worth counting: wrap, reset, removed, added, reboot."""

    t: float
    device: str
    kind: str
    detail: str = ""


class DiskTracker:
    """Previous snapshot per device -> rates per interval, events for everything else."""

    def __init__(self, devices: list[str] | None = None):
        self.devices = None if devices is None else list(devices)  # None: every device seen
        self.prev: dict[str, Counters] = {}
        self.prev_t: float | None = None

    def _wanted(self, snap: dict[str, Counters]) -> dict[str, Counters]:
        if self.devices is None:
            return snap
        return {n: snap[n] for n in self.devices if n in snap}

    def update(self, t: float, snap: dict[str, Counters]) -> tuple[dict[str, Rates], list[Event]]:
        """Feed the snapshot taken at wall time `t`; rates of the interval since the last one."""
        snap = self._wanted(snap)
        events: list[Event] = []
        rates: dict[str, Rates] = {}
        dt = None if self.prev_t is None else t - self.prev_t
        for name, cur in snap.items():
            prev = self.prev.get(name)
            if prev is None:
                if self.prev_t is not None:
                    events.append(Event(t, name, "added", cur.dev))
                continue
            delta = interval_rates(prev, cur, float(dt or 0.0))
            for f in delta.wrapped:
                events.append(Event(t, name, "wrap", f))
            if delta.reset is not None:
                events.append(Event(t, name, "reset", delta.reset))
            elif delta.rates is not None:
                rates[name] = delta.rates
        for name in self.prev:
            if name not in snap:
                events.append(Event(t, name, "removed", self.prev[name].dev))
        self.prev = dict(snap)
        self.prev_t = t
        return rates, events

    def forget(self) -> None:
        """Drop the baseline (after a reboot every counter restarted)."""
        self.prev = {}
        self.prev_t = None

    # -- persistence of the baseline, so a restarted recorder resumes without a gap
    def state(self) -> dict:
        return {"t": self.prev_t, "devices": {n: [c.major, c.minor, list(c.values)] for n, c in self.prev.items()}}

    def restore(self, state: dict) -> None:
        self.prev_t = state.get("t")
        self.prev = {n: Counters(n, int(a), int(b), tuple(int(x) for x in v)) for n, (a, b, v) in state.get("devices", {}).items()}

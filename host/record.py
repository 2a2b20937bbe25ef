"""`piop record`: sample `/proc/diskstats` and the host every interval into a store.

Each interval the recorder reads the counters, turns them into rates with
`DiskTracker` (wrap / reset / device-change handling, see `diskstats.py`), adds the
host's CPU, memory and network utilisation, and appends everything in one transaction
(`store.py`). Sampling slots are `start + k * interval` on the monotonic clock; a slot
missed because the machine stalled is skipped and counted, never sampled twice.

Restart after `kill -9` (or a crash, or `systemctl restart`): the counters of the last
committed sample are read back from the store; if the host has not rebooted since
(same `boot_id`), the first new sample is measured from them, so its interval starts
exactly where the last one ended: no gap, no duplicate. After a reboot every counter
restarted: a `reboot` event is logged and the first new sample is a baseline only.
Timestamps are wall-clock seconds and strictly increase in a store: a sample whose time
is not after the last stored one (the clock was stepped back) is skipped and counted.
"""

from __future__ import annotations

import os
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from common.errors import UserError
from host import blockdev, diskstats, resources
from host.store import Store, now

BOOT_ID = "/proc/sys/kernel/random/boot_id"
#: devices left out when none are named: idle pseudo-devices with no workload of their own
DEFAULT_EXCLUDE = re.compile(r"^(loop|ram)\d+$")


@dataclass
class DeviceInfo:
    """Application metadata the user gives for a device (`--kind`, `--mount`)."""

    kind: str | None = None
    mount: str | None = None


@dataclass
class RecorderStats:
    samples: int = 0
    rows: int = 0
    events: dict[str, int] = field(default_factory=dict)
    skipped_slots: int = 0
    clock_steps_back: int = 0
    resumed: bool = False


def boot_id() -> str:
    try:
        with open(BOOT_ID) as fh:
            return fh.read().strip()
    except OSError:  # not Linux: boot time stands in
        import psutil

        return f"btime-{int(psutil.boot_time())}"


class Recorder:
    def __init__(
        self,
        store_path: str | Path,
        devices: list[str] | None = None,
        interval_s: float = 10.0,
        keep_days: float | None = 30.0,
        info: dict[str, DeviceInfo] | None = None,
        diskstats_path: str = diskstats.DISKSTATS,
    ):
        if not interval_s > 0:
            raise UserError(f"--interval: must be > 0 seconds (got {interval_s})")
        if keep_days is not None and not keep_days > 0:
            raise UserError(f"--keep-days: must be > 0 (got {keep_days})")
        self.diskstats_path = diskstats_path
        snap = diskstats.read(diskstats_path)
        self.names = None if not devices else [blockdev.resolve(d, snap) for d in devices]
        self.info = {blockdev.resolve(k, snap): v for k, v in (info or {}).items()}
        for name in self.info:
            if self.names is not None and name not in self.names:
                raise UserError(f"metadata for device {name!r}, which is not recorded (add --device {name})")
        self.interval_s = float(interval_s)
        self.keep_days = keep_days
        self.store_path = Path(store_path)
        self.tracker = diskstats.DiskTracker(self.names)
        self.host_prev: resources.HostSnapshot | None = None
        self.boot = boot_id()
        self.stats = RecorderStats()
        self.store: Store | None = None
        self.last_t: float | None = None
        self._known: set[str] = set()
        self._pending_events: list[diskstats.Event] = []

    # -- lifecycle ----------------------------------------------------------------------
    def open(self) -> None:
        meta = {"interval_s": repr(self.interval_s), "hostname": _hostname(), "created": repr(now())}
        self.store = Store.open_append(self.store_path, meta)
        state = self.store.state()
        self.last_t = self.store.last_t()
        t = now()
        self._pending_events = [diskstats.Event(t, "", "start", f"pid {os.getpid()}, interval {self.interval_s:g} s")]
        if state and state.get("boot_id") == self.boot:
            self.tracker.restore(state.get("disks", {}))
            if self.names is not None:  # devices no longer asked for are not "removed"
                self.tracker.prev = {n: c for n, c in self.tracker.prev.items() if n in self.names}
            self.host_prev = resources.from_state(state.get("host"))
            self.stats.resumed = self.tracker.prev_t is not None
            if self.stats.resumed:
                gap = t - float(self.tracker.prev_t)
                self._pending_events.append(diskstats.Event(t, "", "resume", f"{gap:.3f} s after the last sample"))
        elif state:
            self._pending_events.append(diskstats.Event(t, "", "reboot", f"boot_id {state.get('boot_id')} -> {self.boot}"))
        self._known = {d["name"] for d in self.store.devices()}
        snap = self._filter(diskstats.read(self.diskstats_path))
        self._register(snap, first=True)
        self.store.retain(now(), self.keep_days, force=True)

    def close(self) -> None:
        if self.store is not None:
            self.store.close()
            self.store = None

    def _filter(self, snap: dict[str, diskstats.Counters]) -> dict[str, diskstats.Counters]:
        if self.names is not None:
            return {n: snap[n] for n in self.names if n in snap}
        return {n: c for n, c in snap.items() if not DEFAULT_EXCLUDE.match(n)}

    def _register(self, snap: dict[str, diskstats.Counters], first: bool = False) -> None:
        assert self.store is not None
        rows = []
        for name, c in snap.items():
            given = self.info.get(name)
            if name in self._known and not (first and given):
                continue
            rows.append((name, c.dev, blockdev.whole_disk(name), given.kind if given else None, given.mount if given else None))
            self._known.add(name)
        if rows:
            self.store.set_devices(rows)

    # -- one sample -----------------------------------------------------------------------
    def sample(self) -> int:
        """Take one sample and commit it; the number of device rows written."""
        assert self.store is not None
        t = now()
        if self.last_t is not None and t <= self.last_t:
            self.stats.clock_steps_back += 1
            return 0
        snap = self._filter(diskstats.read(self.diskstats_path))
        host_now = resources.snapshot()
        events, self._pending_events = self._pending_events, []
        prev_t = self.tracker.prev_t
        rates, ev = self.tracker.update(t, snap)
        events += ev
        dt = None if prev_t is None else t - prev_t
        host = resources.rates(self.host_prev, host_now, dt or 0.0) if dt else None
        self.host_prev = host_now
        self._register(snap)
        state = {"t": t, "boot_id": self.boot, "disks": self.tracker.state(), "host": resources.to_state(host_now)}
        self.store.append(t, dt, rates, host, events, state)
        self.last_t = t
        self.stats.samples += 1
        self.stats.rows += len(rates)
        for e in events:
            self.stats.events[e.kind] = self.stats.events.get(e.kind, 0) + 1
        self.store.retain(t, self.keep_days)
        return len(rates)

    def run(self, stop: threading.Event | None = None, duration_s: float | None = None) -> RecorderStats:
        """Sample every interval until `stop` is set or `duration_s` has passed."""
        stop = stop or threading.Event()
        if self.tracker.prev_t is not None:  # resumed: no interval shorter than one interval
            stop.wait(max(0.0, self.tracker.prev_t + self.interval_s - now()))
        start = time.monotonic()
        slot = start
        while not stop.is_set():
            self.sample()
            slot += self.interval_s
            late = time.monotonic() - slot
            if late > 0:  # the machine stalled past the next slot(s): skip them
                missed = int(late // self.interval_s) + 1
                slot += missed * self.interval_s
                self.stats.skipped_slots += missed
            if duration_s is not None and slot - start > duration_s + 1e-9:
                break
            stop.wait(max(0.0, slot - time.monotonic()))
        return self.stats


def _hostname() -> str:
    import socket

    return socket.gethostname()

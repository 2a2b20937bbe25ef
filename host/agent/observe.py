"""What the agent observes each period, and the load history the forecaster learns from.

Each period `Sampler.sample` reads `/proc/diskstats` (rates, wraps and resets handled by
`host.diskstats.DiskTracker`) for every volume's device and the host's CPU, memory and
network (`host.resources`). A volume's *production* load is its device's load minus
what the backups on that device read and wrote in the period (their cgroup's counters,
or their processes' `read_bytes`), so a running backup does not teach the forecaster
that the volume is busy. Volumes on one device all see that device's load.

`StepHistory` folds the periods into history steps (time-weighted means over
`[k * step, (k + 1) * step)` on the agent's clock), exactly the `LoadHistory` the
simulator's recorder builds; closed steps are persisted, so a restarted agent has the
history it had (a gap while it was down holds the last step's values). `store_prior`
reads a `piop record` store into the steps before the agent's first start.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from common.errors import UserError
from common.units import MB
from host import diskstats, resources
from sim.types import LoadHistory

FIELDS = ("iops", "mbps", "cpu_pct", "mem_pct", "net_mbps")


@dataclass
class Observation:
    dt: float
    iops: np.ndarray  # per volume, production
    mbps: np.ndarray
    dev_iops: np.ndarray  # per volume, the device's total (backups included)
    dev_mbps: np.ndarray
    dev_written: np.ndarray  # bytes written to each volume's device in the period
    cpu: float
    mem: float
    net: float


class Sampler:
    """Per-period device and host rates; production = device - backups."""

    def __init__(self, devices: list[str]):
        self.devices = devices  # per volume (diskstats names)
        self.tracker = diskstats.DiskTracker(sorted(set(devices)))
        self.host_prev: resources.HostSnapshot | None = None
        self.held: dict[str, diskstats.Rates] = {}
        self.cpu = self.mem = self.net = 0.0

    def sample(self, t: float, backup_io: dict[str, tuple[float, float, float]]) -> Observation | None:
        """Rates since the previous call (None at the first); `backup_io`: {device: (read B, read I/Os, written B)} in the period."""
        snap = diskstats.read()
        prev_t = self.tracker.prev_t
        rates, _events = self.tracker.update(t, snap)
        hs = resources.snapshot()
        if prev_t is None:
            self.host_prev = hs
            return None
        dt = t - prev_t
        h = resources.rates(self.host_prev, hs, dt)
        self.host_prev = hs
        self.cpu = h.cpu_pct if h.cpu_pct is not None else self.cpu
        self.mem = h.mem_pct
        self.net = h.net_mbps if h.net_mbps is not None else self.net
        self.held.update(rates)  # a reset interval has no rate: the last one holds
        n = len(self.devices)
        out = {k: np.zeros(n) for k in ("iops", "mbps", "dev_iops", "dev_mbps", "dev_written")}
        for v, dev in enumerate(self.devices):
            r = self.held.get(dev)
            if r is None:
                continue
            rb, rio, wb = backup_io.get(dev, (0.0, 0.0, 0.0))
            read_mbps = max(0.0, r.read_mbps - rb / MB / dt)
            read_iops = max(0.0, r.read_iops - rio / dt)
            write_mbps = max(0.0, r.write_mbps - wb / MB / dt)
            out["iops"][v] = read_iops + r.write_iops
            out["mbps"][v] = read_mbps + write_mbps
            out["dev_iops"][v] = r.read_iops + r.write_iops
            out["dev_mbps"][v] = r.read_mbps + r.write_mbps
            out["dev_written"][v] = r.write_mbps * MB * dt
        return Observation(dt, out["iops"], out["mbps"], out["dev_iops"], out["dev_mbps"], out["dev_written"], self.cpu, self.mem, self.net)


class StepHistory:
    """Observations folded into history steps on the agent's clock."""

    def __init__(self, n: int, step_s: float, kinds: list[str], start_epoch: float):
        self.n, self.step_s, self.kinds, self.start_epoch = n, step_s, kinds, start_epoch
        self.k_first: int | None = None
        self.data = np.zeros((len(FIELDS), 64, n), np.float32)
        self.n_steps = 0
        self.acc = np.zeros((len(FIELDS), n))
        self.covered = 0.0
        self.open_k: int | None = None

    def _append(self, k: int, row: np.ndarray) -> None:
        if self.k_first is None:
            self.k_first = k
        while self.k_first + self.n_steps < k:  # a gap: the last step's values hold
            self._push(self.data[:, self.n_steps - 1] if self.n_steps else row)
        self._push(row)

    def _push(self, row: np.ndarray) -> None:
        if self.n_steps == self.data.shape[1]:
            self.data = np.concatenate([self.data, np.zeros_like(self.data)], axis=1)
        self.data[:, self.n_steps] = row
        self.n_steps += 1

    def load(self, rows: list[tuple], volumes: list[str]) -> None:
        """Persisted (k, volume, iops, mbps, cpu, mem, net) rows (volumes not listed: zeros)."""
        col = {v: i for i, v in enumerate(volumes)}
        by_k: dict[int, np.ndarray] = {}
        for k, vol, *vals in rows:
            if vol in col:
                by_k.setdefault(int(k), np.zeros((len(FIELDS), self.n)))[:, col[vol]] = vals
        for k in sorted(by_k):
            self._append(k, by_k[k])

    def add(self, t0: float, t1: float, values: np.ndarray) -> list[tuple[int, np.ndarray]]:
        """Fold `values` `[fields, n]` held over `[t0, t1)`; the steps this closed, (k, row)."""
        closed = []
        t = t0
        while t < t1 - 1e-9:
            k = math.floor(t / self.step_s + 1e-9)
            if self.k_first is not None and k < self.k_first + self.n_steps:  # already closed (restart overlap)
                t = (self.k_first + self.n_steps) * self.step_s
                continue
            if self.open_k is not None and k != self.open_k:
                closed.append(self._close())
            self.open_k = k
            end = min(t1, (k + 1) * self.step_s)
            self.acc += values * (end - t)
            self.covered += end - t
            t = end
        if self.open_k is not None and t1 >= (self.open_k + 1) * self.step_s - 1e-9:
            closed.append(self._close())
        return closed

    def _close(self) -> tuple[int, np.ndarray]:
        k = self.open_k
        row = self.acc / max(self.covered, 1e-9)
        self._append(k, row)
        self.acc[:] = 0.0
        self.covered = 0.0
        self.open_k = None
        return k, row

    def history(self) -> LoadHistory:
        n, k0 = self.n_steps, (self.k_first or 0)
        return LoadHistory(
            self.step_s,
            self.start_epoch,
            (k0 + np.arange(n, dtype=np.float64)) * self.step_s,
            kinds=self.kinds,
            **{f: self.data[i, :n] for i, f in enumerate(FIELDS)},
        )


def store_prior(path: Path, devices: list[str], kinds: list[str], step_s: float, end_epoch: float, keep_s: float) -> LoadHistory | None:
    """The recorded load of each volume's device in the `keep_s` before `end_epoch`, in steps."""
    from host import steps as stepfn
    from host.store import DEVICE_COLUMNS, Store, StoreError

    try:
        st = Store.open_read(path)
    except (StoreError, OSError) as err:
        raise UserError(f"history.store: {err}") from None
    with contextlib.closing(st):
        known = {d["name"] for d in st.devices()}
        missing = sorted(set(devices) - known)
        if missing:
            raise UserError(f"history.store {path}: no samples of device(s) {', '.join(missing)} (it has: {', '.join(sorted(known))})")
        cols = [DEVICE_COLUMNS.index(c) for c in ("read_iops", "write_iops", "read_mbps", "write_mbps")]
        series = {}
        first = -np.inf
        for dev in sorted(set(devices)):
            t, dt, v = st.samples(dev)
            if not t.size:
                return None
            v = np.nan_to_num(v[:, cols])
            series[dev] = (t, dt, np.stack([v[:, 0] + v[:, 1], v[:, 2] + v[:, 3]], axis=1))
            first = max(first, float((t - dt).min()))
        ht, hdt, hv = st.host()
    n = int(min(keep_s, end_epoch - first) // step_s)
    if n < 1:
        return None
    edges = end_epoch - step_s * np.arange(n, -1, -1, dtype=np.float64)
    out = np.zeros((len(FIELDS), n, len(devices)), np.float32)
    means = {dev: stepfn.build(t, dt, x, 1.5 * float(np.median(dt)), "hold").mean_over(edges) for dev, (t, dt, x) in series.items()}
    for i, dev in enumerate(devices):
        out[0, :, i], out[1, :, i] = means[dev][:, 0], means[dev][:, 1]
    if ht.size:
        h = stepfn.build(ht, hdt, np.nan_to_num(hv), 1.5 * float(np.median(hdt)), "hold").mean_over(edges)
        out[2:] = h.T[:, :, None]
    times = -step_s * np.arange(n, 0, -1, dtype=np.float64)
    return LoadHistory(step_s, end_epoch, times, kinds=kinds, **{f: out[i] for i, f in enumerate(FIELDS)})

"""Observed load at the forecasting resolution: the simulator's recorder and a helper
that builds the same `LoadHistory` straight from a load source (for backtests).

Both aggregate ticks into step means in one way, so a forecaster sees identical data
in a backtest and inside a simulation.
"""

from __future__ import annotations

import weakref

import numpy as np

from sim.types import LoadHistory
from workloads.base import LoadBlock, LoadSource

_FIELDS = ("iops", "mbps", "cpu_pct", "mem_pct", "net_mbps")


def _block_fields(block: LoadBlock) -> dict[str, np.ndarray]:
    return {
        "iops": block.iops,
        "mbps": block.mbps,
        "cpu_pct": block.cpu_pct,
        "mem_pct": block.mem_pct,
        "net_mbps": block.net_mbps,
    }


class HistoryRecorder:
    """Accumulates per-tick load into step means (`step_ticks` ticks per step)."""

    def __init__(self, n_volumes: int, tick_s: float, step_ticks: int, capacity_steps: int, kinds: list[str], start_epoch: float):
        self.tick_s = tick_s
        self.step_ticks = step_ticks
        self.kinds = kinds
        self.start_epoch = start_epoch
        self._data = {f: np.zeros((capacity_steps, n_volumes), np.float32) for f in _FIELDS}
        self._acc = {f: np.zeros(n_volumes, np.float64) for f in _FIELDS}
        self._acc_n = 0
        self.n_steps = 0
        self._fields: tuple[weakref.ref | None, dict[str, np.ndarray]] = (None, {})  # the last block's fields (read step by step)

    def add_ticks(self, block: LoadBlock, lo: int, hi: int) -> None:
        """Add rows `[lo, hi)` of `block` (must not cross a step boundary unaligned)."""
        if self._fields[0] is None or self._fields[0]() is not block:  # (its iops and mbps are sums: computed once per block)
            self._fields = (weakref.ref(block), _block_fields(block))
        fields = self._fields[1]
        i = lo
        while i < hi:
            take = min(hi - i, self.step_ticks - self._acc_n)
            for f in _FIELDS:
                self._acc[f] += fields[f][i : i + take].sum(axis=0)
            self._acc_n += take
            i += take
            if self._acc_n == self.step_ticks:
                self._close_step()

    def _close_step(self) -> None:
        if self.n_steps == self._data["iops"].shape[0]:  # grow
            for f in _FIELDS:
                self._data[f] = np.concatenate([self._data[f], np.zeros_like(self._data[f])])
        for f in _FIELDS:
            self._data[f][self.n_steps] = self._acc[f] / self.step_ticks
            self._acc[f][:] = 0.0
        self._acc_n = 0
        self.n_steps += 1

    def history(self) -> LoadHistory:
        n = self.n_steps
        step_s = self.step_ticks * self.tick_s
        return LoadHistory(
            step_s=step_s,
            start_epoch=self.start_epoch,
            times=np.arange(n, dtype=np.float64) * step_s,
            kinds=self.kinds,
            **{f: self._data[f][:n] for f in _FIELDS},
        )


def history_from_source(source: LoadSource, step_s: float, n_steps: int, start_epoch: float = 0.0, block_steps: int = 12) -> LoadHistory:
    """Read `n_steps` steps of `source` aggregated to `step_s` (a multiple of its tick), `block_steps` at
    a time: an hour's block of a large fleet stays small (a day's of 1,000 volumes is some 250 MB) and the values never
    depend on the blocks (the load-source contract)."""
    step_ticks = round(step_s / source.tick_s)
    if step_ticks < 1 or abs(step_ticks * source.tick_s - step_s) > 1e-9:
        raise ValueError(f"history step {step_s}s is not a multiple of the tick {source.tick_s}s")
    rec = HistoryRecorder(len(source.volumes), source.tick_s, step_ticks, n_steps, [v.kind for v in source.volumes], start_epoch)
    tick = 0
    total = n_steps * step_ticks
    while tick < total:
        n = min(block_steps * step_ticks, total - tick)
        rec.add_ticks(source.block(tick, n), 0, n)
        tick += n
    return rec.history()

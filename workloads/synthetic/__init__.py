"""Seeded synthetic workload generators: `database`, `vm` and `fileserver`.

Each is a `LoadSource` (workloads/base.py) registered in `workloads.registry.SYNTHETIC`
with the factory signature

    factory(*, count: int, tick_s: float, seed: int, id_prefix: str,
            start_epoch: float = 1704067200.0, **params) -> LoadSource

`start_epoch` is the calendar time (UTC seconds) of tick 0, by default 2024-01-01 00:00
UTC, a Monday; the diurnal and weekly rhythms follow it. The kinds' parameters, with
defaults and units, are documented on `DatabaseParams`, `VmParams`, `FileserverParams`
and the shared `CommonParams` (every kind takes `scale`, a load multiplier). Unknown
parameters raise `ValueError` naming them and the known ones.

Series (all float32 `[ticks, volumes]`, >= 0): read/write IOPS and MB/s (MiB/s), CPU
and memory in % (0-100), and `net_mbps`: network traffic in the same MB/s unit as the
I/O series. `block(start, n)` is a pure function of (seed, params, tick range) and
serves any `start >= 0` (the series is infinite).

Default magnitudes (weekday peak, scale 1; per-volume factors spread them):
database ~9,000 IOPS / ~75 MB/s OLTP with checkpoint bursts and a ~110 MB/s nightly
batch; vm ~2,200 IOPS / ~70 MB/s with storms of +4,000 IOPS; fileserver ~850 IOPS /
~90 MB/s with copies of ~45-135 MB/s.
"""

from __future__ import annotations

from workloads.registry import SYNTHETIC
from workloads.synthetic.database import DatabaseParams, DatabaseWorkload
from workloads.synthetic.fileserver import FileserverParams, FileserverWorkload
from workloads.synthetic.params import CommonParams
from workloads.synthetic.source import DEFAULT_START_EPOCH, SyntheticSource
from workloads.synthetic.vm import VmParams, VmWorkload

#: kind name -> generator class (each class is its own factory)
KINDS: dict[str, type[SyntheticSource]] = {
    "database": DatabaseWorkload,
    "vm": VmWorkload,
    "fileserver": FileserverWorkload,
}

for _name, _cls in KINDS.items():
    if _name not in SYNTHETIC:
        SYNTHETIC.register(_name)(_cls)

__all__ = [
    "DEFAULT_START_EPOCH",
    "KINDS",
    "CommonParams",
    "DatabaseParams",
    "DatabaseWorkload",
    "FileserverParams",
    "FileserverWorkload",
    "SyntheticSource",
    "VmParams",
    "VmWorkload",
]

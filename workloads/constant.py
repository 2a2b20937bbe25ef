"""`constant`: flat load — for calibration, idle-fleet baselines and tests.

Every volume serves the same read/write IOPS and MB/s at every tick (default: idle).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import numpy as np

from common.checks import reject_unknown
from workloads.base import LoadBlock, VolumeMeta, WorkingSet
from workloads.registry import SYNTHETIC


@dataclass
class ConstantParams:
    read_iops: float = 0.0
    write_iops: float = 0.0
    read_mbps: float = 0.0
    write_mbps: float = 0.0
    cpu_pct: float = 5.0
    mem_pct: float = 30.0
    net_mbps: float = 0.0
    kind: str = "idle"


class ConstantSource:
    def __init__(self, count: int, tick_s: float, id_prefix: str, params: ConstantParams):
        self.tick_s = tick_s
        self.params = params
        ws = WorkingSet()
        self.volumes = [VolumeMeta(f"{id_prefix}{i}", params.kind, {"generator": "constant"}, ws) for i in range(count)]

    def block(self, start_tick: int, n_ticks: int) -> LoadBlock:
        n = len(self.volumes)
        p = asdict(self.params)
        arrays = {
            k: np.full((n_ticks, n), p[k], np.float32)
            for k in ("read_iops", "write_iops", "read_mbps", "write_mbps", "cpu_pct", "mem_pct", "net_mbps")
        }
        return LoadBlock(start_tick=start_tick, **arrays)

    def describe(self) -> dict[str, object]:
        return {"workload": "constant", "count": len(self.volumes), **asdict(self.params)}


@SYNTHETIC.register("constant")
def constant(*, count: int, tick_s: float, seed: int = 0, id_prefix: str = "const-", start_epoch: float = 0.0, **params) -> ConstantSource:
    reject_unknown(params, [f.name for f in fields(ConstantParams)], where="constant workload")
    return ConstantSource(count, tick_s, id_prefix, ConstantParams(**params))

"""How much memory a run needs, estimated before it starts, and the limit it must fit.

A fleet of ten million volumes or a duration of a billion hours is a typo more often than
an experiment; numpy would only say so after minutes, asking for hundreds of GiB. The
estimate counts what grows with the run (bytes per volume, measured on the simulator):

- per volume: specs, changed-block zones, metric accumulators, result rows (~4 KiB);
- the load block the fleet advances through (one hour of ticks: load, rates, impacts);
- the load history the forecasters read (every history step of history_h + duration_h);
- the recorded series (every `record_s` of the duration), when series are recorded.

Measured: 1000 synthetic database volumes over 24 h (series recorded) peaked 350 MiB above
the interpreter's own ~200 MiB; the estimate says 390 MiB.

A run whose estimate exceeds the limit (this machine's physical memory, or
`$PIOP_MEMORY_LIMIT_GB`) is refused with the figure, before anything is built.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

from common.errors import UserError

PER_VOLUME_B = 4096.0
BLOCK_TICK_B = 250.0  # per volume and tick of the block in flight
HISTORY_STEP_B = 60.0  # per volume and history step (recorder, prior history, forecaster copies)
RECORD_B = 200.0  # per volume and recorded step (the log, the frame, the Parquet writer)
GIB = float(1 << 30)


@dataclass(frozen=True)
class RunSize:
    volumes: int
    duration_s: float
    tick_s: float
    history_step_s: float
    record_s: float
    history_s: float = 0.0
    record_series: bool = True

    @property
    def ticks(self) -> float:
        return self.duration_s / self.tick_s

    def bytes(self) -> float:
        """Estimated peak memory of the run, in bytes."""
        block_ticks = min(self.ticks, math.ceil(3600.0 / self.tick_s))
        steps = (self.history_s + self.duration_s) / self.history_step_s + 1
        records = self.duration_s / self.record_s if self.record_series else 0.0
        per_volume = PER_VOLUME_B + block_ticks * BLOCK_TICK_B + steps * HISTORY_STEP_B + records * RECORD_B
        return self.volumes * per_volume


def memory_limit() -> tuple[float, str]:
    """(bytes, where the figure comes from): `$PIOP_MEMORY_LIMIT_GB`, else physical memory."""
    env = os.environ.get("PIOP_MEMORY_LIMIT_GB")
    if env:
        try:
            return float(env) * GIB, "PIOP_MEMORY_LIMIT_GB"
        except ValueError:
            raise UserError(f"PIOP_MEMORY_LIMIT_GB: expected a number of GiB, got {env!r}") from None
    import psutil

    return float(psutil.virtual_memory().total), "this machine's memory"


CONFIG_HINT = "use fewer volumes or a shorter duration_h (or a longer record_s)"


def check_size(size: RunSize, where: str, hint: str = CONFIG_HINT) -> None:
    """Refuse a run whose estimated memory exceeds the limit, with both figures."""
    need = size.bytes()
    limit, source = memory_limit()
    if need <= limit:
        return
    hours = size.duration_s / 3600.0
    raise UserError(
        f"{where}: a run of {size.volumes:,} volume(s) over {hours:,.6g} h ({size.ticks:,.0f} ticks) needs about "
        f"{need / GIB:,.1f} GiB of memory, more than {source} ({limit / GIB:,.1f} GiB); {hint}"
    )


def config_volumes(cfg) -> int:
    """Volumes of the config known before any trace is read (synthetic counts, traces' `top`)."""
    n = 0
    for g in cfg.fleet:
        if g.workload is not None:
            n += g.count
        elif isinstance(g.params.get("top"), int):
            n += int(g.params["top"])
    return n


def config_size(cfg, volumes: int) -> RunSize:
    return RunSize(volumes, cfg.duration_h * 3600.0, cfg.tick_s, cfg.history_step_s, cfg.record_s, cfg.history_h * 3600.0)


def check_config_size(cfg, where: str, volumes: int | None = None) -> None:
    """`check_size` for the config's runs (`volumes`: the fleet's real size once built)."""
    check_size(config_size(cfg, config_volumes(cfg) if volumes is None else volumes), where)

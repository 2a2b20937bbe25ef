"""How much of a run's load is the traces' own data, and what is served where it is not.

A run reads its fleet's load from natural tick 0 for `history_h + duration_h`. A trace
may be shorter (its load is then looped, zero or held past its end: the group's
`past_end`, default the trace family's own), and a volume of a trace may start late or
end early (its first or last value is held, or zero, there). Either way the run replays
load that was never measured. Nobody should learn that from a field in `summary.json`:
`load_warnings` words it, the run's summary keeps it and the commands print it; a group
with `past_end: error` refuses a trace shorter than the run.

Volumes are flagged when more than `SHARE` of the span the run reads is not their own
data (`data_ticks` of a trace source: each volume's first and last tick with samples).
A group that keeps its `top` most active volumes ranks them inside that span
(`rank_params`), so the choice itself does not favour volumes the run never replays.
"""

from __future__ import annotations

import numpy as np

from common.errors import UserError
from workloads.base import LoadBlock

#: a volume whose own data covers less than (1 - SHARE) of the span read is flagged
SHARE = 0.05


def span_ticks(cfg, tick_s: float) -> int:
    """Natural ticks a run of `cfg` reads from each source: history_h, then duration_h."""
    return int(round((cfg.history_h + cfg.duration_h) * 3600.0 / tick_s))


def _hours(ticks: float, tick_s: float) -> str:
    return f"{ticks * tick_s / 3600.0:,.1f} h"


class HoldLast:
    """`source` with each volume's last natural value held past its end (`past_end: hold`)."""

    def __init__(self, source, n_ticks: int):
        self.source = source
        self.n_ticks = int(n_ticks)
        self.tick_s = source.tick_s
        self.volumes = source.volumes

    def __getattr__(self, name: str):  # the trace's facts (loop, path, data_ticks, ...)
        if name == "source":
            raise AttributeError(name)
        return getattr(self.source, name)

    def block(self, start_tick: int, n_ticks: int) -> LoadBlock:
        inside = max(0, min(n_ticks, self.n_ticks - start_tick))
        if inside == n_ticks:
            return self.source.block(start_tick, n_ticks)
        last = self.source.block(self.n_ticks - 1, 1)
        parts = {
            s: np.repeat(getattr(last, s), n_ticks - inside, axis=0)
            for s in ("read_iops", "write_iops", "read_mbps", "write_mbps", "cpu_pct", "mem_pct", "net_mbps")
        }
        if inside:
            head = self.source.block(start_tick, inside)
            parts = {s: np.concatenate([getattr(head, s), a]) for s, a in parts.items()}
        return LoadBlock(start_tick=start_tick, **parts)

    def describe(self) -> dict[str, object]:
        return {**self.source.describe(), "past_end": "hold"}


def apply_past_end(cfg, gi: int, group, source):
    """The group's source as the run reads it: refused (`error`) or held (`hold`) past its end."""
    n = getattr(source, "n_ticks", None)
    if group.past_end not in ("error", "hold") or n is None:
        return source
    need = span_ticks(cfg, source.tick_s)
    if group.past_end == "error" and need > n:
        raise UserError(
            f"fleet.{gi}.past_end: error: the trace {group.path} covers {_hours(n, source.tick_s)} but the run reads "
            f"{_hours(need, source.tick_s)} (history_h {cfg.history_h:g} + duration_h {cfg.duration_h:g})"
        )
    if group.past_end == "hold":
        if getattr(source, "has_extents", False):
            raise UserError(
                f"fleet.{gi}.past_end: hold needs an interval trace; {group.trace} replays exact write offsets (use loop or zeros)"
            )
        return HoldLast(source, n)
    return source


def rank_params(cfg, group) -> dict:
    """A trace group choosing its `top` volumes ranks them inside the span the run reads
    (`rank_span_s`), not over the whole trace: a volume with no data in that span would
    otherwise be chosen and replayed as its first value held throughout."""
    if group.params.get("top") is None or "rank_span_s" in group.params:
        return {}
    return {"rank_span_s": (cfg.history_h + cfg.duration_h) * 3600.0}


def past_end_params(group) -> dict:
    """Trace parameters that make the source itself loop or serve zeros past its end."""
    if group.past_end in ("loop", "zeros") and "loop" not in group.params:
        return {"loop": group.past_end == "loop"}
    return {}


def served_past_end(group, source) -> str:
    if isinstance(source, HoldLast):
        return "held"
    return "looped" if getattr(source, "loop", False) else "zero"


def group_warnings(cfg, gi: int, group, source) -> list[str]:
    """What the run of `cfg` replays of trace group `gi` that the trace did not measure."""
    n = getattr(source, "n_ticks", None)
    if n is None:
        return []
    tick_s = source.tick_s
    need = span_ticks(cfg, tick_s)
    if need <= 0:
        return []
    label = f"fleet.{gi} ({group.path})"
    out = []
    if need > n:
        out.append(
            f"{label}: the trace covers {_hours(n, tick_s)} but the run reads {_hours(need, tick_s)} (history_h "
            f"{cfg.history_h:g} + duration_h {cfg.duration_h:g}): its last {_hours(need - n, tick_s)} are "
            f"{served_past_end(group, source)} load (set past_end: error to refuse such a run)"
        )
    spans = getattr(source, "data_ticks", None)
    if spans is None:
        return out
    natural = min(n, need)
    flagged = []
    for meta, (first, end) in zip(source.volumes, spans, strict=True):
        own = max(0, min(end, natural) - min(first, natural))
        made_up = (natural - own) / need
        if made_up > SHARE:
            flagged.append((made_up, meta.volume_id))
    if flagged:
        flagged.sort(key=lambda x: (-x[0], x[1]))
        worst = ", ".join(f"{vid} {share:.0%}" for share, vid in flagged[:5]) + (", ..." if len(flagged) > 5 else "")
        out.append(
            f"{label}: {len(flagged)} of {len(source.volumes)} volumes have no samples of their own for more than "
            f"{SHARE:.0%} of the {_hours(need, tick_s)} the run reads (their first or last value stands in there): {worst}"
        )
    return out


def load_warnings(cfg, fleet) -> list[str]:
    """Every trace group's warnings (`fleet`: the `FleetLoad` built from `cfg`, a source per group)."""
    out: list[str] = []
    for gi, (group, source) in enumerate(zip(cfg.fleet, fleet.sources, strict=True)):
        if group.trace is not None:
            out.extend(group_warnings(cfg, gi, group, source))
    return out

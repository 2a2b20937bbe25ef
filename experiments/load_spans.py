"""Stretches of a run's load that are not measured data: where a replayed trace was looped
or zero past its end, or a value was held where the trace has no samples.

A trace shorter than the simulated span is served past its end (looped, zero or held, see
`workloads.base`); a volume's first value is held back to the fleet's start when it
starts later than the others ("head fill"), and its last value after its last sample
("tail fill"). Drawn as plain lines these look like real load, so the figures shade them.
Everything here is read from the run's load metadata (`summary.json` meta `load`, as the
sources' `describe()` wrote it); nothing is inferred from the series.

Per source the metadata locates exactly: the end of the trace (`span_s`, with the
history offset `offset_ticks`) and what follows it (`past_end`). Head and tail fills are
recorded as totals over a source's volumes, so they are located only for a one-volume
source; a source may also list `held_spans` ({volume: [[start_s, end_s], ...]} in trace
seconds from its start), which are shaded as given. Gaps the metadata counts but does
not locate are returned as notes.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

LOOPED, ZEROS, HELD = "looped", "zeros", "held"
LABELS = {
    LOOPED: "trace looped (past its end)",
    ZEROS: "zero load (past the trace's end)",
    HELD: "value held (no trace samples)",
}


@dataclass(frozen=True)
class Span:
    start_s: float  # simulated seconds from the run's start
    end_s: float  # may be inf: to the end of the run
    kind: str  # LOOPED | ZEROS | HELD
    volumes: frozenset[str] | None  # the volumes it applies to; None: every volume of the source

    @property
    def label(self) -> str:
        return LABELS[self.kind]

    def covers(self, volume: str) -> bool:
        return self.volumes is None or volume in self.volumes


def _sources(load: dict, offset_s: float = 0.0) -> Iterator[tuple[dict, float]]:
    """Each leaf source description with the simulated time at which the run starts in it."""
    if not isinstance(load, dict):
        return
    tick = float(load.get("tick_s") or 0.0)
    if "offset_ticks" in load:
        sub_ticks = [s.get("tick_s") for s in load.get("sources", []) if isinstance(s, dict)]
        tick = tick or float(next((t for t in sub_ticks if t), 0.0))
        offset_s += float(load["offset_ticks"]) * tick
    if isinstance(load.get("sources"), list):
        for s in load["sources"]:
            yield from _sources(s, offset_s)
    else:
        yield load, offset_s


def _volumes(src: dict) -> frozenset[str] | None:
    ids = src.get("volume_ids")
    if isinstance(ids, list) and len(ids) == int(src.get("volumes", len(ids)) or 0):
        return frozenset(map(str, ids))
    return None  # listed ids were truncated: apply to the whole source


def _cycles(period: float, offset: float, duration: float, loop: bool) -> range:
    """The trace cycles (0: the trace itself, 1..: loops) the run's span touches."""
    if period <= 0:
        return range(0)
    last = math.floor((offset + duration) / period) if loop else 0
    return range(max(0, math.floor(offset / period)), last + 1)


def _clip(spans: list[Span], duration: float) -> list[Span]:
    out = []
    for s in spans:
        a, b = max(0.0, s.start_s), min(duration, s.end_s)
        if b > a:
            out.append(Span(a, b, s.kind, s.volumes))
    return out


def source_spans(src: dict, offset: float, duration: float) -> list[Span]:
    """The non-data spans of one trace source within `[0, duration)` of the run."""
    period = float(src.get("span_s") or 0.0)
    if src.get("source") != "trace" or period <= 0:
        return []
    vols = _volumes(src)
    past = str(src.get("past_end") or "zeros")
    loop = past == "loop"
    spans = [Span(period - offset, math.inf, {"loop": LOOPED, "hold": HELD}.get(past, ZEROS), vols)]
    scale = float(src.get("time_scale") or 1.0)
    fills = []
    if len(vols or ()) == 1:  # totals over one volume are that volume's spans
        head, tail = float(src.get("head_fill_s") or 0.0) * scale, float(src.get("tail_fill_s") or 0.0) * scale
        fills = [(vols, 0.0, head), (vols, period - tail, period)]
    for vol, pairs in (src.get("held_spans") or {}).items():
        fills += [(frozenset([str(vol)]), float(a) * scale, float(b) * scale) for a, b in pairs]
    for k in _cycles(period, offset, duration, loop):
        for v, a, b in fills:
            if b > a:
                spans.append(Span(k * period + a - offset, k * period + b - offset, HELD, v))
    return _clip(spans, duration)


def load_spans(load: dict | None, duration_s: float) -> list[Span]:
    """Every non-data span of a run (its meta `load`) within `[0, duration_s)`."""
    return [s for src, off in _sources(load or {}) for s in source_spans(src, off, duration_s)]


def unlocated_notes(load: dict | None) -> list[str]:
    """What the metadata counts but does not locate: held trace gaps and fills."""
    notes = []
    for src, _ in _sources(load or {}):
        if src.get("source") != "trace" or src.get("held_spans"):
            continue
        gaps, gap_h = int(src.get("gaps") or 0), float(src.get("gap_s") or 0.0) / 3600.0
        fills = 0.0 if len(_volumes(src) or ()) == 1 else float(src.get("head_fill_s") or 0.0) + float(src.get("tail_fill_s") or 0.0)
        fill = src.get("gap_fill", "hold")
        what = "held" if fill == "hold" else "zero"
        if gaps:
            notes.append(
                f"{src.get('family', 'trace')}: {gaps} gap(s) in the trace, {_length(gap_h * 3600.0)} in all, {what} "
                "(where is not recorded)"
            )
        if fills > 0:
            notes.append(
                f"{src.get('family', 'trace')}: {_length(fills)} before volumes' first or after their last samples, {what} "
                "(where is not recorded)"
            )
    return notes


def _length(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else (f"{seconds / 60:.0f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h")


def shade(ax, spans: list[Span], volume: str, x_scale: float) -> list:
    """Shade the spans covering `volume` on `ax` (x in seconds / `x_scale`); returns the
    legend handles, one per kind drawn."""
    colours = {LOOPED: "tab:gray", ZEROS: "tab:gray", HELD: "tab:brown"}
    hatches = {LOOPED: "//", ZEROS: "xx", HELD: ".."}
    drawn = {}
    for s in spans:
        if s.covers(volume):
            h = ax.axvspan(
                s.start_s / x_scale,
                s.end_s / x_scale,
                facecolor=colours[s.kind],
                alpha=0.12,
                hatch=hatches[s.kind],
                edgecolor=colours[s.kind],
                lw=0,
                label=s.label,
                zorder=0,
            )
            drawn.setdefault(s.kind, h)
    return list(drawn.values())

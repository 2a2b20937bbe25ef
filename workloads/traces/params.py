"""Parameters of the trace factories: the common ones, their checks, calendar values.

Parameters common to every family (a family adds its own, see `families.py`):

- `volumes`: ids (or glob patterns) to keep, in that order; default all. Ids are the
  trace's own: Bitbrains file stem ("20"), Alibaba machine ("m_1932"), MSR
  "<host>_<disk>" ("hm_0"), systor "LUN<n>", Tencent VolumeID ("1063").
- `top`: keep the `top` most active volumes (by `rank_by`: "bytes" (read + write,
  default), "iops" or "write_bytes"), most active first.
- `rank_span_s` (interval traces): with `top`, rank by the activity inside the first
  `rank_span_s` simulated seconds only (from `start`, default the earliest sample of all
  volumes, which then becomes tick 0), so a volume whose data starts after the span that
  is replayed is not chosen for its activity elsewhere. Request-level traces (minutes
  long) rank over their whole span.
- `time_scale` (default 1): one trace second lasts `time_scale` simulated seconds.
  Request-level traces keep every request, so bytes and I/O counts are conserved and
  rates scale by 1 / time_scale; interval traces keep their rates (a slowed-down series).
- `loop`: past the end, repeat the trace (default for interval traces) or serve zeros
  (default for request-level traces).
- `start`: tick 0 (trace time: Unix seconds, or seconds since the trace start for
  Alibaba; an ISO date string is calendar time). Default: the first timestamp of the
  selected volumes.
- `kind`: workload kind of every volume; `kinds`: {volume id or glob: kind}. Defaults
  per family (`families.py`).
- `max_bad_fraction` (default 0.001): tolerated malformed lines per file.
- `cache` (default True): use the cache folder (`$PIOP_CACHE` or `.cache/piop`).
- `id_prefix` (default ""): prefix of `VolumeMeta.volume_id` (to keep fleet ids unique).

Checks word their errors as `common.checks` does and raise `TraceError`.
"""

from __future__ import annotations

from typing import Any, Protocol

from common import checks
from workloads.traces.errors import MAX_BAD_FRACTION, TraceError

COMMON: dict[str, Any] = {
    "volumes": None,
    "top": None,
    "rank_by": "bytes",
    "rank_span_s": None,
    "time_scale": 1.0,
    "loop": None,
    "start": None,
    "kind": None,
    "kinds": None,
    "max_bad_fraction": MAX_BAD_FRACTION,
    "cache": True,
    "id_prefix": "",
}

RANK_BY = ("bytes", "iops", "write_bytes")


class ParamOwner(Protocol):
    """What parsing needs of a family: its name, own parameters and their checks."""

    name: str
    params: dict[str, Any]

    def check(self, p: dict[str, Any]) -> None: ...


def check(ok: bool, name: str, rule: str, *value: Any) -> None:
    """Raise `TraceError("name: rule (got value)")` unless `ok` (no `(got ...)` without a value)."""
    checks.require(ok, name, rule, *value, error=TraceError)


def positive(name: str, value: Any) -> float:
    """`value` as a float when it is a finite number > 0, else a `TraceError`."""
    return checks.positive(name, value, error=TraceError)


def parse_params(family: ParamOwner, given: dict[str, Any]) -> dict[str, Any]:
    """`given` over the family's defaults, checked: unknown names and bad values are errors."""
    known = {**COMMON, **family.params}
    checks.reject_unknown(given, known, where=f"trace family {family.name!r}", error=TraceError)
    p = {**known, **given}
    if isinstance(p["volumes"], str | int):
        p["volumes"] = [p["volumes"]]
    if p["volumes"] is not None:
        p["volumes"] = [str(v) for v in p["volumes"]]
        check(bool(p["volumes"]), "volumes", "empty list")
    top = p["top"]
    check(top is None or (isinstance(top, int) and not isinstance(top, bool) and top >= 1), "top", "must be a positive integer", top)
    check(p["rank_by"] in RANK_BY, "rank_by", f"one of {', '.join(RANK_BY)}", p["rank_by"])
    if p["rank_span_s"] is not None:
        positive("rank_span_s", p["rank_span_s"])
    positive("time_scale", p["time_scale"])
    mbf = p["max_bad_fraction"]
    check(isinstance(mbf, int | float) and 0 <= mbf <= 1, "max_bad_fraction", "a number in [0, 1]", mbf)
    check(p["kinds"] is None or isinstance(p["kinds"], dict), "kinds", "a mapping {volume id or pattern: kind}")
    check(p["loop"] is None or isinstance(p["loop"], bool), "loop", "true or false", p["loop"])
    family.check(p)
    return p


def calendar_seconds(v: Any, what: str) -> float:
    """Seconds from a number or an ISO date (naive = UTC)."""
    check(not isinstance(v, bool), what, "a number of seconds or an ISO date", v)
    if isinstance(v, int | float):
        return float(v)
    try:
        return float(v)
    except (TypeError, ValueError):
        pass
    import pandas as pd

    try:
        ts = pd.Timestamp(v)
    except (TypeError, ValueError):
        raise TraceError(f"{what}: a number of seconds or an ISO date (got {v!r})") from None
    if ts.tzinfo is None:
        ts = ts.tz_localize("UTC")
    return float(ts.timestamp())


def is_date(v: Any) -> bool:
    """Whether `v` is a date string rather than a number of seconds."""
    if isinstance(v, int | float):
        return False
    try:
        float(v)
        return False
    except (TypeError, ValueError):
        return True

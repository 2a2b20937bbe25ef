"""Parameters every synthetic kind accepts, read from a config mapping and checked.

Values are converted to the type of their default; unknown names and bad values raise
`ValueError` worded as `common.checks` does (`<kind> workload: <name>: <rule> (got ...)`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from common.checks import message, reject_unknown, require
from common.units import DAY_S
from workloads.base import WorkingSet


def check(kind: str, ok: bool, name: str, rule: str, *value: Any) -> None:
    """Raise `ValueError("<kind> workload: name: rule (got value)")` unless `ok`."""
    require(ok, name, rule, *value, where=f"{kind} workload")


def _convert(default: Any, value: Any) -> Any:
    """`value` as the type of `default` (tuples of floats, bool, int, float or str)."""
    if isinstance(default, tuple):
        return tuple(float(v) for v in value)
    if isinstance(default, bool):
        return bool(value)
    if isinstance(default, int):
        return int(value)
    if isinstance(default, float):
        return float(value)
    return str(value)


@dataclasses.dataclass(frozen=True)
class CommonParams:
    """Parameters every synthetic kind accepts (see the kind's class for the rest).

    Attributes:
        scale: multiplies all I/O load (IOPS and MB/s) of every volume; CPU and network
            follow the load. Default 1.0.
        volume_scale_sigma: per-volume load factor is lognormal with this sigma (median
            1), clipped to [0.25, 4]. Default 0.3.
        phase_jitter_s: each volume's daily/weekly rhythm is shifted by a uniform
            amount in [-x, +x] seconds. Default 1800 (up to half an hour either way).
        utc_offset_h: local time = UTC + this many hours (business hours are local).
            Default 0.
        noise: relative standard deviation of tick-level white noise. Default 0.1.
        wander: relative standard deviation of slow load wander (smooth noise over
            minutes to hours). Default 0.15.
        zipf_s: skew of the `WorkingSet` (Zipf exponent over chunk ranks; larger =
            writes re-dirty fewer chunks); per-kind defaults.
    """

    scale: float = 1.0
    volume_scale_sigma: float = 0.3
    phase_jitter_s: float = 1800.0
    utc_offset_h: float = 0.0
    noise: float = 0.1
    wander: float = 0.15
    zipf_s: float = 1.7

    @classmethod
    def from_mapping(cls, kind: str, params: dict[str, Any]):
        fields = {f.name: f for f in dataclasses.fields(cls)}
        reject_unknown(params, fields, where=f"{kind} workload")
        values: dict[str, Any] = {}
        for name, value in params.items():
            default = fields[name].default
            try:
                values[name] = _convert(default, value)
            except (TypeError, ValueError):
                rule = f"a {type(default).__name__} like the default {default!r}"
                raise ValueError(message(name, rule, value, where=f"{kind} workload")) from None
            if isinstance(values[name], float):
                check(kind, bool(np.isfinite(values[name])), name, "must be finite", value)
        p = cls(**values)
        p.validate(kind)
        return p

    def validate(self, kind: str) -> None:
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if isinstance(v, float) and f.name != "utc_offset_h":
                check(kind, not v < 0, f.name, "must be >= 0", v)
        check(kind, not self.phase_jitter_s >= DAY_S, "phase_jitter_s", "must be < 86400", self.phase_jitter_s)
        WorkingSet(self.zipf_s)  # raises ValueError when out of range

    def check_range(self, kind: str, lo: str, hi: str) -> None:
        """`lo` must not exceed `hi`."""
        a, b = getattr(self, lo), getattr(self, hi)
        check(kind, not a > b, lo, f"must be <= {hi} ({b})", a)

    def check_each(self, kind: str, names: Iterable[str], ok: Callable[[Any], bool], rule: str) -> None:
        """Every parameter in `names` must pass `ok`."""
        for name in names:
            v = getattr(self, name)
            check(kind, ok(v), name, rule, v)

    def as_dict(self) -> dict[str, Any]:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(self).items()}

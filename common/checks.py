"""Parameter checks with one wording, for every room that validates a user's parameters.

A failed check names the parameter, the rule it breaks and the value given:
`[<where>: ]<name>: <rule> (got <value>)`; unknown parameters are listed with the known
ones. The caller picks the error class (a `UserError` subclass for traces, `ValueError`
for constructors), so each room's one-line error handling applies unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any, NoReturn

_UNSET: Any = object()


def message(name: str, rule: str, value: Any = _UNSET, *, where: str = "") -> str:
    """`[where: ]name: rule (got value)`; without a value, no `(got ...)`."""
    text = f"{name}: {rule}" if value is _UNSET else f"{name}: {rule} (got {value!r})"
    return f"{where}: {text}" if where else text


def fail(name: str, rule: str, value: Any = _UNSET, *, where: str = "", error: type[Exception] = ValueError) -> NoReturn:
    raise error(message(name, rule, value, where=where))


def require(ok: bool, name: str, rule: str, value: Any = _UNSET, *, where: str = "", error: type[Exception] = ValueError) -> None:
    """Raise `error` worded as `message` unless `ok`."""
    if not ok:
        fail(name, rule, value, where=where, error=error)


def reject_unknown(given: Iterable[str], known: Iterable[str], *, where: str, error: type[Exception] = ValueError) -> None:
    """Raise when `given` holds names outside `known`, listing both (sorted)."""
    known = set(known)
    unknown = sorted(set(given) - known)
    if unknown:
        raise error(f"{where}: unknown parameter(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")


def is_number(value: Any) -> bool:
    """An int or float, not a bool (YAML's `yes` must not pass as 1)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def positive(name: str, value: Any, *, where: str = "", error: type[Exception] = ValueError) -> float:
    """`value` as a float when it is a finite number > 0."""
    require(is_number(value) and math.isfinite(value) and value > 0, name, "must be a positive number", value, where=where, error=error)
    return float(value)

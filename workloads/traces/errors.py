"""Trace errors and the malformed-line log every reader keeps.

Policy: a malformed line (truncated, non-numeric field, negative size,
out-of-order timestamp where the format promises order, unknown I/O type) is dropped,
counted and, for the first few, kept with its file and line number. When the dropped
lines of a file exceed `max_bad_fraction` of its lines (default 0.1 %), reading fails
with a one-line `TraceFormatError` naming the file and the first bad line: a series is
never silently built from a broken file.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from common.errors import UserError

#: default tolerated fraction of malformed lines per file
MAX_BAD_FRACTION = 0.001
#: malformed lines kept verbatim (with file and line number) per log
KEEP_SAMPLES = 5


class TraceError(UserError):
    """A user-facing problem with a trace (path, family, parameters); one line."""


class TraceFormatError(TraceError):
    """Content that cannot be read as the trace family claims (too many bad lines, unknown format)."""


@dataclass
class BadLine:
    file: str
    line: int
    reason: str
    text: str

    def message(self) -> str:
        return f"{self.file}:{self.line}: {self.reason}: {self.text!r}"


@dataclass
class BadLineLog:
    """Counts malformed lines by reason and keeps the first `keep` of them."""

    keep: int = KEEP_SAMPLES
    count: int = 0
    reasons: Counter = field(default_factory=Counter)
    samples: list[BadLine] = field(default_factory=list)

    def add(self, file: str, line: int, reason: str, text: str | Callable[[], str] = "") -> None:
        self.count += 1
        self.reasons[reason] += 1
        if len(self.samples) < self.keep:
            txt = text() if callable(text) else text
            if len(txt) > 200:
                txt = txt[:200] + "..."
            self.samples.append(BadLine(file, int(line), reason, txt))

    @property
    def wants_text(self) -> bool:
        return len(self.samples) < self.keep

    def merge(self, other: BadLineLog) -> None:
        self.count += other.count
        self.reasons.update(other.reasons)
        for s in other.samples:
            if len(self.samples) < self.keep:
                self.samples.append(s)

    def messages(self) -> list[str]:
        return [s.message() for s in self.samples]

    def check(self, file: str, lines: int, max_bad_fraction: float) -> None:
        """Raise when malformed lines exceed `max_bad_fraction` of `lines`."""
        if self.count and self.count > max_bad_fraction * max(lines, 1):
            first = self.samples[0] if self.samples else None
            where = f"; first at line {first.line}: {first.reason}" if first else ""
            raise TraceFormatError(
                f"{file}: {self.count} of {lines} lines malformed ({100.0 * self.count / max(lines, 1):.3g} %), "
                f"more than max_bad_fraction={max_bad_fraction:g}{where}"
            )

    def to_dict(self) -> dict:
        return {
            "count": self.count,
            "reasons": dict(self.reasons),
            "samples": [[s.file, s.line, s.reason, s.text] for s in self.samples],
        }

    @classmethod
    def from_dict(cls, d: dict, keep: int = KEEP_SAMPLES) -> BadLineLog:
        log = cls(keep=keep, count=int(d.get("count", 0)), reasons=Counter(d.get("reasons", {})))
        log.samples = [BadLine(str(f), int(n), str(r), str(t)) for f, n, r, t in d.get("samples", [])][:keep]
        return log

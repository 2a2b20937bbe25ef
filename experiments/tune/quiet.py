"""Optuna's own logging quietened: piop prints its progress and its errors in one line."""

from __future__ import annotations

import logging
import re
import warnings

from common.errors import UserError


class _NoTracebackForUsers(logging.Filter):
    """Optuna logs a failed trial with its traceback (and then its value): nothing for an
    interrupt (the command prints one line), no traceback for a user's mistake."""

    def __init__(self) -> None:
        super().__init__()
        self._interrupted: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        err = record.exc_info[1] if record.exc_info else None
        found = re.match(r"Trial (\d+) failed", record.getMessage())
        if isinstance(err, KeyboardInterrupt):
            if found:
                self._interrupted.add(found.group(1))
            return False
        if found and found.group(1) in self._interrupted:  # the same trial's "failed with value None"
            self._interrupted.discard(found.group(1))
            return False
        if isinstance(err, UserError):
            record.exc_info = None
        return True


_FILTER = _NoTracebackForUsers()


def quiet_optuna() -> None:
    """Optuna's progress lines and experimental warnings off: piop prints its own."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    warnings.filterwarnings("ignore", category=FutureWarning, module="optuna")
    trial_log = logging.getLogger("optuna.study._optimize")  # where optuna reports failed trials
    if _FILTER not in trial_log.filters:
        trial_log.addFilter(_FILTER)

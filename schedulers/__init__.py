"""Backup scheduling policies; importing the package registers the built-in ones."""

from schedulers import fixed, oracle, predictive, reactive  # noqa: F401  (registration)
from schedulers.base import SCHEDULERS, Scheduler

__all__ = ["SCHEDULERS", "Scheduler"]

"""Load sources: synthetic generators and replay of real traces.

Importing the package registers the built-in workloads in `SYNTHETIC` and `TRACES`.
"""

from workloads import constant, synthetic, traces  # noqa: F401  (registration)
from workloads.base import FleetLoad, LoadBlock, LoadSource, VolumeMeta, WorkingSet
from workloads.registry import SYNTHETIC, TRACES

__all__ = ["SYNTHETIC", "TRACES", "FleetLoad", "LoadBlock", "LoadSource", "VolumeMeta", "WorkingSet"]

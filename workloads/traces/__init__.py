"""Replay of real I/O traces behind the `LoadSource` protocol.

Families: request-level MSR Cambridge, SNIA systor'17 and Tencent CBS (exact write
extents for changed-block tracking) and interval metrics Bitbrains GWA-T-12 and Alibaba
machine_usage (resampled onto the simulation tick). Importing this package registers
the factories `bitbrains`, `alibaba`, `msr`, `systor`, `tencent` and `auto` in
`workloads.registry.TRACES` (`factories.py`). Parameters: `params.py` (common) and
`families.py` (per family); line layouts: `formats.py`; volume selection: `select.py`;
request-level models: `aggregate.py`, `request.py`, `build_request.py`; interval
models: `interval.py`, `resample.py`, `build_interval.py`; the cache: `cache.py`.
"""

from workloads.traces.cbt import ChunkBitmap, unique_written_bytes
from workloads.traces.detect import FAMILIES, INTERVAL_FAMILIES, REQUEST_FAMILIES
from workloads.traces.detect import detect as detect_family
from workloads.traces.errors import MAX_BAD_FRACTION, BadLineLog, TraceError, TraceFormatError
from workloads.traces.factories import make
from workloads.traces.families import IO_BYTES, MSR_HOST_KINDS, PARAMS
from workloads.traces.source import TraceSource

__all__ = [
    "FAMILIES",
    "INTERVAL_FAMILIES",
    "IO_BYTES",
    "MAX_BAD_FRACTION",
    "MSR_HOST_KINDS",
    "PARAMS",
    "REQUEST_FAMILIES",
    "BadLineLog",
    "ChunkBitmap",
    "TraceError",
    "TraceFormatError",
    "TraceSource",
    "detect_family",
    "make",
    "unique_written_bytes",
]

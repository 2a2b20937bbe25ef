"""What each trace family is: one small class per family, read by the source builders.

A family has a title, a level (request-level records or interval metrics), the
workload kind of its volumes, its own parameters (with defaults and checks) and, for
interval families, how its files are read and turned into the standard columns.

Request-level only: `reorder_s` (tolerated timestamp disorder; MSR 0, others 5 s).
Interval only: `resample` ("hold" | "linear"), `gap_fill` ("hold" | "zero"),
`max_gap_s`, `read_io_bytes` / `write_io_bytes` (override the per-kind I/O size used to
derive IOPS). Bitbrains: `months` (e.g. ["2013-7", 8]). Alibaba: `epoch` (calendar
time of trace time 0; default 0 = 1970-01-01, the real date is undisclosed),
`nominal_mbps` (500: disk_io_percent 100 % = 500 MB/s, the "ssd" device class's
bandwidth), `read_fraction` (0.5), `nic_mbps` (1250 = 10 GbE).

Default kinds: Bitbrains "vm", Alibaba "vm" (co-located batch and online work on one
machine), systor'17 "vm" (VDI), Tencent CBS "vm" (cloud block volumes), MSR by host
role (`MSR_HOST_KINDS`: servers of an enterprise data centre, mostly "fileserver").
"""

from __future__ import annotations

from fnmatch import fnmatch
from typing import Any, ClassVar

import numpy as np

from workloads.base import WorkingSet
from workloads.traces import detect as det
from workloads.traces.formats import MSR, SYSTOR, TENCENT, RequestFormat
from workloads.traces.interval import NativeSeries, alibaba_standard, read_native
from workloads.traces.params import COMMON, calendar_seconds, check, positive
from workloads.traces.select import bitbrains_files

#: MSR Cambridge server roles (Narayanan et al., FAST'08) -> workload kind
MSR_HOST_KINDS = {
    "usr": "fileserver",  # user home directories
    "proj": "fileserver",  # project directories
    "prn": "fileserver",  # print server
    "hm": "fileserver",  # hardware monitoring
    "rsrch": "fileserver",  # research projects
    "prxy": "fileserver",  # firewall / web proxy
    "src1": "fileserver",  # source control
    "src2": "fileserver",  # source control
    "stg": "fileserver",  # web staging
    "ts": "vm",  # terminal server
    "web": "database",  # web / SQL server
    "mds": "fileserver",  # media server
    "wdev": "fileserver",  # test web server
}

#: mean I/O size per kind, used to derive IOPS from MB/s where a trace has no counts
IO_BYTES = {"database": 16 * 1024, "vm": 32 * 1024, "fileserver": 64 * 1024}
DEFAULT_IO_BYTES = 32 * 1024

#: write hot sets per kind for the simulator's working-set CBT model (interval traces);
#: the same Zipf exponents as the synthetic generators' defaults
WORKING_SETS = {"database": WorkingSet(2.0), "vm": WorkingSet(1.85), "fileserver": WorkingSet(1.5)}


def io_bytes(kind: str, override: Any) -> int:
    """The I/O size of a volume of `kind` (or the user's override)."""
    return int(override) if override is not None else IO_BYTES.get(kind, DEFAULT_IO_BYTES)


def working_set(kind: str) -> WorkingSet:
    return WORKING_SETS.get(kind, WorkingSet())


class TraceFamily:
    """A trace family: title, level, default kind and its own parameters."""

    name: ClassVar[str]
    title: ClassVar[str]
    level: ClassVar[str]
    kind: ClassVar[str] = "vm"
    #: parameters of this family only (beyond `params.COMMON`), with their defaults
    params: ClassVar[dict[str, Any]] = {}

    def kind_of(self, volume_id: str) -> str:
        """The family's default kind of a volume."""
        return self.kind

    def volume_kind(self, volume_id: str, p: dict[str, Any]) -> str:
        """A volume's kind: from `kinds` (id, then glob), else `kind`, else the family's."""
        kinds = p["kinds"] or {}
        if volume_id in kinds:
            return str(kinds[volume_id])
        for pat, k in kinds.items():
            if fnmatch(volume_id, str(pat)):
                return str(k)
        if p["kind"] is not None:
            return str(p["kind"])
        return self.kind_of(volume_id)

    def check(self, p: dict[str, Any]) -> None:
        """Check this family's own parameters (the common ones are checked already)."""


# ----------------------------------------------------------------------------- request-level


class RequestFamily(TraceFamily):
    level: ClassVar[str] = "request"
    format: ClassVar[RequestFormat]
    params: ClassVar[dict[str, Any]] = {"reorder_s": None}

    def check(self, p: dict[str, Any]) -> None:
        r = p["reorder_s"]
        check(r is None or (isinstance(r, int | float) and r >= 0), "reorder_s", "a number >= 0", r)


class Msr(RequestFamily):
    name = "msr"
    format = MSR
    title = MSR.title
    kind = "fileserver"

    def kind_of(self, volume_id: str) -> str:
        return MSR_HOST_KINDS.get(volume_id.rsplit("_", 1)[0].lower(), self.kind)


class Systor(RequestFamily):
    name = "systor"
    format = SYSTOR
    title = SYSTOR.title


class Tencent(RequestFamily):
    name = "tencent"
    format = TENCENT
    title = TENCENT.title


# ----------------------------------------------------------------------------- interval metrics

INTERVAL_PARAMS: dict[str, Any] = {"resample": "hold", "gap_fill": "hold", "max_gap_s": None, "read_io_bytes": None, "write_io_bytes": None}


class IntervalFamily(TraceFamily):
    level: ClassVar[str] = "interval"
    params: ClassVar[dict[str, Any]] = INTERVAL_PARAMS
    #: the family's usual sampling interval (a volume with fewer than two samples)
    nominal_interval_s: ClassVar[float]
    #: default gap threshold in median sampling intervals
    gap_factor: ClassVar[float]
    #: volumes are files, chosen (by `volumes`) before reading
    by_file: ClassVar[bool] = False

    def check(self, p: dict[str, Any]) -> None:
        check(p["resample"] in ("hold", "linear"), "resample", "'hold' or 'linear'", p["resample"])
        check(p["gap_fill"] in ("hold", "zero"), "gap_fill", "'hold' or 'zero'", p["gap_fill"])
        for k in ("max_gap_s", "read_io_bytes", "write_io_bytes"):
            if p[k] is not None:
                positive(k, p[k])

    def read(self, path: Any, p: dict[str, Any]) -> tuple[NativeSeries, list[str]]:
        """(the cleaned native series, the file labels) of the trace at `path`."""
        raise NotImplementedError

    def epoch(self, p: dict[str, Any]) -> float:
        """Calendar time (Unix seconds) of trace time 0."""
        return 0.0

    def standard(self, values: np.ndarray, p: dict[str, Any]) -> np.ndarray:
        """Native columns of one volume -> the standard columns (`interval.STANDARD`)."""
        return values

    def unit_models(self, p: dict[str, Any]) -> dict[str, str]:
        """How the trace's units were read (for `describe()`)."""
        return {}


class Bitbrains(IntervalFamily):
    name = "bitbrains"
    title = "GWA-T-12 Bitbrains (Rnd)"
    params = {**INTERVAL_PARAMS, "months": None}
    nominal_interval_s = 300.0
    #: regular sampling: a missing sample is a gap
    gap_factor = 1.5
    by_file = True

    def read(self, path: Any, p: dict[str, Any]) -> tuple[NativeSeries, list[str]]:
        files, ids, labels = bitbrains_files(path, p["months"], p["volumes"])
        return read_native("bitbrains", files, ids, labels, p["max_bad_fraction"], p["cache"]), labels

    def unit_models(self, p: dict[str, Any]) -> dict[str, str]:
        return {
            "units": "timestamps are Unix seconds despite the '[ms]' header; KB/s / 1000 = MB/s; mem_pct = usage / "
            "provisioned; net_mbps = (rx + tx) KB/s / 1000"
        }


class Alibaba(IntervalFamily):
    name = "alibaba"
    title = "Alibaba cluster-trace-v2018 machine_usage"
    params = {**INTERVAL_PARAMS, "epoch": 0.0, "nominal_mbps": 500.0, "read_fraction": 0.5, "nic_mbps": 1250.0}
    nominal_interval_s = 60.0
    #: irregular sampling (10-400 s between samples is routine, median 60 s): only a
    #: silence of 10 median intervals (600 s) counts as a gap
    gap_factor = 10.0

    def check(self, p: dict[str, Any]) -> None:
        super().check(p)
        positive("nominal_mbps", p["nominal_mbps"])
        positive("nic_mbps", p["nic_mbps"])
        check(0 <= p["read_fraction"] <= 1, "read_fraction", "in [0, 1]", p["read_fraction"])

    def read(self, path: Any, p: dict[str, Any]) -> tuple[NativeSeries, list[str]]:
        files = det.family_files(path, "alibaba")
        labels = [str(f) for f in files]
        return read_native("alibaba", files, None, labels, p["max_bad_fraction"], p["cache"]), labels

    def epoch(self, p: dict[str, Any]) -> float:
        return calendar_seconds(p["epoch"], "epoch")

    def standard(self, values: np.ndarray, p: dict[str, Any]) -> np.ndarray:
        return alibaba_standard(values, p["nominal_mbps"], p["read_fraction"], p["nic_mbps"])

    def unit_models(self, p: dict[str, Any]) -> dict[str, str]:
        return {
            "units": "time_stamp = seconds since the trace start; start_epoch = epoch + first time_stamp",
            "disk": f"disk_io_percent is utilisation: MB/s = percent/100 x nominal_mbps ({p['nominal_mbps']:g}), "
            f"read share {p['read_fraction']:g} (the trace has no read/write split); -1 = missing (carried forward), >100 clipped",
            "network": f"net_in/net_out are normalised 0-100: net_mbps = (net_in + net_out)/100 x nic_mbps ({p['nic_mbps']:g})",
        }


#: every built-in family by name, in `detect.FAMILIES` order
FAMILIES: dict[str, TraceFamily] = {f.name: f for f in (Bitbrains(), Alibaba(), Msr(), Systor(), Tencent())}

#: each family's parameters (the common ones and its own) with their defaults
PARAMS: dict[str, dict[str, Any]] = {name: {**COMMON, **f.params} for name, f in FAMILIES.items()}

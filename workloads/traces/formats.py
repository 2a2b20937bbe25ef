"""Line layouts of the trace formats, as data.

Request-level (MSR Cambridge, SNIA systor'17, Tencent CBS): one `RequestFormat` each,
with its CSV columns, its timestamp unit and epoch, its offset/size unit, its default
reorder tolerance and how a record names its volume. Interval metrics (Bitbrains
GWA-T-12, Alibaba machine_usage): one `CsvSpec` each (`BITBRAINS_SPEC`, `ALIBABA_SPEC`),
read by `interval.py`.

Order: MSR files are sorted by timestamp (`reorder_s = 0`); systor'17 files are ordered
by completion, so arrival timestamps run back by up to a response time; Tencent CBS has
one-second timestamps, a few of them out of order (both: 5 s).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from workloads.traces.parse import Column, CsvSpec, Rows

#: Windows FILETIME (100 ns since 1601-01-01 UTC) -> Unix seconds
FILETIME_EPOCH_S = -11644473600.0


def msr_volumes(rows: Rows) -> tuple[np.ndarray, list[str]]:
    """Volume codes and names `<hostname>_<disk number>` of MSR records."""
    host, disk = rows.cols["host"], rows.cols["disk"]
    hosts = rows.strings["host"]
    if rows.n and host.min() == host.max() and disk.min() == disk.max():
        return np.zeros(rows.n, np.int32), [f"{hosts[int(host[0])]}_{int(disk[0])}"]
    key = host.astype(np.int64) * (1 << 32) + disk
    uniq, inv = np.unique(key, return_inverse=True)
    return inv.astype(np.int32), [f"{hosts[int(k >> 32)]}_{int(k & 0xFFFFFFFF)}" for k in uniq.tolist()]


def int_volumes(col: str, fmt: str) -> Callable[[Rows], tuple[np.ndarray, list[str]]]:
    """Volume codes and names (`fmt` of the integer id in column `col`) of records."""

    def volumes(rows: Rows) -> tuple[np.ndarray, list[str]]:
        v = rows.cols[col]
        if rows.n and v.min() == v.max():
            return np.zeros(rows.n, np.int32), [fmt.format(int(v[0]))]
        uniq, inv = np.unique(v, return_inverse=True)
        return inv.astype(np.int32), [fmt.format(int(x)) for x in uniq.tolist()]

    return volumes


@dataclass(frozen=True)
class RequestFormat:
    family: str
    title: str
    spec: CsvSpec
    ts_unit_s: float  # seconds per timestamp unit
    ts_epoch_s: float  # Unix seconds = raw * ts_unit_s + ts_epoch_s
    ts_int: bool  # raw timestamps are integers
    size_unit: int  # bytes per offset/size unit
    reorder_s: float  # default reorder tolerance
    volumes: Callable[[Rows], tuple[np.ndarray, list[str]]]
    volume_note: str

    def to_unix(self, raw: float | int) -> float:
        """Unix seconds of a raw timestamp (exact integer arithmetic for integer formats)."""
        if self.ts_int:
            epoch_units = round(self.ts_epoch_s / self.ts_unit_s)
            return (
                (int(raw) + epoch_units) * self.ts_unit_s if self.ts_unit_s >= 1 else (int(raw) + epoch_units) / round(1 / self.ts_unit_s)
            )
        return raw * self.ts_unit_s + self.ts_epoch_s

    def from_unix(self, t: float) -> float | int:
        if self.ts_int:
            return (
                int(round(t * round(1 / self.ts_unit_s))) - round(self.ts_epoch_s / self.ts_unit_s)
                if self.ts_unit_s < 1
                else int(round((t - self.ts_epoch_s) / self.ts_unit_s))
            )
        return (t - self.ts_epoch_s) / self.ts_unit_s


_RW = {"true_values": ("Write", "write", "WRITE", "W", "w"), "false_values": ("Read", "read", "READ", "R", "r")}

MSR = RequestFormat(
    family="msr",
    title="MSR Cambridge (SNIA IOTTA #388)",
    spec=CsvSpec(
        n_fields=7,
        columns=(
            Column(0, "ts", "i8", nonneg=True, label="timestamp"),
            Column(1, "host", "str", label="hostname"),
            Column(2, "disk", "i8", nonneg=True, label="disk number"),
            Column(3, "write", "bool"),
            Column(4, "offset", "i8", nonneg=True, label="offset"),
            Column(5, "size", "i8", nonneg=True, label="size"),
        ),
        **_RW,
    ),
    ts_unit_s=1e-7,
    ts_epoch_s=FILETIME_EPOCH_S,
    ts_int=True,
    size_unit=1,
    reorder_s=0.0,
    volumes=msr_volumes,
    volume_note="volume = <hostname>_<disk number>, e.g. hm_0",
)

SYSTOR = RequestFormat(
    family="systor",
    title="SNIA systor'17 VDI",
    spec=CsvSpec(
        n_fields=6,
        columns=(
            Column(0, "ts", "f8", nonneg=True, label="timestamp"),
            Column(2, "write", "bool"),
            Column(3, "lun", "i8", nonneg=True, label="LUN"),
            Column(4, "offset", "i8", nonneg=True, label="offset"),
            Column(5, "size", "i8", nonneg=True, label="size"),
        ),
        **_RW,
    ),
    ts_unit_s=1.0,
    ts_epoch_s=0.0,
    ts_int=False,
    size_unit=1,
    reorder_s=5.0,
    volumes=int_volumes("lun", "LUN{}"),
    volume_note="volume = LUN<n>",
)

TENCENT = RequestFormat(
    family="tencent",
    title="Tencent CBS (SNIA IOTTA)",
    spec=CsvSpec(
        n_fields=5,
        columns=(
            Column(0, "ts", "f8", nonneg=True, label="timestamp"),
            Column(1, "offset", "i8", nonneg=True, label="offset"),
            Column(2, "size", "i8", nonneg=True, label="size"),
            Column(3, "write", "bool"),
            Column(4, "vol", "i8", nonneg=True, label="volume id"),
        ),
        true_values=("1",),
        false_values=("0",),
    ),
    ts_unit_s=1.0,
    ts_epoch_s=0.0,
    ts_int=False,
    size_unit=512,
    reorder_s=5.0,
    volumes=int_volumes("vol", "{}"),
    volume_note="volume = VolumeID; offsets and sizes are 512-byte sectors",
)

FORMATS: dict[str, RequestFormat] = {f.family: f for f in (MSR, SYSTOR, TENCENT)}


# ----------------------------------------------------------------------------- interval metrics

BITBRAINS_SPEC = CsvSpec(
    n_fields=11,
    columns=tuple(
        Column(i, name, "f8", nonneg=True, label=label)
        for i, (name, label) in enumerate(
            [
                ("ts", "timestamp"),
                ("cores", "CPU cores"),
                ("cap_mhz", "CPU capacity"),
                ("cpu_mhz", "CPU usage [MHZ]"),
                ("cpu_pct", "CPU usage [%]"),
                ("mem_cap_kb", "memory capacity"),
                ("mem_kb", "memory usage"),
                ("rd_kbs", "disk read throughput"),
                ("wr_kbs", "disk write throughput"),
                ("rx_kbs", "network received throughput"),
                ("tx_kbs", "network transmitted throughput"),
            ]
        )
    ),
    delimiter=";",
    delete=b"\t",
)

ALIBABA_SPEC = CsvSpec(
    n_fields=9,
    columns=(
        Column(0, "machine", "str", label="machine id"),
        Column(1, "ts", "f8", nonneg=True, label="time_stamp"),
        Column(2, "cpu", "f8", nonneg=True, missing=-1.0, clip_max=100.0, label="cpu_util_percent"),
        Column(3, "mem", "f8", nonneg=True, missing=-1.0, clip_max=100.0, label="mem_util_percent"),
        Column(6, "net_in", "f8", nonneg=True, missing=-1.0, clip_max=100.0, label="net_in"),
        Column(7, "net_out", "f8", nonneg=True, missing=-1.0, clip_max=100.0, label="net_out"),
        Column(8, "disk", "f8", nonneg=True, missing=-1.0, clip_max=100.0, label="disk_io_percent"),
    ),
)

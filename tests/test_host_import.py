"""Load measured by other tools: the `metrics-table` (CSV / Parquet) and `node-exporter` trace families."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from cli_helpers import ROOT

import host.families  # noqa: F401  (registers the families)
from workloads.registry import TRACES
from workloads.traces.errors import TraceError, TraceFormatError

PIOP = "import host.families; from experiments.cli import app; app(prog_name='piop')"
T0 = 1_704_067_200  # 2024-01-01 00:00 UTC
COLS = {
    "time": "ts",
    "volume": "dev",
    "read_iops": "r/s",
    "write_ops": "writes",
    "read_mbps": "rMB/s",
    "write_bytes": "wbytes",
    "cpu_pct": "cpu",
}


def piop(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", PIOP, *map(str, args)], capture_output=True, text=True, cwd=ROOT)


def table_rows(n: int = 30) -> list[list]:
    """Two devices, 60 s rows: sda steady, sdb rising; writes and written bytes are per interval."""
    rows = []
    for i in range(1, n + 1):
        for dev, k in (("sda", 1.0), ("sdb", float(i))):
            rows.append([T0 + 60 * i, dev, 10 * k, 600 * k, 0.5 * k, 60e6 * k, 5 + k % 50])
    return rows


def write_csv(path: Path, rows: list[list], extra: str = "") -> Path:
    head = "ts,dev,r/s,writes,rMB/s,wbytes,cpu\n"
    path.write_text(head + "".join(",".join(map(str, r)) + "\n" for r in rows) + extra)
    return path


def test_csv_mapping_rates_and_counts(tmp_path):
    src = TRACES.create("metrics-table", path=str(write_csv(tmp_path / "io.csv", table_rows())), tick_s=30, columns=COLS)
    assert [v.volume_id for v in src.volumes] == ["sda", "sdb"]
    assert src.start_epoch == T0 and src.n_ticks == 60  # 30 rows of 60 s, each ending at its time
    b = src.block(0, 60)
    sda, sdb = 0, 1
    assert np.allclose(b.read_iops[:, sda], 10) and np.allclose(b.write_iops[:, sda], 10)  # 600 writes / 60 s
    assert np.allclose(b.read_mbps[:, sda], 0.5) and np.allclose(b.write_mbps[:, sda], 1.0)  # 60e6 bytes / 60 s
    assert np.allclose(b.write_iops[:2, sdb], 10) and np.allclose(b.write_iops[58:, sdb], 300)
    assert np.allclose(b.cpu_pct[:2, sda], 6)
    assert src.describe()["malformed_lines"] == 0


def test_time_at_start_iso_times_and_parquet(tmp_path):
    rows = table_rows(10)
    when = [r[0] * 1000 for r in rows]  # milliseconds
    table = pa.table({"when": when, "dev": [r[1] for r in rows], "r": [r[2] for r in rows], "w": [r[3] / 60 for r in rows]})
    pq.write_table(table, tmp_path / "io.data")  # Parquet is recognised by content, not by name
    src = TRACES.create(
        "metrics-table", path=str(tmp_path / "io.data"), tick_s=60, time_unit="ms", time_is="start",
        columns={"time": "when", "volume": "dev", "read_iops": "r", "write_iops": "w"},
    )  # fmt: skip
    assert src.start_epoch == T0 + 60 and src.n_ticks == 10
    assert np.allclose(src.block(0, 10).write_iops[:, 0], 10) and np.allclose(src.block(0, 10).read_mbps, 0)
    assert any("no column for read_mbps, write_mbps" in w for w in src.warnings)
    iso = tmp_path / "iso.csv"
    iso.write_text("time,r\n2024-01-01T00:01:00Z,5\n2024-01-01T00:02:00Z,7\n")
    src = TRACES.create("metrics-table", path=str(iso), tick_s=60, time_unit="iso", columns={"time": "time", "read_iops": "r"})
    assert [v.volume_id for v in src.volumes] == ["iso"] and src.start_epoch == T0
    assert src.block(0, 2).read_iops[:, 0].tolist() == [5, 7]


def test_bad_rows_are_counted_with_their_line_numbers(tmp_path):
    rows = table_rows(600)
    path = write_csv(
        tmp_path / "io.csv", rows, extra=f"{T0 + 99999},sda,oops,1,1,1,1\n{T0 + 99998},sda,-3,1,1,1,1\nnot-a-time,sda,1,1,1,1,1\n"
    )
    src = TRACES.create("metrics-table", path=str(path), tick_s=60, columns=COLS, max_bad_fraction=0.01)
    assert src.malformed == 3
    w = src.warnings
    assert w[0].startswith(f"{path}:1202: non-numeric 'r/s'") and w[1].startswith(f"{path}:1203: negative")
    assert w[2].startswith(f"{path}:1204: bad time")
    with pytest.raises(TraceFormatError, match=r"io.csv: 3 of 1203 lines malformed .* first at line 1202"):
        TRACES.create("metrics-table", path=str(path), tick_s=60, columns=COLS)


def test_wrong_column_mapping(tmp_path):
    path = write_csv(tmp_path / "io.csv", table_rows(5))
    with pytest.raises(TraceError, match=r"params.columns.read_iops: no column 'r_iops' in the file \(it has: ts, dev"):
        TRACES.create("metrics-table", path=str(path), tick_s=60, columns={**COLS, "read_iops": "r_iops"})
    with pytest.raises(TraceError, match="params.columns.readiops: unknown quantity"):
        TRACES.create("metrics-table", path=str(path), tick_s=60, columns={"time": "ts", "readiops": "r/s"})
    with pytest.raises(TraceError, match="give read_iops or read_ops, not both"):
        TRACES.create("metrics-table", path=str(path), tick_s=60, columns={**COLS, "read_ops": "r/s"})
    with pytest.raises(TraceError, match="params.columns.time: required"):
        TRACES.create("metrics-table", path=str(path), tick_s=60, columns={"read_iops": "r/s"})
    # through a config, as a user meets it: one line, exit 2, no results folder
    cfg = {
        "name": "bad-map",
        "duration_h": 1,
        "fleet": [{"trace": "metrics-table", "path": str(path), "params": {"columns": {"time": "ts", "read_iops": "r_iops"}}}],
        "policies": [{"policy": "fixed"}],
    }
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    proc = piop("run", tmp_path / "c.yaml", "--out", tmp_path / "results", "-q")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "io.csv: params.columns.read_iops: no column 'r_iops'" in lines[0], proc.stderr
    assert not [p for p in (tmp_path / "results").rglob("*") if p.is_file()]  # no run output (at most empty folders)


def prom(metric: str, device: str, values: list, named: bool = True, instance: str = "db1:9100") -> dict:
    labels = {"device": device, "instance": instance, "job": "node"}
    if named:
        labels["__name__"] = metric
    return {"metric": labels, "values": [[T0 + 15 * i, str(v)] for i, v in enumerate(values)]}


def response(series: list[dict]) -> dict:
    return {"status": "success", "data": {"resultType": "matrix", "result": series}}


def test_node_exporter_counters_with_a_reset(tmp_path):
    reads = [1500 * i for i in range(20)] + [1500 * i for i in range(1, 21)]  # the node restarted after point 19
    rbytes = [r * 4096 for r in reads]
    writes = [750 * i for i in range(40)]
    wbytes = [w * 8192 for w in writes]
    doc = response(
        [
            prom("node_disk_reads_completed_total", "sda", reads),
            prom("node_disk_read_bytes_total", "sda", rbytes),
            prom("node_disk_writes_completed_total", "sda", writes),
            prom("node_disk_written_bytes_total", "sda", wbytes),
            prom("node_disk_io_time_seconds_total", "sda", list(range(40))),  # other counters are ignored
        ]
    )
    (tmp_path / "range.json").write_text(json.dumps(doc, indent=1))
    src = TRACES.create("node-exporter", path=str(tmp_path / "range.json"), tick_s=15)
    b = src.block(0, src.n_ticks)
    assert [v.volume_id for v in src.volumes] == ["sda"] and src.n_ticks == 39
    assert src.describe()["counter_resets"] == 2  # reads and read bytes
    assert np.all(b.read_iops >= 0) and b.read_iops.max() == pytest.approx(100)  # no spike, no negative
    assert np.allclose(b.read_mbps, 100 * 4096 / 1e6) and np.allclose(b.write_iops, 50) and np.allclose(b.write_mbps, 50 * 8192 / 1e6)


def test_node_exporter_folder_of_unnamed_series_and_bad_points(tmp_path):
    folder = tmp_path / "prom"
    folder.mkdir()
    for metric, per in (("node_disk_reads_completed_total", 30), ("node_disk_written_bytes_total", 3e6)):
        vals = [per * i for i in range(1000)]
        series = [prom(metric, d, vals, named=False, instance=inst) for inst in ("a:9100", "b:9100") for d in ("sda",)]
        if metric.startswith("node_disk_reads"):
            series[0]["values"][500][1] = "NaN"
        (folder / f"{metric}.json").write_text(json.dumps(response(series)))
    src = TRACES.create("node-exporter", path=str(folder), tick_s=15)
    assert [v.volume_id for v in src.volumes] == ["a:9100/sda", "b:9100/sda"]
    assert src.malformed == 1 and "result[0] values[500]: NaN" in src.warnings[0]
    b = src.block(0, src.n_ticks)
    assert np.allclose(b.read_iops, 2) and np.allclose(b.write_mbps, 0.2) and np.allclose(b.write_iops, 0)
    (folder / "bad.json").write_text(json.dumps({"status": "error", "error": "bad query"}))
    with pytest.raises(TraceFormatError, match="bad.json: not a successful Prometheus API response"):
        TRACES.create("node-exporter", path=str(folder), tick_s=15)

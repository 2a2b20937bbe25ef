"""Load the traces never measured is said, not replayed silently.

A small Bitbrains-format trace is written for each test: VMs 1 and 2 cover four days; VM 3
only the last day, and it is by far the busiest there. So ranking "the 2 most active" over
the whole trace picks VM 3, whose first value would stand in for the first three days.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from cli_helpers import assert_one_line_error, piop

DAY = 86400
START = 1372629600  # 2013-07-01 00:00 UTC, as the real Bitbrains traces


def write_vm(folder: Path, vm: int, first_day: float, days: float, read_kbs) -> None:
    """One VM's file: a sample every 300 s, `read_kbs(i)` KB/s read, a little written."""
    header = (
        "Timestamp [ms];\tCPU cores;\tCPU capacity provisioned [MHZ];\tCPU usage [MHZ];\tCPU usage [%];\t"
        "Memory capacity provisioned [KB];\tMemory usage [KB];\tDisk read throughput [KB/s];\t"
        "Disk write throughput [KB/s];\tNetwork received throughput [KB/s];\tNetwork transmitted throughput [KB/s]"
    )
    rows = [header]
    t0 = START + int(first_day * DAY)
    for i in range(int(days * DAY / 300)):
        rows.append(f"{t0 + 300 * i};\t2;\t5000.0;\t1000.0;\t20.0;\t4194304.0;\t1048576.0;\t{read_kbs(i):.1f};\t100.0;\t0.0;\t0.0")
    (folder / f"{vm}.csv").write_text("\n".join(rows) + "\n")


@pytest.fixture
def trace(tmp_path) -> Path:
    folder = tmp_path / "bb"
    folder.mkdir()
    write_vm(folder, 1, 0, 4, lambda i: 2000.0 + (i % 12) * 100)
    write_vm(folder, 2, 0, 4, lambda i: 800.0 + (i % 6) * 50)
    write_vm(folder, 3, 3, 1, lambda i: 1000.0 if i == 0 else 50000.0)
    return folder


def config(tmp_path: Path, trace: Path, duration_h: float, **group) -> Path:
    cfg = {
        "name": "tr",
        "seed": 1,
        "duration_h": duration_h,
        "fleet": [
            {"trace": "bitbrains", "path": str(trace), "device": "san", "used_gb": 50, "params": {"top": 2, "cache": False}, **group}
        ],
        "policies": [{"policy": "fixed"}],
    }
    path = tmp_path / "tr.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def run_meta(out: Path) -> dict:
    return json.loads((out / "tr" / "fixed-s1" / "summary.json").read_text())["meta"]


def test_top_volumes_are_ranked_inside_the_simulated_span(tmp_path, trace):
    out = tmp_path / "r"
    proc = piop("run", config(tmp_path, trace, 48), "--out", out, "-q")
    assert proc.returncode == 0, proc.stderr
    volumes = json.loads((out / "tr" / "fixed-s1" / "summary.json").read_text())["meta"]["load"]["sources"][0]["volume_ids"]
    assert sorted(volumes) == ["1", "2"], volumes  # VM 3 has no data in the first 48 h
    assert "warning" not in proc.stderr and run_meta(out)["warnings"] == []


def test_held_first_value_is_said(tmp_path, trace):
    out = tmp_path / "r"
    cfg = config(tmp_path, trace, 48, params={"volumes": ["1", "3"], "cache": False})
    proc = piop("run", cfg, "--out", out, "-q")
    assert proc.returncode == 0, proc.stderr
    warned = [line for line in proc.stderr.splitlines() if line.startswith("warning: ")]
    assert len(warned) == 1 and "1 of 2 volumes" in warned[0] and "3 100%" in warned[0], proc.stderr
    assert run_meta(out)["warnings"] == [warned[0].removeprefix("warning: ")]


def test_trace_shorter_than_the_run_is_said(tmp_path, trace):
    out = tmp_path / "r"
    proc = piop("run", config(tmp_path, trace, 120), "--out", out, "-q")
    assert proc.returncode == 0, proc.stderr
    warned = [line for line in proc.stderr.splitlines() if line.startswith("warning: ")]
    assert any("covers 96.0 h but the run reads 120.0 h" in w and "looped" in w for w in warned), proc.stderr
    assert any("covers 96.0 h" in w for w in run_meta(out)["warnings"])


def test_past_end_error_refuses_a_short_trace(tmp_path, trace):
    out = tmp_path / "r"
    proc = piop("compare", config(tmp_path, trace, 120, past_end="error"), "--out", out, "-q")
    assert_one_line_error(proc, "fleet.0.past_end", "covers 96.0 h", "reads 120.0 h")
    assert not list(out.rglob("summary.json"))


def test_past_end_hold(tmp_path, trace):
    out = tmp_path / "r"
    proc = piop("run", config(tmp_path, trace, 120, past_end="hold"), "--out", out, "-q")
    assert proc.returncode == 0, proc.stderr
    assert any("held load" in w for w in run_meta(out)["warnings"])
    assert run_meta(out)["load"]["sources"][0]["past_end"] == "hold"


def test_trace_info_describes_each_volume_over_its_own_span(tmp_path, trace):
    proc = piop("trace", "info", trace, "--json", "--no-plot", "--tick", "300", "--no-cache")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    stats = {r["volume"]: r for r in data["volume_stats"]}
    # VM 3 reads 50,000 KB/s for all but its first sample: over its own day that is about
    # 51 MB/s (KB = 1024 B); its first value held over the three days before would give 13
    assert stats["3"]["mean_mbps"] > 45, stats["3"]
    assert stats["3"]["span_h"] == pytest.approx(24.0, abs=0.2)
    assert any("cover less than" in w for w in data["warnings"])

"""The `piop` command line as a user meets it: errors are one line, exit code 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from cli_helpers import ROOT, assert_one_line_error, piop

DEFAULT = ROOT / "experiments" / "configs" / "default.yaml"


def tiny_config(tmp_path: Path, **changes) -> Path:
    cfg = yaml.safe_load(DEFAULT.read_text())
    cfg.update({"duration_h": 2, "name": "tiny", "seeds": None})
    cfg["fleet"] = [{"workload": "constant", "count": 2, "params": {"read_iops": 500, "write_iops": 100, "read_mbps": 10, "write_mbps": 5}}]
    cfg.update(changes)
    p = tmp_path / "tiny.yaml"
    p.write_text(yaml.safe_dump(cfg))
    return p


def test_unknown_key(tmp_path):
    assert_one_line_error(piop("run", tiny_config(tmp_path, colour="blue")), "tiny.yaml", "colour", "unknown key")


def test_unknown_nested_key(tmp_path):
    p = tiny_config(tmp_path)
    cfg = yaml.safe_load(p.read_text())
    cfg["fleet"][0]["sizze_gb"] = 3
    p.write_text(yaml.safe_dump(cfg))
    assert_one_line_error(piop("run", p), "fleet.0.sizze_gb", "unknown key")


def test_negative_rpo(tmp_path):
    assert_one_line_error(piop("run", tiny_config(tmp_path, rpo_h=-1)), "rpo_h", "greater than 0")


def test_impossible_rpo_and_rto(tmp_path):
    assert_one_line_error(piop("run", tiny_config(tmp_path, rpo_h=0.001)), "rpo_h", "impossible")
    assert_one_line_error(piop("run", tiny_config(tmp_path, rto_h=0.001)), "rto_h", "impossible")


def test_unknown_policy(tmp_path):
    assert_one_line_error(piop("run", tiny_config(tmp_path, policies=[{"policy": "yolo"}])), "policies.0.policy", "yolo", "fixed")


def test_unknown_policy_param(tmp_path):
    assert_one_line_error(
        piop("run", tiny_config(tmp_path, policies=[{"policy": "fixed", "params": {"speed": 1}}])), "policies.0.params", "speed"
    )


def test_missing_file(tmp_path):
    assert_one_line_error(piop("run", tmp_path / "nope.yaml"), "nope.yaml", "no such file")


def test_malformed_yaml(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("name: x\nfleet: [\n")
    assert_one_line_error(piop("run", p), "bad.yaml", "malformed YAML")


def test_run_writes_results_and_json(tmp_path):
    cfg = tiny_config(tmp_path)
    proc = piop("run", cfg, "--out", tmp_path / "res", "--json", "-q")
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    assert {r["policy"] for r in rows} == {"fixed", "reactive", "predictive-seasonal_naive"}
    run_dir = tmp_path / "res" / "tiny" / "fixed-s1"
    for name in (
        "config.yaml",
        "summary.json",
        "fleet.parquet",
        "volumes.parquet",
        "series.parquet",
        "jobs.parquet",
        "decisions.parquet",
        "timeline.png",
    ):
        assert (run_dir / name).is_file(), name
    assert (run_dir / "timeline.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["fleet"]["rpo_compliance_pct"] == pytest.approx(rows[0]["rpo_compliance_pct"])
    assert not list((tmp_path / "res" / "tiny").glob(".*")), "no temporary folders left behind"

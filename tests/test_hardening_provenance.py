"""Every results file that describes a folder says where it came from: the command line,
piop's version and commit, the time (`experiments.provenance`)."""

from __future__ import annotations

import json

import yaml
from cli_helpers import piop


def test_runs_comparisons_and_studies_record_their_provenance(tmp_path):
    cfg = {
        "name": "prov",
        "duration_h": 2,
        "seed": 1,
        "fleet": [{"workload": "constant", "count": 2, "params": {"read_iops": 500, "write_iops": 100, "read_mbps": 10, "write_mbps": 5}}],
        "policies": [{"policy": "fixed"}, {"policy": "reactive"}],
    }
    path = tmp_path / "prov.yaml"
    path.write_text(yaml.safe_dump(cfg))
    out = tmp_path / "r"
    proc = piop("compare", path, "--out", out, "-q")
    assert proc.returncode == 0, proc.stderr
    run = json.loads((out / "prov" / "fixed-s1" / "summary.json").read_text())["meta"]["provenance"]
    comp = json.loads((out / "prov" / "compare.json").read_text())["provenance"]
    for prov in (run, comp):
        assert prov["argv"][:2] == ["piop", "compare"] and str(path) in prov["argv"]
        assert prov["time"] and "piop_version" in prov
    spec = tmp_path / "tune.yaml"
    spec.write_text(
        yaml.safe_dump({"base": str(path), "policy": "fixed", "n_trials": 2, "params": {"params.stagger_s": {"low": 0, "high": 60}}})
    )
    proc = piop("tune", spec, "--out", out, "-q")
    assert proc.returncode == 0, proc.stderr
    for name in ("summary.json", "best.json"):
        prov = json.loads((out / "prov" / "tune" / "prov-fixed" / name).read_text())["provenance"]
        assert prov["argv"][:2] == ["piop", "tune"], name

"""A third-party policy, installed for real, found through its entry point and run by `piop`.

`examples/piop-example-policy` is a separate package: pip builds and installs it into a
temporary folder (not the project's environment), and `piop run` sees it only through
`PYTHONPATH`, by the `piop.schedulers` entry point its metadata declares.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pandas as pd
import pytest
from cli_helpers import assert_one_line_error

EXAMPLE = "examples/piop-example-policy"
CONFIG = "every_n_hours.yaml"


@pytest.fixture(scope="module")
def installed(root, tmp_path_factory):
    """(the folder the example package was installed into, a copy of its source folder)."""
    base = tmp_path_factory.mktemp("plugin")
    src = base / "src"
    shutil.copytree(
        root / EXAMPLE, src, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__")
    )  # builds write into the source
    target = base / "site"
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--no-deps",
        "--no-build-isolation",
        "--no-index",
        "--disable-pip-version-check",
        "-q",
        "--target",
        str(target),
        str(src),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    eps = list(target.glob("piop_example_policy-*.dist-info/entry_points.txt"))
    assert eps and "[piop.schedulers]" in eps[0].read_text(), "the installed metadata declares no piop.schedulers entry point"
    return target, src


@pytest.mark.slow
def test_unknown_without_the_package(installed, run_piop, tmp_path):
    from schedulers.base import SCHEDULERS

    if "every_n_hours" in SCHEDULERS:
        pytest.skip("the example package is installed in this environment: the policy is known without PYTHONPATH")
    _, src = installed
    proc = run_piop("run", src / CONFIG, "--duration-h", "1", "--out", tmp_path, "-q")
    assert_one_line_error(proc, CONFIG, "policies.0.policy", "every_n_hours")


@pytest.mark.slow
def test_entry_point_policy_runs(installed, run_piop, tmp_path):
    target, src = installed
    out = tmp_path / "res"
    proc = run_piop(
        "run", src / CONFIG, "--duration-h", "6", "--policy", "every_n_hours", "--out", out, "--json", "-q", env={"PYTHONPATH": target}
    )
    assert proc.returncode == 0, proc.stderr
    (row,) = json.loads(proc.stdout)
    assert row["policy"] == "every_n_hours"
    assert 0.0 <= row["rpo_compliance_pct"] <= 100.0 and 0.0 <= row["rto_compliance_pct"] <= 100.0

    run_dir = out / "every-n-hours" / "every_n_hours-s1"
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["fleet"]["rpo_compliance_pct"] == pytest.approx(row["rpo_compliance_pct"])
    decisions = pd.read_parquet(run_dir / "decisions.parquet")
    assert decisions["accepted"].all()
    assert decisions["reason"].str.startswith("every_n_hours: ").all(), decisions["reason"].unique()
    # both of its rules fired: fulls for the volumes whose full is older than 48 h, then incrementals every 2 h
    assert set(decisions["kind"]) == {"full", "incremental"}
    assert (decisions["kind"] == "incremental").sum() >= 4
    # its summary() reached summary.json, and agrees with the decisions
    policy_summary = summary["meta"]["policy_summary"]
    assert policy_summary["started_full"] == (decisions["kind"] == "full").sum()
    assert policy_summary["started_incremental"] == (decisions["kind"] == "incremental").sum()

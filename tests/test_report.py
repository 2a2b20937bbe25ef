"""`piop report`: every section from a small results set, forecast section skipped gracefully."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from cli_helpers import ROOT

from common.errors import UserError
from experiments.compare import compare
from experiments.config import parse_config
from experiments.report import build_report, forecast_plots, load_forecast, load_runs
from experiments.tune import tune

PNG = b"\x89PNG\r\n\x1a\n"


def piop(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "experiments", *map(str, args)], capture_output=True, text=True, cwd=cwd or ROOT)


CFG = {
    "name": "rep",
    "seeds": [1, 2],
    "duration_h": 2,
    "fleet": [
        {"workload": "database", "count": 2, "used_gb": 100, "name": "db-"},
        {"workload": "vm", "count": 1, "used_gb": 100, "name": "vm-"},
    ],
    "policies": [{"policy": "fixed"}, {"policy": "reactive"}],
}


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("report")
    out = tmp / "res"
    compare(parse_config(CFG), out)
    (tmp / "base.yaml").write_text(yaml.safe_dump(CFG))
    spec = {
        "base": "base.yaml",
        "policy": "reactive",
        "n_trials": 2,
        "seeds": [1],
        "duration_h": 2,
        "sampler": "random",
        "params": {"params.backoff": {"low": 0.1, "high": 0.9}},
    }
    (tmp / "tune.yaml").write_text(yaml.safe_dump(spec))
    tune(tmp / "tune.yaml", out_root=out)
    return out / "rep"


def test_report_sections_and_images(results, tmp_path):
    proc = piop("report", results, "--out", tmp_path / "report", "--html", "--json")
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    path = Path(info["report"])
    text = path.read_text()
    for heading in (
        "Policy comparison",
        "Paired differences against `fixed`",
        "Per workload kind",
        "Production impact distribution",
        "Restore-point age and backup jobs",
        "Forecast vs actual",
        "Tuning",
        "Study `rep-reactive`",
        "Decision log",
    ):
        assert heading in text, heading
    assert "section skipped" in text and "forecast" in info["skipped"]  # no forecast series in these runs
    assert {"comparison", "impact", "timelines", "decisions", "tuning:rep-reactive"} <= set(info["sections"])
    images = [Path(p) for p in info["images"]]
    assert {"comparison.png", "paired.png", "impact_cdf.png", "timeline_fixed.png", "timeline_reactive.png", "pareto_rep-reactive.png"} <= {
        p.name for p in images
    }
    for p in images:
        assert p.parent == path.parent and p.read_bytes()[:8] == PNG, p  # images beside the report
        assert f"]({p.name})" in text
    html = Path(info["html"]).read_text()
    assert "<table>" in html and "comparison.png" in html
    # the table rows carry the means of the run summaries
    runs = pd.read_parquet(results / "compare.parquet")
    mean = runs[runs["policy"] == "fixed"]["rpo_compliance_pct"].mean()
    assert f"| fixed | 2 | {mean:.2f}" in text


def test_forecast_plot_when_runs_saved_forecasts(results, tmp_path):
    run = results / "reactive-s1"
    s = pd.read_parquet(run / "series.parquet")
    s = s[s["t"] % 300 == 0]
    fc = pd.DataFrame({"t": s["t"], "volume": s["volume"], "mbps_mean": s["prod_mbps"] * 0.9, "mbps_upper": s["prod_mbps"] * 1.3})
    fc.to_parquet(run / "forecast.parquet")
    try:
        rs = load_runs(results)
        got = load_forecast(next(r for r in rs.runs if r.name == "reactive-s1"))
        assert set(got.columns) >= {"t", "volume", "quantity", "mean", "upper", "actual"}
        assert got["actual"].notna().all()  # filled from series.parquet
        assert load_forecast(next(r for r in rs.runs if r.name == "fixed-s1")) is None
        made = forecast_plots(rs, tmp_path)
        assert [p for p, _ in made] == ["reactive"] and made[0][1].read_bytes()[:8] == PNG
    finally:
        (run / "forecast.parquet").unlink()


def test_report_bad_input(results, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(UserError, match="no finished runs"):
        build_report(empty)
    with pytest.raises(UserError, match="results/<experiment>"):
        load_runs(results.parent)
    with pytest.raises(UserError, match="no such folder"):
        build_report(tmp_path / "missing")

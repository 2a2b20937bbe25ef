"""What a new user meets in the report, the figures and the command line: units and scale
against summary.json, descriptions of what actually ran, progress, figures that respect
bounds and keep their legends off the data, provenance, and the conveniences (`--version`,
`piop list`, the config reference, completion, plain flags, group-readable results)."""

from __future__ import annotations

import json
import math
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import matplotlib.figure
import pandas as pd
import pytest
import yaml
from cli_helpers import ROOT, assert_one_line_error, piop
from matplotlib.backends.backend_agg import FigureCanvasAgg

CFG = {
    "name": "hard",
    "description": "A mixed fleet backed up for 7 days (the config's own words).",
    "seeds": [1, 2],
    "duration_h": 168,
    "rpo_h": 1,
    "fleet": [
        {"workload": "database", "count": 2, "used_gb": 100, "name": "db-"},
        {"workload": "vm", "count": 2, "used_gb": 100, "name": "vm-"},
        {"workload": "fileserver", "count": 1, "used_gb": 200, "name": "fs-"},
    ],
    "policies": [{"policy": "fixed"}, {"policy": "reactive"}],
}


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> dict:
    """`piop compare` (3 h instead of the config's 168, 2 seeds) and `piop report` of it, as a user runs them."""
    tmp = tmp_path_factory.mktemp("hard")
    cfg = tmp / "hard.yaml"
    cfg.write_text(yaml.safe_dump(CFG))
    compare = piop("compare", cfg, "--duration-h", 3, "--out", tmp / "res", "-q")
    assert compare.returncode == 0, compare.stderr
    root = tmp / "res" / "hard"
    report = piop("report", root)
    assert report.returncode == 0, report.stderr
    return {"root": root, "compare": compare, "report": report, "md": (root / "report" / "report.md").read_text()}


def md_rows(md: str, after: str) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the first Markdown table after the line containing `after`."""
    lines = md[md.index(after) :].splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    table = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        table.append([c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]])
    return table[0], table[2:]


def first_number(cell: str) -> float:
    return float(re.match(r"[-+]?\d+(\.\d+)?", cell).group(0))


def fleet_means(root: Path, key: str) -> dict[str, float]:
    """Per policy: the mean over seeds of `fleet[key]` as the run folders' summary.json hold it."""
    vals: dict[str, list[float]] = {}
    for f in root.glob("*-s*/summary.json"):
        s = json.loads(f.read_text())
        vals.setdefault(s["meta"]["policy"], []).append(float(s["fleet"][key]))
    return {p: sum(v) / len(v) for p, v in vals.items()}


# ----------------------------------------------------------------------------- 1. units, scale, description, zero spread


@pytest.mark.parametrize(
    "label, key, scale, unit",
    [
        ("mean production impact", "impact_io_mean", 100.0, "% latency increase"),
        ("I/O above impact threshold", "io_over_threshold_pct", 1.0, "% of production I/O"),
        ("RPO compliance", "rpo_compliance_pct", 1.0, "% of volume-time"),
        ("backup data moved", "backup_tb", 1.0, "TB"),
    ],
)
def test_report_numbers_match_summary_json_in_their_unit(made, label, key, scale, unit):
    header, rows = md_rows(made["md"], "## 1. Policy comparison")
    col = next(i for i, h in enumerate(header) if h.startswith(label))
    assert unit in header[col], header[col]
    expected = fleet_means(made["root"], key)
    assert any(v > 0 for v in expected.values())
    for row in rows:
        shown = first_number(row[col])
        decimals = len(row[col].split()[0].split(".")[1]) if "." in row[col].split()[0] else 0
        assert shown == pytest.approx(expected[row[0]] * scale, abs=0.51 * 10**-decimals), (row[0], row[col])


def test_terminal_table_shows_impact_in_percent(made):
    out = made["compare"].stdout
    header = next(line for line in out.splitlines() if "policy" in line and "┃" in line)
    cols = [c.strip() for c in header.split("┃")[1:-1]]
    assert "impact mean %" in cols, cols
    row = next(line for line in out.splitlines() if line.startswith("│ fixed"))
    cells = [c.strip() for c in row.split("│")[1:-1]]
    shown = first_number(cells[cols.index("impact mean %")])
    assert shown == pytest.approx(fleet_means(made["root"], "impact_io_mean")["fixed"] * 100, abs=0.006)


def test_report_describes_what_ran_not_the_config_text(made):
    head = made["md"].split("## 1.")[0]
    assert "7 days" not in head  # the config's description speaks of its own 168 h
    assert "3 h per run" in head
    assert "2 policies × 2 seeds" in head
    assert "5 volumes: 2 database, 1 fileserver, 2 vm" in head


def fabricate(root: Path, fleet: dict[tuple[str, int], dict]) -> Path:
    """Finished run folders as runs write them (summary.json, config.yaml), with chosen metrics."""
    policies = sorted({p for p, _ in fleet}, key=list(dict.fromkeys(p for p, _ in fleet)).index)
    for (policy, seed), metrics in fleet.items():
        d = root / f"{policy}-s{seed}"
        d.mkdir(parents=True)
        cfg = {**CFG, "name": root.name, "duration_h": 24.0, "policies": [{"policy": p} for p in policies]}
        (d / "config.yaml").write_text(yaml.safe_dump(cfg))
        meta = {"experiment": root.name, "run": d.name, "policy": policy, "seed": seed}
        (d / "summary.json").write_text(json.dumps({"fleet": metrics, "meta": meta}))
    return root


def test_paired_difference_without_spread_has_no_p_value(tmp_path):
    base = {"rpo_compliance_pct": 100.0, "impact_io_mean": 0.01, "backup_tb": 1.0}
    fleet = {
        ("fixed", 1): {**base, "impact_p99": 0.0},
        ("fixed", 2): {**base, "impact_p99": 0.0, "backup_tb": 1.2},
        ("predictive", 1): {**base, "impact_p99": 0.166},
        ("predictive", 2): {**base, "impact_p99": 0.166, "backup_tb": 1.5},
    }
    root = fabricate(tmp_path / "flat", fleet)
    proc = piop("report", root)
    assert proc.returncode == 0, proc.stderr
    header, rows = md_rows((root / "report" / "report.md").read_text(), "### Paired differences")
    row = dict(zip(header, next(r for r in rows if r[0] == "predictive" and r[1].startswith("p99 production impact"))))
    assert row["p (paired t)"] == "–" and row["significant"] == "no spread", row
    assert row["difference"] == "+16.6", row  # percentage points, as the table's unit says
    header1, rows1 = md_rows((root / "report" / "report.md").read_text(), "## 1. Policy comparison")
    p99 = next(i for i, h in enumerate(header1) if h.startswith("p99 production impact (% latency increase"))
    assert [r[p99] for r in rows1] == ["0.00 ± 0.00", "16.60 ± 0.00"]
    backup = dict(zip(header, next(r for r in rows if r[0] == "predictive" and r[1].startswith("backup data moved"))))
    assert backup["p (paired t)"] not in ("–", "0"), backup  # a spread: a real test


def test_one_seed_one_policy_in_the_singular(tmp_path):
    root = fabricate(tmp_path / "single", {("fixed", 7): {"rpo_compliance_pct": 99.0, "impact_io_mean": 0.02}})
    assert piop("report", root).returncode == 0
    text = (root / "report" / "report.md").read_text()
    assert "1 run (1 policy × 1 seed: 7)" in text and "24 h per run" in text
    quiet = piop("report", root, "-q")  # and -q draws no bar
    assert quiet.returncode == 0 and "━" not in quiet.stderr and "%" not in quiet.stderr, quiet.stderr


# ----------------------------------------------------------------------------- 7. progress


def test_report_shows_progress_per_section(made, tmp_path):
    assert "report:" in made["report"].stderr and "100" in made["report"].stderr
    from experiments.report import build_report

    seen = []
    build_report(made["root"], tmp_path / "rep", progress=lambda done, total, what: seen.append((done, total, what)))
    whats = [w for _, _, w in seen]
    for part in ("comparison figures and tables", "impact distribution", "timelines", "decision log", "writing report.md"):
        assert part in whats, whats
    assert seen[-1][0] == seen[-1][1] and all(d <= t for d, t, _ in seen)


def test_backtest_shows_a_bar_per_forecaster(tmp_path):
    proc = piop(
        "forecast",
        "backtest",
        "--synthetic",
        "database",
        "--count",
        "1",
        "--days",
        "9",
        "--origins",
        "3",
        "--train-days",
        "7",
        "--horizon-h",
        "24",
        "-f",
        "naive",
        "--out",
        tmp_path,
        "--plot-volumes",
        "0",
    )
    assert proc.returncode == 0, proc.stderr
    bars = [line for line in proc.stderr.splitlines() if "origins" in line]
    assert any(line.lstrip().startswith("naive ") and "100" in line for line in bars), proc.stderr
    assert any(line.lstrip().startswith("seasonal_naive ") and "100" in line for line in bars), proc.stderr
    summary = json.loads(next(tmp_path.glob("*/summary.json")).read_text())
    assert summary["provenance"]["argv"][:3] == ["piop", "forecast", "backtest"]


# ----------------------------------------------------------------------------- 9. figures


@pytest.fixture
def saved(monkeypatch) -> list:
    """Every matplotlib figure saved while the test runs (the real savefig still writes it)."""
    figs: list = []
    original = matplotlib.figure.Figure.savefig

    def spy(self, *args, **kwargs):
        figs.append(self)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", spy)
    return figs


def test_error_bars_respect_bounds_and_labels_sit_above_caps(made):
    from experiments.report import comparison, comparison_bars, load_runs

    comp = comparison(load_runs(made["root"]))
    fig = comparison_bars(comp)
    crossed = False
    for ax in fig.axes:
        for cont in ax.containers:
            err = getattr(cont, "errorbar", None)
            if err is None:
                continue
            segs = err.lines[2][0].get_segments()
            tops = {round(float(s[0][0]), 6): max(s[0][1], s[1][1]) for s in segs}
            assert all(min(s[0][1], s[1][1]) >= -1e-9 for s in segs), ax.get_title()  # nothing here can be negative
            for t in ax.texts:
                x, y = t.xy
                assert y >= tops.get(round(float(x), 6), -math.inf) - 1e-9, (ax.get_title(), t.get_text())
            crossed |= any(abs(s[0][1] - s[1][1]) > 0 for s in segs)
    assert crossed  # the run has intervals to draw


def test_run_timeline_keeps_legend_off_the_data_and_volumes_in_id_order(made, saved, tmp_path):
    from experiments.plots import timeline_png

    run = made["root"] / "fixed-s1"
    vols = pd.read_parquet(run / "volumes.parquet")
    timeline_png(pd.read_parquet(run / "series.parquet"), pd.read_parquet(run / "jobs.parquet"), vols, tmp_path / "t.png", "t")
    fig = saved[-1]
    renderer = FigureCanvasAgg(fig).get_renderer()
    panels = [ax for ax in fig.axes if ax.get_title(loc="left")]
    ids = [ax.get_title(loc="left").split()[0] for ax in panels]
    natural = sorted(ids, key=lambda s: [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", s)])
    assert ids == natural and len(ids) >= 3
    for ax in panels:
        legend = ax.get_legend()
        assert legend.get_window_extent(renderer).x0 >= ax.get_window_extent(renderer).x1 - 1  # right of the data: RPO line visible
        title = ax.get_title(loc="left")
        want = 100 * float(vols.loc[vols["volume"] == title.split()[0], "impact_io_mean"].iloc[0])
        assert "%" in title and f"{want:.2f}" in title, title


def test_backtest_figure_has_a_title_and_units(saved, tmp_path):
    from typer.testing import CliRunner

    from experiments.cli import app

    res = CliRunner().invoke(
        app,
        [
            "forecast",
            "backtest",
            "--synthetic",
            "vm",
            "--count",
            "1",
            "--days",
            "9",
            "--origins",
            "2",
            "--train-days",
            "7",
            "--horizon-h",
            "12",
            "-f",
            "naive",
            "--out",
            str(tmp_path),
            "-q",
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    fig = saved[-1]
    assert fig._suptitle is not None and "forecast" in fig._suptitle.get_text()
    assert all(ax.get_ylabel() == "MB/s" for ax in fig.axes if ax.get_title(loc="left"))


def test_load_spans_locate_what_the_trace_did_not_measure():
    from experiments.load_spans import HELD, LOOPED, ZEROS, load_spans

    src = {
        "source": "trace",
        "family": "t",
        "span_s": 1000.0,
        "past_end": "loop",
        "volumes": 1,
        "volume_ids": ["a"],
        "head_fill_s": 50.0,
        "tail_fill_s": 20.0,
        "time_scale": 1.0,
    }
    spans = load_spans({"sources": [{**src, "tick_s": 10.0}], "offset_ticks": 60}, 2000.0)  # the run starts 600 s in
    got = sorted((s.kind, round(s.start_s), round(s.end_s)) for s in spans)
    assert (LOOPED, 400, 2000) in got  # the trace ends 400 s into the run
    assert (HELD, 380, 400) in got and (HELD, 400, 450) in got and (HELD, 1380, 1400) in got  # its fills, each loop
    zeros = load_spans({**src, "past_end": "zeros", "volumes": 2, "volume_ids": ["a", "b"]}, 3000.0)
    assert [(s.kind, s.start_s) for s in zeros] == [(ZEROS, 1000.0)]  # fills of 2 volumes are totals: not located
    assert load_spans({"sources": [{"kind": "vm", "generator": "VmWorkload"}]}, 100.0) == []


def test_looped_trace_span_is_shaded_in_the_report(traces_dir, tmp_path, saved):
    cfg = {
        "name": "loop",
        "seed": 1,
        "duration_h": 30,
        "history_h": 696,
        "rpo_h": 6,
        "fleet": [
            {
                "trace": "bitbrains",
                "path": str(traces_dir / "bitbrains_gwa_t12_rnd"),
                "device": "vdisk",
                "used_gb": 50,
                "params": {"top": 1, "months": ["2013-7"]},
            }
        ],
        "policies": [{"policy": "fixed"}],
    }
    (tmp_path / "loop.yaml").write_text(yaml.safe_dump(cfg))
    proc = piop("run", tmp_path / "loop.yaml", "--out", tmp_path / "res", "-q")
    assert proc.returncode == 0, proc.stderr
    root = tmp_path / "res" / "loop"
    meta = json.loads((root / "fixed-s1" / "summary.json").read_text())["meta"]["load"]
    src = meta["sources"][0]
    end_h = (src["span_s"] - meta["offset_ticks"] * src["tick_s"]) / 3600.0
    assert 0 < end_h < 30
    from experiments.report import build_report

    build_report(root, tmp_path / "rep", timeline_days=None)
    timeline = next(f for f in saved if "backups over production load" in (f._suptitle.get_text() if f._suptitle else ""))
    shaded = [p for ax in timeline.axes for p in ax.patches if p.get_label() == "trace looped (past its end)"]
    assert shaded
    x0, x1 = shaded[0].get_x(), shaded[0].get_x() + shaded[0].get_width()
    assert x0 == pytest.approx(end_h, abs=0.01) and x1 == pytest.approx(30, abs=0.2)


# ----------------------------------------------------------------------------- 12. provenance


def test_results_and_report_name_the_command_that_made_them(made):
    prov = json.loads((made["root"] / "compare.json").read_text())["provenance"]
    assert prov["argv"][:2] == ["piop", "compare"] and "--duration-h" in prov["argv"]
    for key in ("piop_version", "time", "cwd"):
        assert prov[key]
    for run in made["root"].glob("*-s*"):
        assert json.loads((run / "summary.json").read_text())["meta"]["provenance"]["argv"][1] == "compare"
    assert "**made by**: `piop compare " in made["md"] and "--duration-h 3" in made["md"]
    assert "This report: `piop report " in made["md"]


# ----------------------------------------------------------------------------- 13. conveniences


def test_version_flag():
    from importlib.metadata import version

    proc = piop("--version")
    assert proc.returncode == 0 and proc.stdout.strip() == f"piop {version('piop')}"


def test_list_is_built_from_the_registries():
    import forecasters  # noqa: F401
    import schedulers  # noqa: F401
    import workloads.synthetic  # noqa: F401
    import workloads.traces  # noqa: F401
    from forecasters.base import FORECASTERS
    from schedulers.base import SCHEDULERS
    from sim.devices import DEVICE_CLASSES
    from workloads.registry import SYNTHETIC, TRACES

    proc = piop("list", "--json")
    assert proc.returncode == 0, proc.stderr
    cat = json.loads(proc.stdout)
    for key, names in (
        ("policies", SCHEDULERS.names()),
        ("forecasters", FORECASTERS.names()),
        ("workloads", SYNTHETIC.names()),
        ("trace_families", TRACES.names()),
        ("device_classes", list(DEVICE_CLASSES)),
    ):
        assert [r["name"] for r in cat[key]] == names, key
    param = lambda sec, name, p: next(x for x in next(r for r in cat[sec] if r["name"] == name)["params"] if x["name"] == p)  # noqa: E731
    assert param("policies", "fixed", "full_every_h")["default"] == 168.0
    assert param("policies", "reactive", "backoff")["default"] == 0.5
    assert param("forecasters", "seasonal_naive", "season")["default"] == "daily"
    assert param("forecasters", "ewma", "quantile")["default"] == 0.9  # passed on through **kw
    assert param("workloads", "database", "scale")["default"] == 1.0
    assert param("trace_families", "bitbrains", "months")["required"] is False
    assert param("device_classes", "ssd", "max_iops")["default"] == DEVICE_CLASSES["ssd"].max_iops
    text = piop("list", "policy", "devices")
    assert text.returncode == 0 and "fixed" in text.stdout and "full_every_h" in text.stdout and "vdisk" in text.stdout
    assert "forecasters" not in text.stdout
    assert_one_line_error(piop("list", "nonsense"), "unknown section")


def test_config_reference_is_the_generated_one():
    from experiments.config_reference import config_reference

    committed = (ROOT / "docs" / "config-reference.md").read_text()
    assert committed == config_reference(), "regenerate: piop list --config-reference > docs/config-reference.md"
    assert piop("list", "--config-reference").stdout == committed
    for key in ("duration_h", "history_h", "fleet[]", "ingest_mbps", "forecaster_params"):
        assert key in committed
    assert "docs/config-reference.md" in (ROOT / "README.md").read_text()


def test_shell_completion():
    shown = piop("--show-completion", "bash")
    assert shown.returncode == 0 and "_PIOP_COMPLETE" in shown.stdout
    env = {**os.environ, "_PIOP_COMPLETE": "complete_bash", "COMP_WORDS": "piop rep", "COMP_CWORD": "1"}
    done = subprocess.run([sys.executable, "-m", "experiments"], capture_output=True, text=True, cwd=ROOT, env=env)
    assert done.stdout.split() == ["report"], done.stdout + done.stderr


@pytest.mark.parametrize("command", [["run"], ["compare"], ["report"], ["tune"], ["list"], ["forecast", "backtest"], ["trace", "info"], []])
def test_flags_shown_without_a_type(command):
    proc = piop(*command, "--help")
    assert proc.returncode == 0
    assert "<bool>" not in proc.stdout, proc.stdout
    assert "--help" in proc.stdout


def test_results_are_readable_by_the_group(made):
    paths = [made["root"], *made["root"].rglob("*")]
    for p in paths:
        mode = stat.S_IMODE(p.stat().st_mode)
        need = 0o050 if p.is_dir() else 0o040
        assert mode & need == need, f"{p}: {oct(mode)}"

"""The `piop` command line: run experiments, benchmark, replay traces, forecast, compare."""

from __future__ import annotations

from pathlib import Path

import typer

from common.errors import UserError
from experiments.cligroup import PlainFlagsGroup
from experiments.clitools import console, print_json, print_table, progress_bar, user_errors
from experiments.metrics import metric, short_name
from experiments.provenance import version

app = typer.Typer(cls=PlainFlagsGroup, add_completion=True, pretty_exceptions_enable=False, no_args_is_help=True, help=__doc__)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"piop {version()}")
        raise typer.Exit()


@app.callback()
def _root(
    show_version: bool = typer.Option(False, "--version", callback=_print_version, is_eager=True, help="print piop's version and exit"),
) -> None:
    pass


# every metric shown in its display unit (`experiments.metrics`), as in compare and the report
SUMMARY_COLUMNS = (
    [("policy", "policy", "{}"), ("seed", "seed", "{}")]
    + [
        (k, short_name(k), metric(k).fmt)
        for k in (
            "rpo_compliance_pct",
            "rpo_violations",
            "rto_compliance_pct",
            "impact_io_mean",
            "impact_p99",
            "io_over_threshold_pct",
            "backup_tb",
            "storage_cost",
        )
    ]
    + [("sim_wall_s", "wall s", "{:.1f}")]
)

BENCH_COLUMNS = [
    ("volumes", "volumes", "{}"),
    ("days", "days", "{:g}"),
    ("vol_ticks_per_s", "vol-ticks/s", "{:,.0f}"),
    ("naive_vol_ticks_per_s", "naive vol-ticks/s", "{:,.0f}"),
    ("speedup", "speed-up", "{:.1f}x"),
    ("events_per_tick", "events/tick", "{:.2f}"),
    ("naive_events_per_tick", "naive events/tick", "{:.0f}"),
    ("peak_rss_mb", "peak RSS MB", "{:.0f}"),
]


@app.command()
@user_errors
def run(
    config: Path = typer.Argument(..., help="experiment YAML config"),
    policy: list[str] | None = typer.Option(None, "--policy", "-p", help="run only these policies (labels)"),
    seed: list[int] | None = typer.Option(None, "--seed", "-s", help="seeds (default: the config's)"),
    duration_h: float | None = typer.Option(None, help="override the simulated duration (hours)"),
    out: Path = typer.Option(Path("results"), help="results root folder"),
    as_json: bool = typer.Option(False, "--json", help="print the summary as JSON on stdout"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress bar"),
):
    """Run every policy of CONFIG (each seed) and write results/<experiment>/<run>/."""
    from experiments.config import load_config
    from experiments.runner import plans, run_plans

    cfg = load_config(config, {"duration_h": duration_h})
    todo = plans(cfg, policy, seed)
    with progress_bar() as bar:

        def progress_for(plan):
            task = bar.add_task(f"{plan.run_id:<24}", total=1.0, visible=not quiet)
            return lambda f: bar.update(task, completed=f)

        rows = run_plans(todo, out, progress_for)
    if as_json:
        print_json(rows)
    else:
        print_table(rows, SUMMARY_COLUMNS, title=f"{cfg.name}: {cfg.duration_h:g} h, {len(cfg.fleet)} volume groups")
        console.print(f"results: {out / cfg.name}")
        _say_saturation(out / cfg.name, [p.run_id for p in todo])


def _say_saturation(folder: Path, runs: list[str]) -> None:
    """A line per run whose policy found the tiers saturated (`summary.json`: policy_summary.saturation)."""
    from experiments.saturation import saturation_lines

    for line in saturation_lines(folder, runs):
        console.print(f"[yellow]{line}[/yellow]", highlight=False)


@app.command()
@user_errors
def bench(
    volumes: str = typer.Option("10,100,1000", help="fleet sizes, comma separated"),
    days: float = typer.Option(7.0, help="simulated days per fleet"),
    naive_hours: float = typer.Option(6.0, help="simulated hours for the one-process-per-volume baseline"),
    workload: str = typer.Option("database", help="synthetic workload for the fleet"),
    as_json: bool = typer.Option(False, "--json", help="print the figures as JSON on stdout"),
):
    """Simulator throughput: volume-ticks/s vectorised vs one SimPy process per volume."""
    from experiments.bench import run_bench

    try:
        sizes = [int(v) for v in volumes.split(",") if v.strip()]
    except ValueError:
        raise UserError(f"--volumes: expected comma-separated integers, got {volumes!r}") from None
    rows = run_bench(sizes, days, naive_hours, workload, log=None if as_json else console.print)
    if as_json:
        print_json(rows)
    else:
        print_table(rows, BENCH_COLUMNS, title="simulator benchmark (fixed policy, 10 s ticks)")


@app.command()
@user_errors
def compare(
    config: Path = typer.Argument(..., help="experiment YAML config"),
    jobs: int = typer.Option(1, "--jobs", "-j", help="worker processes (one run each)"),
    baseline: str | None = typer.Option(None, help="policy label the others are paired against (default: the first)"),
    policy: list[str] | None = typer.Option(None, "--policy", "-p", help="compare only these policies (labels)"),
    seeds: str | None = typer.Option(None, help="seeds, e.g. '1,2,3' or '1-5' (default: the config's seeds)"),
    duration_h: float | None = typer.Option(None, help="override the simulated duration (hours)"),
    name: str | None = typer.Option(None, help="override the experiment name (its results folder)"),
    level: float = typer.Option(0.95, help="confidence level of the intervals"),
    force: bool = typer.Option(False, help="re-run finished runs too"),
    out: Path = typer.Option(Path("results"), help="results root folder"),
    as_json: bool = typer.Option(False, "--json", help="print the comparison as JSON on stdout"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress bar"),
    bound: bool = typer.Option(
        False, "--bound", help="add a lower bound on the impact of any RPO-meeting schedule and each policy's gap to it"
    ),
    bound_fulls: int = typer.Option(
        0, "--bound-fulls", help="completed fulls per volume the bound requires (valid when every policy takes them)"
    ),
    cluster: str | None = typer.Option(
        None,
        "--cluster",
        envvar="PIOP_CLUSTER",
        help="run on the workers of this Dask scheduler (tcp://host:port) instead of local processes; "
        "they must see --out and the traces at the same paths (docs/cluster.md)",
    ),
):
    """Every policy x seed of CONFIG in parallel (resumable): mean and CI per policy, paired differences."""
    from experiments.compare import compare as run_compare
    from experiments.compare import paired_table, parse_seeds, summary_table
    from experiments.config import load_config

    cfg = load_config(config, {"duration_h": duration_h, "name": name})
    seed_list = parse_seeds(seeds)
    bar = progress_bar()
    task = bar.add_task("runs", total=None, visible=not quiet)

    def started(n: int) -> None:  # called once the inputs are checked: errors print without a bar
        bar.update(task, total=max(n, 1), completed=0 if n else 1, description=f"{cfg.name}: {n} runs to do")
        if not quiet:
            bar.start()

    def finished(run_id: str, err: str | None) -> None:
        bar.advance(task)
        if err:
            console.print(f"[red]failed[/red] {run_id}: {err}")

    try:
        comp = run_compare(
            cfg,
            out,
            jobs,
            baseline,
            policy,
            seed_list,
            level,
            force,
            started,
            finished,
            bound=bound,
            bound_fulls=bound_fulls,
            cluster=cluster or None,
        )
    finally:
        if bar.live.is_started:
            bar.stop()
    o = comp.outcome
    if o is not None and not as_json:
        console.print(o.line())
    if as_json:
        print_json(comp.to_json())
    else:
        rows, cols = summary_table(comp)
        n = len(comp.seeds)
        print_table(
            rows, cols, title=f"{cfg.name}: mean ± {level:.0%} CI half-width over {n} seed{'s' if n != 1 else ''} ({cfg.duration_h:g} h)"
        )
        if len(comp.policies) > 1:
            rows, cols = paired_table(comp)
            print_table(rows, cols, title=f"paired by seed: policy - {comp.baseline}")
        if comp.gaps is not None:
            from experiments.bound.gaps import gap_rows

            rows, cols = gap_rows(comp.gaps)
            print_table(rows, cols, title="bound: policy gap = impact / bound, forecast gap = impact / oracle (per seed)")
        console.print(f"results: {out / cfg.name} (compare.json, compare.parquet)")
        _say_saturation(out / cfg.name, [f"{p}-s{s}" for p in comp.policies for s in comp.seeds])
    if o is not None and o.failed:
        first = next(iter(o.failed.items()))
        raise UserError(f"{len(o.failed)} run(s) failed; first: {first[0]}: {first[1]}")


@app.command()
@user_errors
def tune(
    spec: Path = typer.Argument(..., help="tuning YAML (search space, objectives; see experiments/configs/tune.yaml)"),
    trials: int | None = typer.Option(
        None, "--trials", "-n", help="completed trials the study should hold in total (default: the spec's n_trials)"
    ),
    jobs: int = typer.Option(1, "--jobs", "-j", help="worker processes on this machine, all on the same storage"),
    storage: str | None = typer.Option(
        None,
        help="where the study lives (default: the spec's storage, else sqlite:///results/<experiment>/tune/<study>.db): "
        "journal:PATH (Optuna's JournalStorage: several processes of one host, no server), "
        "or an RDB URL, postgresql://USER:PASS@HOST/DB for several machines (pip install piop[postgres])",
    ),
    study: str | None = typer.Option(None, help="study name (default: the spec's, else <experiment>-<policy>)"),
    duration_h: float | None = typer.Option(None, help="override the simulated duration of each trial (hours)"),
    out: Path = typer.Option(Path("results"), help="results root folder"),
    as_json: bool = typer.Option(False, "--json", help="print the front and chosen trial as JSON on stdout"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress bar"),
):
    """Optuna multi-objective study over a policy's thresholds and forecaster settings (resumable)."""
    from experiments.tune import tune as run_tune
    from experiments.tune.tables import IMPROVEMENT_COLUMNS, front_table

    bar = progress_bar()
    task = bar.add_task("trials", total=None, visible=not quiet)

    def progress(done: int, target: int) -> None:  # first called once the spec and storage are checked
        bar.update(task, total=target, completed=min(done, target), description=f"trials {done}/{target}")
        if not quiet and not bar.live.is_started:
            bar.start()

    try:
        outcome = run_tune(spec, trials, jobs, storage, study, duration_h, out, progress)
    finally:
        if bar.live.is_started:
            bar.stop()
    info = outcome.to_json()
    if as_json:
        print_json(info)
        return
    t = outcome.tuning
    chosen = (outcome.chosen or {}).get("number")
    rows, cols = front_table(outcome)
    print_table(rows, cols, title=f"study {t.study}: Pareto front ({info['n_trials']} trials, {info['new_trials']} new; * = chosen)")
    if outcome.improvement:
        print_table(
            outcome.improvement,
            IMPROVEMENT_COLUMNS,
            title=f"{t.policy.label}: tuned (trial {chosen}) vs untuned, {t.base.duration_h:g} h, seeds {t.seeds}",
        )
    if outcome.chosen is None:
        console.print("no trial meets the constraints yet: no config exported (loosen the constraints or run more trials)")
    console.print(
        f"study: {info['storage']} / {t.study}; outputs: {outcome.out_dir}"
        + (f" (best.yaml: {outcome.out_dir / 'best.yaml'})" if outcome.chosen else "")
    )


@app.command()
@user_errors
def report(
    results_dir: Path = typer.Argument(..., help="an experiment's results folder, e.g. results/default"),
    out: Path | None = typer.Option(None, help="report folder (default: RESULTS_DIR/report)"),
    html: bool = typer.Option(False, "--html", help="also write report.html beside report.md"),
    baseline: str | None = typer.Option(None, help="policy label for paired differences (default: compare's, else the first)"),
    level: float = typer.Option(0.95, help="confidence level of the intervals"),
    timeline_days: float = typer.Option(3.0, help="days shown in timelines and forecast plots (0: the whole run)"),
    as_json: bool = typer.Option(False, "--json", help="print what was written as JSON on stdout"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress bar"),
):
    """A self-contained report (Markdown, optionally HTML, images beside it) of RESULTS_DIR."""
    from experiments.report import build_report

    if not 0.0 < level < 1.0:
        raise UserError(f"--level: confidence level must be in (0, 1), not {level}")
    bar = progress_bar()
    task = bar.add_task("report", total=None, visible=not quiet)

    def progress(done: int, total: int, what: str) -> None:  # first called once the arguments are checked
        bar.update(task, total=total, completed=done, description=f"report: {what}")
        if not quiet and not bar.live.is_started:
            bar.start()

    try:
        rep = build_report(results_dir, out, html, baseline, level, timeline_days or None, progress)
    finally:
        if bar.live.is_started:
            bar.stop()
    if as_json:
        print_json(rep.to_json())
    else:
        console.print(f"report: {rep.path}" + (f" and {rep.html}" if rep.html else "") + f" ({len(rep.images)} figures)")
        for k, why in rep.skipped.items():
            console.print(f"  skipped {k}: {why}")


@app.command("list")
@user_errors
def list_names(
    sections: list[str] | None = typer.Argument(
        None, help="policies, forecasters, workloads, trace_families, device_classes (default: all)"
    ),
    as_json: bool = typer.Option(False, "--json", help="print the names and parameters as JSON on stdout"),
    config_reference: bool = typer.Option(False, "--config-reference", help="print the experiment-config reference (Markdown) instead"),
):
    """What a config may name (policies, forecasters, workloads, trace families, device
    classes), with each one's parameters and defaults."""
    if config_reference:
        from experiments.config_reference import config_reference as reference

        typer.echo(reference(), nl=False)
        return
    from experiments.listing import SECTIONS, as_text, catalogue

    chosen: list[str] = []
    for name in sections or list(SECTIONS):
        key = name.replace("-", "_").lower()
        match = [k for k in SECTIONS if k.startswith(key[:5])]  # 'policy', 'trace', 'devices' too
        if not key or not match:
            raise UserError(f"piop list: unknown section {name!r}; known: {', '.join(SECTIONS)}")
        chosen.extend(m for m in match if m not in chosen)
    cat = catalogue(chosen)
    if as_json:
        print_json({k: cat[k] for k in chosen})
    else:
        typer.echo(as_text(cat, chosen))


from experiments.forecast_cli import forecast_app  # noqa: E402
from experiments.trace_cli import trace_app  # noqa: E402
from host import cli as host_cli  # noqa: E402

app.command("record")(host_cli.record)
app.command("calibrate")(host_cli.calibrate)
app.add_typer(host_cli.agent_app, name="agent", help="Run the backup agent on this host (piop agent CONFIG), or show its status.")
app.add_typer(trace_app, name="trace", help="Inspect and convert real I/O traces.")
app.add_typer(forecast_app, name="forecast", help="Backtest forecasters on traces or synthetic fleets.")


def main() -> None:  # pragma: no cover - console script shim
    app()

"""The LSTM forecaster where users meet it, measured per source tree (see bench_lstm.py).

Each case runs in a child process whose imports come from one source tree, with the same
interpreter, so a pristine copy of an earlier version and the working tree are measured
one after the other in the same run, on the same (noisy) machine. Only interfaces both
versions have are used: `LSTMForecaster.fit/predict`, `run_backtest`, `ForecastService`,
`experiments.backtest_io.load_input`.

    python benchmarks/lstm_cases.py --worker sim --tree /tmp/piop-old --sim-hours 24   # one case, JSON
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve()
REPO = HERE.parents[1]
SUMMARY_COLS = ("rel_mbps_1h", "rel_mbps_24h", "rel_mbps_mean_1h", "rel_mbps_mean_6h", "rel_iops_mean_1h", "upper_coverage")
SUMMARY_COLS += ("coverage_within_5pts", "fit_s", "predict_ms")
SIM_PRIOR_H, SIM_STEP_S, SIM_HORIZON, SIM_EVERY_H = 336.0, 300.0, 72, 24.0


def bitbrains_40(traces: str | None, seed: int):
    """The 40 most active Bitbrains VMs of July 2013 at 5-min steps, as one history."""
    from experiments.backtest_io import load_input

    folder = Path(traces) if traces else REPO / ".." / "shared" / "traces"
    history, _, _ = load_input(str(folder / "bitbrains_gwa_t12_rnd" / "2013-7"), None, "auto", 4, None, SIM_STEP_S, None, 40, seed, None)
    return history


def case_predict(seed: int, repeats: int = 30) -> dict:
    """Median latency of one prediction for 1,000 volumes x 72 steps (synthetic load, as bench_lstm)."""
    from bench_lstm import head, synthetic_history, widen

    from forecasters.lstm import LSTMForecaster

    full = synthetic_history(30, 10.0, seed)
    f = LSTMForecaster(seed=seed, threads=2, epochs=1, samples_per_epoch=512)
    f.fit(full)
    wide = widen(head(full, full.n_steps), 1000, seed)
    out = {}
    for horizon in (72, 288):
        f.predict(wide, horizon)
        lat = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            f.predict(wide, horizon)
            lat.append(time.perf_counter() - t0)
        out[f"predict_ms_{horizon}"] = 1e3 * statistics.median(lat)
        out[f"predict_ms_{horizon}_p90"] = 1e3 * sorted(lat)[int(0.9 * (len(lat) - 1))]
    return out


def case_labels(seed: int, repeats: int = 40) -> dict:
    """Median latency of the burst rule's baseline (`thresholds` on a one-day window [288, 1000, 2],
    float64 holding float32 values, as `targets` reads the simulator's histories) and of labelling
    one 1,000-volume x 72-step forecast (`label_forecast`), which every simulated step does."""
    import numpy as np
    from bench_lstm import head, synthetic_history, widen

    from forecasters.classify import label_forecast, thresholds
    from forecasters.series import targets

    h = widen(head(synthetic_history(30, 2.0, seed), 288), 1000, seed)
    window = targets(h)
    mean = np.random.default_rng(seed).lognormal(2.0, 1.5, (1000, 72, 2))
    out = {}
    for name, fn in (("thresholds_ms", lambda: thresholds(window)), ("label_forecast_ms", lambda: label_forecast(h, mean))):
        fn()
        lat = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            lat.append(time.perf_counter() - t0)
        out[name] = 1e3 * statistics.median(lat)
    return out


def case_backtest(traces: str | None, seed: int) -> dict:
    """`piop forecast backtest .../2013-7 --top 40 -f naive,seasonal_naive,lstm` (default settings)."""
    from forecasters.backtest import BacktestConfig, run_backtest

    t0 = time.perf_counter()
    history = bitbrains_40(traces, seed)
    load_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    res = run_backtest(history, ["naive", "seasonal_naive", "lstm"], BacktestConfig())
    wall = time.perf_counter() - t0
    s = res.summary[res.summary.kind == "all"]
    table = {str(r.forecaster): {c: float(r[c]) for c in SUMMARY_COLS if c in s.columns} for _, r in s.iterrows()}
    lstm = res.timing["lstm"]
    return {"load_s": load_s, "backtest_s": wall, "origins": len(res.origins), "lstm_timing": lstm, "summary": table}


def _fits_in(n_updates: int, every: int) -> int:
    """Fits of the service's clock schedule over `n_updates` updates (the first one fits)."""
    return 1 + (n_updates - 1) // every


def case_sim(traces: str | None, seed: int, hours: float) -> dict:
    """The forecasting of the predictive LSTM run of bitbrains.yaml, without the simulator:
    the service sees the 336 h before the run, then one update per step for `hours`."""
    import numpy as np

    from forecasters.service import ForecastService
    from sim.types import LoadHistory

    full = bitbrains_40(traces, seed)
    n_prior = round(SIM_PRIOR_H * 3600 / SIM_STEP_S)
    n_run = round(hours * 3600 / SIM_STEP_S)
    cols = ("iops", "mbps", "cpu_pct", "mem_pct", "net_mbps")

    def part(lo: int, hi: int, t_off: int) -> LoadHistory:
        times = (np.arange(hi - lo) + lo - t_off) * SIM_STEP_S
        return LoadHistory(
            SIM_STEP_S, full.start_epoch + t_off * SIM_STEP_S, times, kinds=full.kinds, **{c: getattr(full, c)[lo:hi] for c in cols}
        )

    svc = ForecastService("lstm", SIM_HORIZON, {}, prior=part(0, n_prior, 0))
    y = full.mbps.astype(np.float64)
    err_m = err_n = 0.0
    update_s, fit_s = [], []
    for n in range(1, n_run + 1):
        h = part(n_prior, n_prior + n, n_prior)
        fits = len(svc.fit_times)
        t0 = time.perf_counter()
        fc = svc.update(h)
        dt = time.perf_counter() - t0
        (fit_s if len(svc.fit_times) > fits else update_s).append(dt)
        o = n_prior + n  # origin row in `full`: accuracy of the mean MB/s over the next hour
        if o + 12 <= full.n_steps:
            norm = np.maximum(y[o - 288 : o].mean(0), 1e-9)
            actual = y[o : o + 12].mean(0)
            err_m += float(np.sum(np.abs(fc.mean[:, :12, 1].mean(1) - actual) / norm))
            err_n += float(np.sum(np.abs(y[o - 288 : o - 276].mean(0) - actual) / norm))
    summ = svc.summary()
    every = round(SIM_EVERY_H * 3600 / SIM_STEP_S)
    n_full = round(192 * 3600 / SIM_STEP_S)
    warm = fit_s[1:]
    est = fit_s[0] + (_fits_in(n_full, every) - 1) * (statistics.mean(warm) if warm else fit_s[0]) + n_full * statistics.mean(update_s)
    return {
        "hours": hours,
        "updates": n_run,
        "forecast_s": sum(update_s) + sum(fit_s),
        "fits": len(fit_s),
        "first_fit_s": fit_s[0],
        "warm_fit_s_mean": statistics.mean(warm) if warm else None,
        "update_ms_mean": 1e3 * statistics.mean(update_s),
        "forecast_s_192h_estimate": est,
        "rel_mae_mean_1h_vs_daily_naive": err_m / err_n if err_n else float("nan"),
        "upper_coverage": summ.get("coverage"),
        "coverage_within_5pts": summ.get("coverage_within_5pts"),
        "served_modes": summ.get("mode"),
    }


def run_in(tree: str, case: str, traces: str | None, seed: int, hours: str) -> dict:
    """One case in a child process importing from `tree` (its stdout's last line is JSON)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(tree).resolve()), str(HERE.parent)])}
    cmd = [sys.executable, str(HERE), "--worker", case, "--tree", tree, "--seed", str(seed), "--sim-hours", hours]
    if traces:
        cmd += ["--traces", traces]
    t0 = time.perf_counter()
    p = subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True, check=False)
    if p.returncode != 0:
        return {"error": p.stderr.strip().splitlines()[-1:] or [f"exit {p.returncode}"], "wall_s": time.perf_counter() - t0}
    return {**json.loads(p.stdout.strip().splitlines()[-1]), "wall_s": time.perf_counter() - t0}


def compare(cases: list[str], trees: list[str], sim_hours: list[str], traces: str | None, seed: int, as_json: bool) -> int:
    hours = sim_hours * len(trees) if len(sim_hours) == 1 else sim_hours
    names = [t if trees.index(t) == i else f"{t}#{i + 1}" for i, t in enumerate(trees)]  # a tree given twice: two columns
    out: dict[str, dict[str, dict]] = {}
    for case in cases:
        for tree, name, h in zip(trees, names, hours, strict=True):
            r = run_in(tree, case, traces, seed, h)
            out.setdefault(case, {})[name] = r
            if not as_json:
                print(f"[{case}] {name}: {json.dumps(r, default=str)}", flush=True)
    if as_json:
        print(json.dumps(out, indent=2, default=str))
    else:
        for case, by_tree in out.items():
            print(f"\n{case}: " + " | ".join(names))
            flat = {t: _flat(r) for t, r in by_tree.items()}
            for key in dict.fromkeys(k for f in flat.values() for k in f):
                print(f"  {key:<48}" + "".join(f"{_show(flat[t].get(key)):>14}" for t in names))
    return 0


def _flat(d: dict, prefix: str = "") -> dict:
    """Nested figures as one level: `summary.lstm.rel_mbps_1h`."""
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        elif not isinstance(v, (list, str)) or k == "error":
            out[f"{prefix}{k}"] = v
    return out


def _show(v) -> str:
    if isinstance(v, float):
        return f"{v:.3f}" if abs(v) < 1000 else f"{v:.0f}"
    return "-" if v is None else str(v)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--worker", required=True, choices=("predict", "labels", "backtest", "sim"))
    ap.add_argument("--tree", default=str(REPO))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--sim-hours", type=float, default=192.0)
    ap.add_argument("--traces", default=None)
    a = ap.parse_args(argv)
    sys.path.insert(0, str(Path(a.tree).resolve()))
    from forecasters.threads import cap_torch_threads

    cap_torch_threads(2, import_torch=True)
    import forecasters  # noqa: F401  (registration)

    if a.worker == "predict":
        r = case_predict(a.seed)
    elif a.worker == "labels":
        r = case_labels(a.seed)
    elif a.worker == "backtest":
        r = case_backtest(a.traces, a.seed)
    else:
        r = case_sim(a.traces, a.seed, a.sim_hours)
    module = "forecasters.classify" if a.worker == "labels" else "forecasters.lstm"
    r[module.split(".")[1] + "_module"] = sys.modules[module].__file__  # which tree's code ran
    print(json.dumps(r, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

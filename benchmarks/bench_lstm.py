"""Benchmark of the global LSTM forecaster on CPU (2 threads).

Figures (with their targets):
- full training: 100 volumes x 30 days of 5-minute data (target < 2 min),
- warm-start retraining after one more day of data (target < 15 s),
- prediction latency for 1,000 volumes in one batch (target < 50 ms; median of repeats),
  at the horizon the experiments ask for (6 h = 72 steps) and at the model's full day.

Load comes from the synthetic generators (database / vm / file server, equal shares)
when `workloads.synthetic` is present, else from a seeded NumPy stand-in.

    python benchmarks/bench_lstm.py            # table
    python benchmarks/bench_lstm.py --json     # JSON on stdout

Where users meet the model (`benchmarks/lstm_cases.py`), each case run in its own process
for every source tree given, so an earlier version is measured in the same run as this one
(a pristine copy: `mkdir /tmp/piop-old && git archive HEAD | tar -x -C /tmp/piop-old`):

- `backtest`: `piop forecast backtest`'s work on the 40 most active Bitbrains VMs (July 2013,
  default origins) with naive, seasonal naive and the LSTM: wall time and accuracy,
- `predict`: prediction latency, 1,000 volumes x 72 steps,
- `labels`: the burst rule's baseline (`thresholds`, one day x 1,000 volumes) and labelling one
  such forecast (`label_forecast`), which every simulated step does,
- `sim`: the forecasting of a predictive run in the shape of experiments/configs/bitbrains.yaml
  (40 VMs, 336 h seen before, one update per 5-min step over 192 h, retrain every 24 h):
  seconds spent, fits, and the served forecasts' accuracy.

    python benchmarks/bench_lstm.py --cases predict,backtest,sim --trees /tmp/piop-old,.
    python benchmarks/bench_lstm.py --cases sim --trees /tmp/piop-old,. --sim-hours 24,192
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sim.types import LoadHistory  # noqa: E402

STEP = 300.0
START = 1704067200.0  # 2024-01-01 00:00 UTC (a Monday)
KINDS = ("database", "vm", "fileserver")


def synthetic_history(n_volumes: int, days: float, seed: int) -> LoadHistory:
    n_steps = int(days * 86400 / STEP)
    try:
        import workloads.synthetic  # noqa: F401  (registration)
        from sim.history import history_from_source
        from workloads.base import FleetLoad
        from workloads.registry import SYNTHETIC

        counts = [n_volumes // 3 + (1 if i < n_volumes % 3 else 0) for i in range(3)]
        sources = [
            SYNTHETIC.create(k, count=c, tick_s=STEP, seed=seed + i, id_prefix=f"{k}-", start_epoch=START)
            for i, (k, c) in enumerate(zip(KINDS, counts, strict=True))
            if c
        ]
        return history_from_source(FleetLoad(sources), STEP, n_steps, start_epoch=START)
    except ImportError:
        rng = np.random.default_rng(seed)
        tod = (np.arange(n_steps) * STEP % 86400) / 86400
        scale = rng.lognormal(2, 1, n_volumes)
        phase = rng.uniform(0, 1, n_volumes)
        mbps = scale * (1.2 + np.sin(2 * np.pi * (tod[:, None] + phase))) * rng.lognormal(0, 0.3, (n_steps, n_volumes))
        mbps = mbps.astype(np.float32)
        z = np.zeros_like(mbps)
        kinds = [KINDS[i % 3] for i in range(n_volumes)]
        return LoadHistory(STEP, START, np.arange(n_steps) * STEP, mbps * 30, mbps, z + 30, z + 50, z + 1, kinds)


def widen(h: LoadHistory, n_volumes: int, seed: int) -> LoadHistory:
    """`n_volumes` columns made of scaled copies of `h`'s volumes."""
    rng = np.random.default_rng(seed)
    idx = np.arange(n_volumes) % h.iops.shape[1]
    f = rng.uniform(0.5, 2.0, n_volumes).astype(np.float32)
    col = lambda a, s=True: np.ascontiguousarray(a[:, idx] * (f if s else 1))  # noqa: E731
    return LoadHistory(
        h.step_s,
        h.start_epoch,
        h.times,
        col(h.iops),
        col(h.mbps),
        col(h.cpu_pct, False),
        col(h.mem_pct, False),
        col(h.net_mbps),
        [h.kinds[i] for i in idx],
    )


def head(h: LoadHistory, n: int) -> LoadHistory:
    return LoadHistory(h.step_s, h.start_epoch, h.times[:n], h.iops[:n], h.mbps[:n], h.cpu_pct[:n], h.mem_pct[:n], h.net_mbps[:n], h.kinds)


def run(
    volumes: int, days: float, predict_volumes: int, repeats: int, seed: int, epochs: int | None, predict_steps: tuple[int, ...] = (72, 288)
) -> dict:
    import torch

    from forecasters.lstm import LSTMForecaster
    from forecasters.threads import cap_torch_threads

    cap_torch_threads(2)
    t0 = time.perf_counter()
    full = synthetic_history(volumes, days + 1, seed)
    gen_s = time.perf_counter() - t0
    n30 = int(days * 86400 / STEP)
    params = {} if epochs is None else {"epochs": epochs}
    f = LSTMForecaster(seed=seed, threads=2, **params)
    train = head(full, n30)
    t0 = time.perf_counter()
    f.fit(train)
    full_s = time.perf_counter() - t0
    first = f.last_fit
    t0 = time.perf_counter()
    f.fit(full)  # one more day: warm start
    warm_s = time.perf_counter() - t0
    warm = f.last_fit

    wide = widen(head(full, min(full.n_steps, int(9 * 86400 / STEP))), predict_volumes, seed)
    latency = {}
    for horizon in predict_steps:
        f.predict(wide, horizon)  # warm-up
        lat = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fc = f.predict(wide, horizon)
            lat.append(time.perf_counter() - t0)
        assert fc.mean.shape == (predict_volumes, horizon, 2)
        latency[horizon] = {"median_ms": 1e3 * statistics.median(lat), "p90_ms": 1e3 * float(np.quantile(lat, 0.9))}
    first_h = predict_steps[0]
    return {
        "torch_threads": torch.get_num_threads(),
        "data_gen_s": gen_s,
        "train_volumes": volumes,
        "train_days": days,
        "full_train_s": full_s,
        "full_train_epochs": first.get("epochs"),
        "full_train_samples": first.get("samples"),
        "warm_retrain_s": warm_s,
        "warm_retrain_epochs": warm.get("epochs"),
        "warm_start": bool(warm.get("warm")),
        "predict_volumes": predict_volumes,
        "predict_ms": {str(h): v for h, v in latency.items()},
        "targets": {"full_train_s": 120.0, "warm_retrain_s": 15.0, "predict_ms": 50.0},
        "met": {
            "full_train": full_s < 120.0,
            "warm_retrain": warm_s < 15.0,
            "predict": latency[first_h]["median_ms"] < 50.0,
        },
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--volumes", type=int, default=100)
    ap.add_argument("--days", type=float, default=30.0)
    ap.add_argument("--predict-volumes", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--epochs", type=int, default=None, help="override the model's full-training epochs")
    ap.add_argument(
        "--predict-steps", default="72,288", help="prediction horizons in 5-min steps; the first one is checked against the target"
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true", help="print JSON instead of a table")
    ap.add_argument(
        "--cases", default="", help="predict,labels,backtest,sim: the user-facing cases (lstm_cases.py) instead of the synthetic figures"
    )
    ap.add_argument("--trees", default=".", help="source trees to measure the cases in, in order (e.g. an old copy, then .)")
    ap.add_argument("--sim-hours", default="192", help="simulated hours of the sim case, one per tree or one for all")
    ap.add_argument("--traces", default=None, help="traces folder (default ../shared/traces from the repository)")
    a = ap.parse_args(argv)
    if a.cases:
        from lstm_cases import compare

        return compare(a.cases.split(","), a.trees.split(","), a.sim_hours.split(","), a.traces, a.seed, a.json)
    r = run(a.volumes, a.days, a.predict_volumes, a.repeats, a.seed, a.epochs, tuple(int(x) for x in a.predict_steps.split(",")))
    if a.json:
        print(json.dumps(r, indent=2))
        return 0
    print(f"LSTM benchmark (CPU, {r['torch_threads']} threads)")
    print(
        f"  full training   {r['train_volumes']} volumes x {r['train_days']:g} days: {r['full_train_s']:7.1f} s  "
        f"({r['full_train_epochs']:g} epochs, target < 120 s)"
    )
    print(f"  warm retraining +1 day:                 {r['warm_retrain_s']:7.1f} s  ({r['warm_retrain_epochs']:g} epochs, target < 15 s)")
    for h, lat in r["predict_ms"].items():
        print(
            f"  prediction      {r['predict_volumes']} volumes x {h:>3} steps:    {lat['median_ms']:7.1f} ms median, "
            f"{lat['p90_ms']:.1f} ms p90 (target < 50 ms)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

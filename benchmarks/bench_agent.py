"""The agent's own cost on this host: CPU at a 10 s period on 10 volumes, and LSTM retraining.

A real agent (the `piop agent` loop, in this process) serves 10 volumes — 10 folders on one
block device, i.e. repeated entries of that device — with the predictive policy and the
seasonal-naive forecaster over a 6 h horizon in 5-minute steps, its history seeded from a
`piop record` store holding 8 days of that device (a synthetic daily rhythm written into a
real store). The tier is a generic command (`true`), so a backup's own work (a child
process) does not count: what is measured is the agent's CPU time (all its threads:
sampling, forecasting, deciding, SQLite, Prometheus) over wall time, in % of one core.
A history step closes every 5 minutes; a short run may see none, so the cost of one
forecast update is measured apart and added at its real rate.

With `--lstm` the same history trains the LSTM forecaster (one thread): the first fit and a
warm retrain, in wall and CPU seconds, and what a daily retrain costs per core on average.

    .venv/bin/python benchmarks/bench_agent.py [--seconds 150] [--volumes 10] [--lstm] [--json]
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import yaml

from host import diskstats, resources
from host.agent.config import load
from host.agent.loop import Agent
from host.blockdev import device_of_path
from host.store import Store

DAY = 86400.0


def write_store(path: Path, device: str, days: float, step_s: float, end: float) -> None:
    """A `piop record` store with `days` of 5-minute samples of `device`: a daily rhythm plus noise."""
    st = Store.open_append(path, {"interval_s": repr(step_s), "hostname": "bench"})
    st.set_devices([(device, "0:0", device, "database", None)])
    rng = np.random.default_rng(0)
    n = int(days * DAY / step_s)
    for i in range(n):
        t = end - (n - 1 - i) * step_s
        day = 0.5 - 0.5 * np.cos(2 * np.pi * ((t % DAY) / DAY))
        iops = 200 + 1800 * day * rng.uniform(0.8, 1.2)
        mbps = 5 + 60 * day * rng.uniform(0.8, 1.2)
        r = diskstats.Rates(iops * 0.7, iops * 0.3, mbps * 0.7, mbps * 0.3, 30 * day, 1.0, 0.5, 1.0)
        st.append(t, step_s, {device: r}, resources.HostRates(20 + 50 * day, 40.0, 1.0), [], {})
    st.close()


def config(root: Path, volumes: int, store: Path, forecaster: str) -> Path:
    vols = []
    for i in range(volumes):
        d = root / f"vol{i}"
        d.mkdir()
        for j in range(20):
            (d / f"f{j}").write_bytes(b"x" * 65536)
        vols.append({"name": f"vol{i}", "paths": [str(d)], "kind": "database", "rpo": "4h", "rto": "8h"})
    cfg = {
        "name": "bench",
        "state": str(root / "state"),
        "period": "10s",
        "history_step": "5m",
        "horizon": "6h",
        "policy": "predictive",
        "forecaster": forecaster,
        "history": {"store": str(store)},
        "metrics": {"port": 0},
        "tiers": [{"name": "t", "ingest_mbps": 500, "restore_mbps": 500, "slots": 4, "command": "true {path}"}],
        "volumes": vols,
    }
    path = root / "agent.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def forecast_update_cpu(agent: Agent, n: int) -> float:
    """CPU seconds of one forecast update at a newly closed history step (what the agent pays
    every `history_step`): `n` steps of the last observed values are closed and forecast."""
    step = agent.cfg.history_step
    k = int((time.time() - agent.start_epoch) // step) + 1
    vals = np.zeros((5, len(agent.names)))
    total = 0.0
    for i in range(n):
        closed = agent.hist.add((k + i) * step, (k + i + 1) * step, vals)
        assert closed, "no history step closed"
        t0 = time.process_time()
        agent.service.update(agent.hist.history())
        total += time.process_time() - t0
    return total / n


def measure_agent(root: Path, volumes: int, seconds: float) -> dict:
    dev, how = device_of_path(root)
    if dev is None:
        raise SystemExit(f"bench_agent: {root} is not on a block device ({how})")
    store = root / "host.piop"
    write_store(store, dev, 8.0, 300.0, time.time() - 1.0)
    agent = Agent(load(config(root, volumes, store, "seasonal_naive")), log=lambda m: None)
    c0, w0 = time.process_time(), time.perf_counter()
    agent.open()
    startup = {"cpu_s": time.process_time() - c0, "wall_s": time.perf_counter() - w0}
    n0 = agent.hist.n_steps
    c1, w1 = time.process_time(), time.perf_counter()
    agent.run(threading.Event(), seconds)
    cpu, wall = time.process_time() - c1, time.perf_counter() - w1
    steps_seen = agent.hist.n_steps - n0  # forecast updates inside the measured window
    n_hist = agent.hist.n_steps
    update_cpu = forecast_update_cpu(agent, 5)
    agent.close()
    loop_pct = 100.0 * cpu / wall
    with_updates = 100.0 * (cpu + max(0.0, wall / 300.0 - steps_seen) * update_cpu) / wall
    return {
        "device": dev,
        "volumes": volumes,
        "period_s": 10.0,
        "wall_s": round(wall, 1),
        "periods": agent.periods,
        "cpu_s": round(cpu, 3),
        "cpu_pct_of_core": round(loop_pct, 3),
        "cpu_pct_with_forecast_updates": round(with_updates, 3),
        "cpu_ms_per_period": round(1e3 * cpu / max(agent.periods, 1), 2),
        "forecast_update_cpu_ms": round(1e3 * update_cpu, 2),
        "decide_ms_per_period": round(1e3 * agent.decide_s / max(agent.periods, 1), 3),
        "scan_s": round(agent.estimator.scan_s, 3),
        "history_steps": int(n_hist),
        "prior_steps": int(agent.prior.n_steps if agent.prior is not None else 0),
        "forecast_model": agent.forecast.model if agent.forecast is not None else None,
        "startup": {k: round(v, 2) for k, v in startup.items()},
    }


def measure_lstm(root: Path, volumes: int) -> dict:
    from forecasters.base import FORECASTERS
    from forecasters.service import ForecastService
    from host.agent.observe import store_prior

    dev, _ = device_of_path(root)
    store = root / "lstm.piop"
    end = time.time()
    write_store(store, dev, 8.0, 300.0, end)
    prior = store_prior(store, [dev] * volumes, ["database"] * volumes, 300.0, end, 8 * DAY)
    model = FORECASTERS.create("lstm", threads=1)
    svc = ForecastService(model, 72, retrain={"min_history_hours": 24, "every_hours": 24})
    c0, w0 = time.process_time(), time.perf_counter()
    svc.update(prior)
    first = {"cpu_s": time.process_time() - c0, "wall_s": time.perf_counter() - w0}
    c0, w0 = time.process_time(), time.perf_counter()
    model.fit(prior)
    warm = {"cpu_s": time.process_time() - c0, "wall_s": time.perf_counter() - w0}
    c0 = time.process_time()
    for _ in range(3):
        model.predict(prior, 72)
    predict_ms = 1e3 * (time.process_time() - c0) / 3
    return {
        "history": f"{prior.n_steps} steps x {volumes} volumes",
        "first_fit": {k: round(v, 1) for k, v in first.items()},
        "warm_retrain": {k: round(v, 1) for k, v in warm.items()},
        "predict_cpu_ms": round(predict_ms, 1),
        "daily_retrain_pct_of_core": round(100.0 * warm["cpu_s"] / DAY, 4),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=150.0)
    ap.add_argument("--volumes", type=int, default=10)
    ap.add_argument("--lstm", action="store_true", help="also measure the LSTM's retraining cost")
    ap.add_argument("--dir", default="/tmp", help="where the volumes' folders go (a block-device filesystem)")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    root = Path(tempfile.mkdtemp(dir=a.dir, prefix="piop-bench-agent-"))
    try:
        out = {"agent": measure_agent(root, a.volumes, a.seconds)}
        if a.lstm:
            out["lstm"] = measure_lstm(root, a.volumes)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    if a.json:
        print(json.dumps(out, indent=2))
        return
    g = out["agent"]
    print(f"agent: {g['volumes']} volumes on {g['device']}, period {g['period_s']:g} s, {g['periods']} periods in {g['wall_s']} s")
    print(f"  CPU {g['cpu_pct_of_core']:.3f} % of one core ({g['cpu_ms_per_period']} ms per period; decide {g['decide_ms_per_period']} ms)")
    print(f"  with a forecast update every 5 min ({g['forecast_update_cpu_ms']} ms each): {g['cpu_pct_with_forecast_updates']:.3f} %")
    print(f"  start-up {g['startup']['cpu_s']} s CPU ({g['prior_steps']} history steps from the store; forecast {g['forecast_model']})")
    if "lstm" in out:
        m = out["lstm"]
        print(
            f"lstm ({m['history']}): first fit {m['first_fit']['wall_s']} s wall / {m['first_fit']['cpu_s']} s CPU; "
            f"warm retrain {m['warm_retrain']['wall_s']} s / {m['warm_retrain']['cpu_s']} s CPU; predict {m['predict_cpu_ms']} ms; "
            f"a daily retrain averages {m['daily_retrain_pct_of_core']} % of a core"
        )


if __name__ == "__main__":
    main()

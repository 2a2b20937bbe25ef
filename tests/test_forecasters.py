"""Forecasters: oracle, seasonal naive, no leakage, LSTM learning, retraining, burst labels, CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import forecasters  # noqa: F401  (registration)
from forecasters.backtest import BacktestConfig, head, run_backtest
from forecasters.base import FORECASTERS, make_forecast
from forecasters.classify import BurstRule, label_future, label_series, precision_recall
from forecasters.lstm import LSTMForecaster
from forecasters.oracle import Oracle
from forecasters.service import ForecastService, RetrainPolicy
from sim.history import HistoryRecorder, history_from_source
from sim.types import LoadHistory, LoadLabel
from workloads.base import SERIES, LoadBlock, VolumeMeta

STEP = 300.0
DAY = 288
MONDAY = 1704067200.0  # 2024-01-01 00:00 UTC
BITBRAINS = Path(__file__).resolve().parents[1] / ".." / "shared" / "traces" / "bitbrains_gwa_t12_rnd"

TINY_LSTM = dict(
    window_s=3600.0, horizon_s=6 * 3600.0, hidden=16, days=3, epochs=6, warm_epochs=1, samples_per_epoch=1024, batch_size=128, seed=0
)


def hist(mbps: np.ndarray, kinds: list[str] | None = None, iops_per_mb: float = 10.0) -> LoadHistory:
    mbps = np.asarray(mbps, np.float32)
    t, v = mbps.shape
    z = np.zeros_like(mbps)
    return LoadHistory(STEP, MONDAY, np.arange(t) * STEP, mbps * iops_per_mb, mbps, z + 20, z + 50, z + 1, kinds or ["vm"] * v)


def daily_series(days: int, v: int = 3, noise: float = 0.0, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    tod = np.arange(days * DAY) / DAY
    scale = 10.0 * (1 + np.arange(v))
    phase = np.linspace(0, 2, v)
    y = scale * (1.0 + 0.8 * np.sin(2 * np.pi * tod[:, None] + phase))
    return np.maximum(y * (1 + noise * rng.standard_normal(y.shape)), 0.0)


class TickSource:
    """A deterministic `LoadSource`: the value at a tick is a function of the tick only."""

    def __init__(self, v: int = 3, tick_s: float = 60.0):
        self.tick_s = tick_s
        self.volumes = [VolumeMeta(f"t{i}", "database") for i in range(v)]

    def block(self, start_tick: int, n_ticks: int) -> LoadBlock:
        k = np.arange(start_tick, start_tick + n_ticks, dtype=np.float64)[:, None]
        j = np.arange(len(self.volumes))[None, :]
        base = 1.0 + 0.5 * np.sin(2 * np.pi * k * self.tick_s / 86400.0 + j) + 0.3 * np.sin(k * 0.7 + j) ** 2
        arr = {s: (base * (i + 1)).astype(np.float32) for i, s in enumerate(SERIES)}
        return LoadBlock(start_tick=start_tick, **arr)

    def describe(self) -> dict:
        return {}


# ----------------------------------------------------------------------------- registry, oracle, seasonal


def test_registry_has_all_models():
    for name in (
        "naive",
        "seasonal_naive",
        "seasonal_median",
        "ewma",
        "trailing_mean",
        "trailing_median",
        "blend",
        "ets",
        "arima",
        "mstl",
        "lstm",
        "oracle",
    ):
        assert name in FORECASTERS
    f = FORECASTERS.create("seasonal_naive", season="weekly")
    assert f.name == "seasonal_naive_weekly"
    with pytest.raises(ValueError):
        FORECASTERS.create("seasonal_naive", season="monthly")


def source_future(src, step_s: float):
    """The true future of a load source as the environment hands it to the oracle: the ticks
    after the origin, aggregated by the simulator's own recorder."""
    step_ticks = round(step_s / src.tick_s)

    def future(origin_t: float, horizon_steps: int) -> np.ndarray:
        rec = HistoryRecorder(len(src.volumes), src.tick_s, step_ticks, horizon_steps, [v.kind for v in src.volumes], 0.0)
        n = horizon_steps * step_ticks
        rec.add_ticks(src.block(int(round(origin_t / src.tick_s)), n), 0, n)
        h = rec.history()
        return np.stack([h.iops, h.mbps], -1).astype(np.float64).transpose(1, 0, 2)

    return future


def test_oracle_from_source_has_zero_error():
    src = TickSource()
    n, h = 2 * DAY + 7, 50
    full = history_from_source(src, STEP, n + h)
    past = history_from_source(src, STEP, n)
    fc = Oracle(source_future(src, STEP)).predict(past, h)
    truth = np.stack([full.iops[n:], full.mbps[n:]], -1).transpose(1, 0, 2)
    assert np.abs(fc.mean - truth).max() == 0.0
    assert np.array_equal(fc.upper, fc.mean)
    # from a full history and from a one-argument callable, too
    assert np.abs(Oracle(full).predict(past, h).mean - truth).max() == 0.0
    assert np.abs(Oracle(lambda k: truth[:, :k]).predict(past, h).mean - truth).max() == 0.0


def test_oracle_declares_it_needs_the_future():
    assert FORECASTERS.get("oracle").needs_future is True
    assert not getattr(FORECASTERS.get("seasonal_naive"), "needs_future", False)
    with pytest.raises(ValueError, match="oracle: future"):
        Oracle()
    with pytest.raises(TypeError, match="load source"):
        Oracle(TickSource())  # the environment reads a source; the oracle takes its reading


def test_importing_forecasters_loads_neither_torch_nor_statsforecast():
    code = (
        "import json, sys, forecasters\n"
        "names = forecasters.FORECASTERS.names()\n"
        "print(json.dumps({'loaded': [m for m in ('torch', 'statsforecast') if m in sys.modules], 'names': names}))\n"
    )
    out = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
    assert out["loaded"] == []
    assert {"lstm", "ets", "arima", "mstl", "naive", "oracle"} <= set(out["names"])
    # first use imports the model's module, which registers the real class in place of the entry
    from forecasters.stats import ETS

    assert FORECASTERS.get("ets") is ETS and type(FORECASTERS.create("ets")) is ETS


def test_torch_threads_sets_and_restores():
    import torch

    from forecasters.threads import cap_torch_threads, torch_threads

    before = torch.get_num_threads()
    with torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with pytest.raises(RuntimeError), torch_threads(1):
        raise RuntimeError("the cap is lifted on errors too")
    assert torch.get_num_threads() == before
    try:
        cap_torch_threads(1)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_seasonal_naive_reproduces_periodic_series_exactly():
    rng = np.random.default_rng(1)
    day = rng.uniform(0, 100, (DAY, 2))
    y = np.tile(day, (6, 1)).astype(np.float32)  # identical days
    h = hist(y[: 3 * DAY + 17])
    fc = FORECASTERS.create("seasonal_naive").predict(h, 2 * DAY)  # two seasons ahead
    assert np.array_equal(fc.mean[:, :, 1], y[3 * DAY + 17 : 5 * DAY + 17].T.astype(np.float64))
    # weekly: a week-periodic series
    week = rng.uniform(0, 50, (7 * DAY, 1))
    yw = np.tile(week, (3, 1)).astype(np.float32)
    hw = hist(yw[: 2 * 7 * DAY + 5])
    fw = FORECASTERS.create("seasonal_naive", season="weekly").predict(hw, DAY)
    assert np.array_equal(fw.mean[0, :, 1], yw[2 * 7 * DAY + 5 : 2 * 7 * DAY + 5 + DAY, 0].astype(np.float64))


def test_simple_models_upper_quantile_covers():
    rng = np.random.default_rng(3)
    y = 50 + 10 * rng.standard_normal((10 * DAY, 4))
    h = hist(np.maximum(y, 0))
    for name in ("naive", "trailing_mean", "ewma", "blend", "seasonal_naive"):
        f = FORECASTERS.create(name)
        f.fit(head(h, 8 * DAY))
        fc = f.predict(head(h, 8 * DAY), DAY)
        assert np.all(fc.upper >= fc.mean) and fc.labels.shape == (4, DAY)
        cover = np.mean(y[8 * DAY : 9 * DAY].T <= fc.upper[:, :, 1])
        assert 0.75 < cover < 0.99, (name, cover)


# ----------------------------------------------------------------------------- no leakage


def _spiked(y: np.ndarray, at: int) -> np.ndarray:
    z = y.copy()
    z[at:] = z[at:] * 50 + 1000.0  # a huge change right after the origin
    return z


@pytest.mark.parametrize(
    "spec",
    [
        "naive",
        "seasonal_naive",
        "seasonal_naive:season=weekly",
        "seasonal_median",
        "trailing_mean",
        "trailing_median",
        "ewma",
        "blend",
        "ets:fit_days=3",
        "lstm",
    ],
)
def test_no_forecaster_sees_past_the_origin(spec):
    y = daily_series(9, v=2, noise=0.1)
    slow = spec.startswith(("ets", "lstm"))
    cfg = BacktestConfig(horizon_s=6 * 3600.0, n_origins=3 if slow else 4, train_days=5.0, retrain_hours=24.0)
    if spec == "lstm":
        spec = "lstm:" + ":".join(
            f"{k}={v}" for k, v in {**TINY_LSTM, "hidden": 8, "epochs": 1, "samples_per_epoch": 128, "batch_size": 64}.items()
        )
    a = run_backtest(hist(y), [spec], cfg)
    k = len(a.origins) - 2  # spike right after the last-but-one origin
    b = run_backtest(hist(_spiked(y, int(a.origins[k]))), [spec], cfg)
    for lab in (spec, "seasonal_naive"):
        assert np.array_equal(a.mean[lab][: k + 1], b.mean[lab][: k + 1]), lab
        assert np.array_equal(a.upper[lab][: k + 1], b.upper[lab][: k + 1]), lab
    # the spike is there to be seen: later origins do see it
    assert not np.array_equal(a.mean["seasonal_naive"][k + 1 :], b.mean["seasonal_naive"][k + 1 :])


def test_service_never_uses_the_future():
    y = daily_series(3, v=2, noise=0.05)
    at = 2 * DAY + 10
    outs = []
    for series in (y, _spiked(y, at)):
        h = hist(series)
        svc = ForecastService("trailing_mean", 24, RetrainPolicy(every_hours=6, min_history_hours=24))
        outs.append([svc.update(head(h, n)).mean for n in range(2 * DAY - 5, at + 1)])
    for m1, m2 in zip(outs[0], outs[1], strict=True):
        assert np.array_equal(m1, m2)


# ----------------------------------------------------------------------------- LSTM


def test_lstm_loss_decreases_and_beats_naive():
    y = daily_series(7, v=4, noise=0.05, seed=2)
    kinds = ["database", "vm", "fileserver", "vm"]
    train = hist(y[: 5 * DAY], kinds)
    f = LSTMForecaster(**TINY_LSTM)
    f.fit(train)
    assert len(f.loss_history) == TINY_LSTM["epochs"]
    assert f.loss_history[-1] < 0.7 * f.loss_history[0]
    naive = FORECASTERS.create("naive")
    h_steps = 72
    err_l, err_n = [], []
    for o in range(5 * DAY, 7 * DAY - h_steps, 37):
        past = hist(y[:o], kinds)
        truth = y[o : o + h_steps].T
        err_l.append(np.abs(f.predict(past, h_steps).mean[:, :, 1] - truth).mean())
        err_n.append(np.abs(naive.predict(past, h_steps).mean[:, :, 1] - truth).mean())
    assert np.mean(err_l) < 0.6 * np.mean(err_n), (np.mean(err_l), np.mean(err_n))
    # deterministic under the seed
    g = LSTMForecaster(**TINY_LSTM)
    g.fit(train)
    assert np.array_equal(f.predict(train, 12).mean, g.predict(train, 12).mean)
    # warm start: fewer epochs, from the current weights
    f.fit(hist(y[: 6 * DAY], kinds))
    assert f.last_fit["warm"] == 1.0 and f.last_fit["epochs"] == TINY_LSTM["warm_epochs"]
    fc = f.predict(train, 100)  # beyond the trained 6 h: seasonal naive fills in
    assert fc.mean.shape == (4, 100, 2) and np.all(fc.upper >= fc.mean)


def test_lstm_prediction_fast_path_matches_per_volume_features():
    """Prediction gathers rows once for all volumes; training gathers per (volume, origin) from
    the history's tables. Both must give the same model inputs, also where the history is too
    short for all lags."""
    import torch

    from forecasters.lstm.features import EPS, Sizes, Tables, arrays, batch_inputs, median_small
    from forecasters.lstm.origin import origin_inputs

    for n in (3, 4, 7, 16, 17):
        x = torch.randn(5, n, 3)
        assert torch.equal(median_small(x, 1), x.median(1).values)
    y = daily_series(6, v=3, noise=0.1, seed=4)
    f = LSTMForecaster(**TINY_LSTM)
    sz = Sizes.of(f.window_s, f.horizon_s, STEP)
    for n_steps in (int(1.2 * DAY), 4 * DAY, 6 * DAY):  # under `days` days: lags fall back
        a = arrays(hist(y[:n_steps]))
        v, t = torch.arange(3), torch.full((3,), n_steps)
        scale = a.y[-7 * DAY :].mean(0) + EPS
        slow = batch_inputs(a, Tables(a, sz, f.days, n_steps - sz.D), sz, v, t, scale)
        for steps_out in (12, 72):
            fast = origin_inputs(a, sz, f.days, scale, steps_out)
            assert fast[2].shape == (3, steps_out, 9, 2)
            torch.testing.assert_close(fast[0], slow[0], rtol=1e-6, atol=1e-6)
            torch.testing.assert_close(fast[1], slow[1], rtol=1e-6, atol=1e-6)
            torch.testing.assert_close(fast[2], slow[2][:, :steps_out], rtol=1e-6, atol=1e-6)


def test_lstm_day_candidates_are_the_direct_seasonal_values():
    """The per-row table equals seasonal naive, the k-day mean / median and the trailing hourly
    mean one day before, computed directly from the series (and never reads the origin's future)."""
    import torch

    from forecasters.lstm.features import Sizes, arrays, day_candidates

    y = daily_series(5, v=2, noise=0.3, seed=7)
    a = arrays(hist(y))
    sz = Sizes.of(3600.0, 6 * 3600.0, STEP)
    rows = torch.tensor([3 * DAY + 5, 4 * DAY + 100, 2 * DAY, DAY + 7])  # the last: two days back is before the series
    got = day_candidates(a, rows, sz, 3).numpy()  # [rows, V, 5, 2]
    for i, b in enumerate(rows.tolist()):
        lags = [b - k * DAY if b >= k * DAY else b for k in range(3)]
        yd = np.stack([y[r] for r in lags])  # [3, V] MB/s
        hour = np.stack([y[max(0, r - 11) : r + 1].mean(0) for r in lags])
        np.testing.assert_allclose(got[i, :, 0, 1], y[b], rtol=1e-5)
        np.testing.assert_allclose(got[i, :, 1, 1], yd.mean(0), rtol=1e-5)
        np.testing.assert_allclose(got[i, :, 2, 1], np.median(yd, 0), rtol=1e-5)
        np.testing.assert_allclose(got[i, :, 3, 1], hour[0], rtol=1e-5)
        np.testing.assert_allclose(got[i, :, 4, 1], np.median(hour, 0), rtol=1e-5)


def test_lstm_warm_started_backtest_is_deterministic_and_fine_tunes():
    """Refits across origins warm-start (fewer epochs from the kept weights), and the same seed
    gives the same forecasts."""
    y = daily_series(9, v=3, noise=0.1, seed=5)
    h = hist(y, ["database", "vm", "fileserver"])
    spec = "lstm:" + ":".join(f"{k}={v}" for k, v in {**TINY_LSTM, "epochs": 3, "warm_epochs": 1, "samples_per_epoch": 256}.items())
    cfg = BacktestConfig(horizon_s=6 * 3600.0, n_origins=4, train_days=5.0, retrain_hours=18.0)
    seen: list[tuple[int, str]] = []
    a = run_backtest(h, [spec], cfg, progress=lambda label, i, n, note: seen.append((i, note)))
    b = run_backtest(h, [spec], cfg)
    t = a.timing[spec]
    assert t["fits"] >= 3 and t["warm_fits"] == t["fits"] - 1
    assert t["epochs"] == 3 + 1 * t["warm_fits"]  # the first fit in full, the others fine-tune
    assert ("fit epoch 3/3" in [n for _, n in seen]) and ("fit epoch 1/1" in [n for _, n in seen])
    assert np.array_equal(a.mean[spec], b.mean[spec]) and np.array_equal(a.upper[spec], b.upper[spec])
    cold = run_backtest(h, [spec + ":warm_start=false"], cfg).timing[spec + ":warm_start=false"]
    assert cold["warm_fits"] == 0 and cold["epochs"] == 3 * cold["fits"]


def test_service_returns_the_last_forecast_while_the_origin_stays():
    y = daily_series(3, v=2)
    svc = ForecastService("trailing_mean", 12, RetrainPolicy(every_hours=6, min_history_hours=12))
    h = head(hist(y), 2 * DAY)
    first = svc.update(h)
    assert svc.update(h) is first and svc.cached == 1
    nxt = svc.update(head(hist(y), 2 * DAY + 1))
    assert nxt is not first and nxt.origin_t > first.origin_t


# ----------------------------------------------------------------------------- retraining service


class Stub:
    """Predicts `factor` x the last value; records when it was fitted."""

    name = "stub"

    def __init__(self, factor: float = 1.0):
        self.factor = factor
        self.fits: list[tuple[float, int]] = []

    def fit(self, history: LoadHistory) -> None:
        self.fits.append((history.end_t, history.n_steps))

    def predict(self, history: LoadHistory, horizon_steps: int):
        last = np.stack([history.iops[-1], history.mbps[-1]], -1).astype(np.float64) * self.factor
        m = np.repeat(last[:, None, :], horizon_steps, axis=1)
        return make_forecast(history, m, m, quantile=0.9, model=self.name)


def _drive(svc: ForecastService, y: np.ndarray, start: int) -> list:
    h = hist(y)
    return [svc.update(head(h, n)) for n in range(start, y.shape[0] + 1)]


def test_retrain_every_n_hours():
    stub = Stub()
    svc = ForecastService(stub, 12, RetrainPolicy(every_hours=6, min_history_hours=12))
    _drive(svc, daily_series(2, v=2), 1)
    times = [t for t, _ in stub.fits]
    assert times[0] == 12 * 3600.0  # first fit once 12 h of history exist
    assert np.allclose(np.diff(times), 6 * 3600.0)
    assert len(times) == 7  # 12 h, 18 h, ..., 48 h
    assert all(n * STEP == t for t, n in stub.fits)  # fitted on exactly the history up to then
    assert [e["reason"] for e in svc.events if e["event"] == "fit"] == ["initial"] + ["schedule"] * 6
    assert svc.summary()["fits"] == 7


def test_retrain_on_drift_and_fallback():
    y = daily_series(3, v=2, noise=0.02)
    stub = Stub(factor=3.0)  # far worse than seasonal naive
    svc = ForecastService(stub, 12, RetrainPolicy(every_hours=None, drift_bound=1.5, cooldown_hours=4, min_history_hours=24, min_scored=6))
    served = _drive(svc, y, DAY)
    fits = [e for e in svc.events if e["event"] == "fit"]
    assert fits[0]["reason"] == "initial"
    drift = [e for e in fits if e["reason"] == "drift"]
    assert drift and all(e["ratio_before"] > 1.5 for e in drift)
    assert all(b["t"] - a["t"] >= 4 * 3600 - 1e-6 for a, b in zip(fits, fits[1:], strict=False))
    # the bad model is replaced by the fallback (seasonal naive) while it scores badly
    assert any(e["event"] == "mode" and e["to"] == "fallback" for e in svc.events)
    assert any(f.model.startswith("fallback:") for f in served)
    # a good model is never dropped and never retrained for drift
    good = Stub(factor=1.0)
    svc2 = ForecastService(good, 12, RetrainPolicy(every_hours=None, drift_bound=1.5, min_history_hours=24, min_scored=6))
    steps_up = np.repeat(10.0 + 5.0 * np.arange(3), DAY)[:, None] * np.ones((1, 2))  # a new level each day
    _drive(svc2, steps_up, DAY)
    assert [e["reason"] for e in svc2.events if e["event"] == "fit"] == ["initial"]


# ----------------------------------------------------------------------------- burst / sustained


def test_burst_and_sustained_labels_on_crafted_series():
    rng = np.random.default_rng(0)
    past = (10 + rng.uniform(-1, 1, (DAY, 2)))[:, :, None].repeat(2, axis=2)  # [T, V=2, 2]
    fut = np.full((2, 60, 2), 10.0)
    fut[0, 5:8] = 100.0  # 15 min spike: burst
    fut[0, 20:40] = 60.0  # 100 min plateau: sustained
    fut[1, 50:52, 0] = 80.0  # IOPS-only spike on volume 1: burst
    lab = label_future(past, fut, STEP, BurstRule())
    expect = np.zeros((2, 60), np.int8)
    expect[0, 5:8] = LoadLabel.BURST
    expect[0, 20:40] = LoadLabel.SUSTAINED
    expect[1, 50:52] = LoadLabel.BURST
    assert np.array_equal(lab, expect)
    # a high run that started before the origin continues: sustained if long enough in total
    past2 = past.copy()
    past2[-10:] = 100.0
    lab2 = label_future(past2, np.full((2, 3, 2), 100.0), STEP)
    assert np.all(lab2 == LoadLabel.SUSTAINED)
    # observed series, causal baseline
    y = np.full((2 * DAY, 1), 10.0) + rng.uniform(-0.5, 0.5, (2 * DAY, 1))
    y[DAY + 10 : DAY + 13] = 90.0
    y[DAY + 100 : DAY + 140] = 90.0
    obs = label_series(hist(y))
    assert set(np.flatnonzero(obs[:, 0] == LoadLabel.BURST)) == set(range(DAY + 10, DAY + 13))
    assert set(np.flatnonzero(obs[:, 0] == LoadLabel.SUSTAINED)) == set(range(DAY + 100, DAY + 140))
    p, r, _, _ = precision_recall(lab, expect, "burst")
    assert p == 1.0 and r == 1.0
    # forecasts carry labels from the same rule
    fc = FORECASTERS.create("oracle", future=hist(np.concatenate([past[:, :, 1], fut[:, :, 1].T]))).predict(hist(past[:, :, 1]), 60)
    assert fc.labels.shape == (2, 60) and fc.labels[0, 6] == LoadLabel.BURST and fc.labels[0, 30] == LoadLabel.SUSTAINED


# ----------------------------------------------------------------------------- CLI


def _cli():
    from typer.testing import CliRunner

    from experiments.forecast_cli import forecast_app

    return CliRunner(), forecast_app


@pytest.mark.skipif(not (BITBRAINS / "2013-7" / "5.csv.gz").exists(), reason="Bitbrains trace not present")
def test_backtest_cli_on_bitbrains_vm(tmp_path):
    runner, app = _cli()
    path = str(BITBRAINS / "2013-7" / "5.csv.gz")
    args = [
        "backtest",
        path,
        "--forecasters",
        "naive,trailing_mean,blend,oracle",
        "--origins",
        "3",
        "--train-days",
        "7",
        "--horizon-h",
        "6",
        "--out",
        str(tmp_path),
        "--name",
        "bb",
        "--json",
        "-q",
    ]
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    rows = {row["forecaster"]: row for row in data["summary"]}
    assert rows["seasonal_naive"]["rel_mbps_mean_1h"] == 1.0
    assert rows["oracle"]["rel_mbps_mean_1h"] == 0.0 and rows["oracle"]["mae_mbps_1h"] == 0.0
    for f in ("metrics.parquet", "summary.parquet", "forecast.png"):
        assert (tmp_path / "bb" / f).exists()


def test_backtest_cli_user_errors(tmp_path):
    runner, app = _cli()
    r = runner.invoke(app, ["backtest", str(tmp_path / "missing")])
    assert r.exit_code == 2 and r.stderr.startswith("error:") and "Traceback" not in r.output
    r = runner.invoke(
        app, ["backtest", "--synthetic", "vm", "--forecasters", "nope", "--days", "3", "--train-days", "1", "--horizon-h", "1"]
    )
    assert r.exit_code == 2 and "unknown forecaster" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    r = runner.invoke(app, ["backtest", "--synthetic", "vm", "--forecasters", "naive", "--days", "1", "--count", "1"])
    assert r.exit_code == 2 and "too short" in r.stderr


def test_backtest_cli_synthetic(tmp_path):
    runner, app = _cli()
    args = ["backtest", "--synthetic", "database,vm,fileserver", "--count", "1", "--days", "4", "--train-days", "2", "--horizon-h", "2"]
    args += [
        "--origins",
        "3",
        "--forecasters",
        "naive,seasonal_naive,oracle",
        "--out",
        str(tmp_path),
        "--name",
        "syn",
        "--plot-volumes",
        "0",
        "-q",
    ]
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    import pandas as pd

    summary = pd.read_parquet(tmp_path / "syn" / "summary.parquet")
    assert set(summary.kind) == {"all", "database", "vm", "fileserver"}
    assert (summary[summary.forecaster == "oracle"].rel_mbps_mean_1h == 0).all()
    assert (tmp_path / "syn" / "metrics.parquet").exists() and "best" in r.stdout

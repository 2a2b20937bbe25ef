"""Calibrated upper bands: coverage on known noise, per-volume widths, no leakage, determinism,
the service's coverage report and the backtest's coverage columns."""

from __future__ import annotations

import numpy as np
import pytest
from cli_helpers import MONDAY

import forecasters  # noqa: F401  (registration)
from forecasters.backtest import BacktestConfig, run_backtest
from forecasters.base import make_forecast
from forecasters.calibration import Calibrated, sample_steps, upto
from forecasters.classify import BurstRule, label_forecast
from forecasters.metrics import coverage
from forecasters.service import ForecastService, RetrainPolicy
from sim.types import LoadHistory, LoadLabel

STEP = 300.0
DAY = 288
SCALES = np.array([1.0, 3.0, 8.0, 20.0, 40.0])  # noise scale of each volume, on a level of 100 +- 50
H = 72  # 6 h ahead


def signal(n: int, v: int) -> np.ndarray:
    """`[n, v]` daily rhythm, each volume at its own phase."""
    tod = np.arange(n)[:, None] / DAY
    return 100.0 * (1.0 + 0.5 * np.sin(2 * np.pi * tod + np.linspace(0, 3, v)[None, :]))


def noisy_fleet(days: float, noise: str, seed: int = 0) -> LoadHistory:
    """The daily signal plus noise of known law and per-volume scale (`SCALES`)."""
    rng = np.random.default_rng(seed)
    n, v = int(days * DAY), SCALES.size
    e = rng.standard_normal((n, v)) if noise == "gaussian" else rng.standard_t(3, (n, v)) / np.sqrt(3.0)
    return hist(np.maximum(signal(n, v) + SCALES * e, 0.0))


def hist(mbps: np.ndarray) -> LoadHistory:
    mbps = np.asarray(mbps, np.float32)
    z = np.zeros_like(mbps)
    return LoadHistory(STEP, MONDAY, np.arange(mbps.shape[0]) * STEP, 10.0 * mbps, mbps, z + 20, z + 50, z + 1, ["vm"] * mbps.shape[1])


class KnownSignal:
    """Forecasts the true rhythm, with the common fixed-margin band (+10 %): right on average, not per volume."""

    name = "known_signal"

    def fit(self, history: LoadHistory) -> None:
        pass

    def predict(self, history: LoadHistory, horizon_steps: int):
        n = history.n_steps
        s = signal(n + horizon_steps, history.mbps.shape[1])[n:].T  # [V, H]
        mean = np.stack([10.0 * s, s], axis=-1)
        return make_forecast(history, mean, 1.1 * mean, quantile=0.9, model=self.name)


def walk(model, history: LoadHistory, first: int, every: int = 49):
    """(upper, truth) `[origins, V, H, 2]` of `model` at origins from `first` every `every` steps (views up to each)."""
    ups, truth = [], []
    y = np.stack([history.iops, history.mbps], -1)
    for o in range(first, history.n_steps - H + 1, every):
        ups.append(model.predict(upto(history, o), H).upper)
        truth.append(np.transpose(y[o : o + H], (1, 0, 2)))
    return np.stack(ups), np.stack(truth)


# ----------------------------------------------------------------------------- coverage


@pytest.mark.parametrize("noise", ["gaussian", "student_t3"])
def test_calibrated_coverage_is_nominal_per_volume(noise):
    h = noisy_fleet(28, noise)  # three weeks scored: per-volume coverage is known to about 0.5 point
    first = 7 * DAY  # a week of calibration origins first
    raw_up, truth = walk(KnownSignal(), h, first)
    raw = coverage(raw_up, truth).mean(axis=1)
    assert np.max(np.abs(raw - 0.9)) > 0.08, raw  # the fixed margin is far off on some volumes
    for level in (0.9, 0.8):
        cal_up, _ = walk(Calibrated(KnownSignal(), coverage=level), h, first)
        per_volume = coverage(cal_up, truth).mean(axis=1)
        assert np.all(np.abs(per_volume - level) <= 0.02), (level, per_volume)
        assert abs(per_volume.mean() - level) <= 0.01


def test_adapted_level_recovers_coverage_after_the_noise_grows():
    rng = np.random.default_rng(0)
    n, change = 14 * DAY, 9 * DAY
    scale = np.where(np.arange(n)[:, None] >= change, 3.0, 1.0) * SCALES  # every volume 3x noisier from day 9
    h = hist(np.maximum(signal(n, SCALES.size) + scale * rng.standard_normal((n, SCALES.size)), 0.0))
    plain_up, truth = walk(Calibrated(KnownSignal(), coverage=0.9, adapt=0.0), h, change)
    adapted_up, _ = walk(Calibrated(KnownSignal(), coverage=0.9, adapt=0.05), h, change)
    plain, adapted = coverage(plain_up, truth).mean(axis=1), coverage(adapted_up, truth).mean(axis=1)
    assert np.all(plain < 0.8), plain  # a week of calm errors in the window: far too narrow
    assert np.all(np.abs(adapted - 0.9) <= 0.02), adapted


def test_calibration_over_a_registered_model():
    h = noisy_fleet(28, "student_t3", seed=3)
    up, truth = walk(Calibrated("seasonal_naive", coverage=0.9), h, 8 * DAY)
    per_volume = coverage(up, truth).mean(axis=1)
    assert np.all(np.abs(per_volume - 0.9) <= 0.02), per_volume


def test_bands_follow_each_volumes_noise():
    h = noisy_fleet(9, "gaussian")
    fc = Calibrated(KnownSignal(), coverage=0.9).predict(h, H)
    width = (fc.upper - fc.mean)[:, :, 1].mean(axis=1)
    assert np.all(np.diff(width) > 0), width  # noisier volume, wider band
    # about the Gaussian 0.9 quantile (1.28 sigma) for each scale
    assert np.allclose(width, 1.2816 * SCALES, rtol=0.15), width / SCALES
    assert fc.quantile == 0.9 and fc.model == "known_signal+cal"


def test_without_residuals_the_models_own_band_stays():
    h = noisy_fleet(7 / 24, "gaussian")  # 7 h: one calibration origin has a 6 h-ahead step scored
    fc = Calibrated(KnownSignal(), coverage=0.9).predict(h, H)
    own = KnownSignal().predict(h, H)
    assert np.array_equal(fc.mean, own.mean)
    far = H - 1  # no 6 h-ahead forecast has been observed yet
    assert np.array_equal(fc.upper[:, far], own.upper[:, far])


def test_sample_steps_spread_over_buckets():
    keep = sample_steps(288, 8)
    assert keep[0] == 1 and keep[-1] == 288 and np.all(np.diff(keep) > 0)
    assert keep.size == 1 + 2 + 4 + 8 * 6  # buckets 1, 2-3, 4-7, then 8 of each longer one


# ----------------------------------------------------------------------------- labels


def test_labels_come_from_the_calibrated_band():
    h = noisy_fleet(9, "student_t3", seed=5)
    rule = BurstRule(k=0.5, min_rel=0.0)  # high: half a spread above the day's median
    fcs = [Calibrated(KnownSignal(), coverage=0.9, label_level=lv, rule=rule).predict(h, H) for lv in (0.1, 0.5, 0.97)]
    n_high = [int(np.sum(f.labels != LoadLabel.NORMAL)) for f in fcs]
    assert n_high[0] < n_high[1] < n_high[2], n_high  # a higher level of the band, more load called high
    # the median residual of pure noise is about 0: the labels of the mean
    assert np.mean(fcs[1].labels == label_forecast(h, fcs[1].mean, rule)) > 0.95


# ----------------------------------------------------------------------------- leakage, determinism


def perturbed_after(h: LoadHistory, t: int) -> LoadHistory:
    mbps = h.mbps.copy()
    mbps[t:] = mbps[t:] * 30.0 + 500.0
    return hist(mbps)


def test_calibration_never_sees_past_the_origin():
    h = noisy_fleet(10, "gaussian")
    origins = (8 * DAY + 7, 9 * DAY - 3)
    bent = perturbed_after(h, origins[1])
    runs = []
    for series in (h, bent):
        model = Calibrated("seasonal_naive", coverage=0.9)
        runs.append([model.predict(upto(series, o), H) for o in origins])
    for a, b in zip(runs[0], runs[1], strict=True):
        assert np.array_equal(a.mean, b.mean) and np.array_equal(a.upper, b.upper) and np.array_equal(a.labels, b.labels)
    # a model that saw a later history and is asked about an earlier origin forgets what came after it
    model = Calibrated("seasonal_naive", coverage=0.9)
    model.predict(bent, H)
    again = model.predict(upto(bent, origins[1]), H)
    assert np.array_equal(again.upper, Calibrated("seasonal_naive", coverage=0.9).predict(upto(h, origins[1]), H).upper)
    # the perturbation is there to be seen: past it, the errors and the band change
    later = 9 * DAY + 100
    assert not np.array_equal(
        Calibrated("seasonal_naive").predict(upto(h, later), H).upper, Calibrated("seasonal_naive").predict(upto(bent, later), H).upper
    )


def test_calibration_is_deterministic():
    h = noisy_fleet(9, "student_t3", seed=2)
    a = walk(Calibrated("seasonal_naive", coverage=0.85), h, 8 * DAY, every=40)[0]
    b = walk(Calibrated("seasonal_naive", coverage=0.85), h, 8 * DAY, every=40)[0]
    assert np.array_equal(a, b)
    # without level adaptation the band depends on the data only, not on the calls before:
    # a walk's last forecast is a fresh instance's
    a = walk(Calibrated("seasonal_naive", coverage=0.85, adapt=0.0), h, 8 * DAY, every=40)[0]
    origin = 8 * DAY + 40 * (a.shape[0] - 1)
    fresh = Calibrated("seasonal_naive", coverage=0.85, adapt=0.0).predict(upto(h, origin), H).upper
    assert np.array_equal(a[-1], fresh)


def test_bad_settings_name_the_key():
    with pytest.raises(ValueError, match="coverage"):
        Calibrated("naive", coverage=1.5)
    with pytest.raises(ValueError, match="window_h"):
        Calibrated("naive", window_h=0.5, every_h=1.0)
    with pytest.raises(ValueError, match="true future"):
        Calibrated("oracle", coverage=0.9)
    with pytest.raises(ValueError, match="calib_window_h.*coverage"):
        ForecastService("naive", 12, {"calib_window_h": 24})
    with pytest.raises(ValueError, match=r"retrain: calib_window_h: must be at least every_h \(got 0.5\)"):
        ForecastService("naive", 12, {"coverage": 0.9, "calib_window_h": 0.5})
    with pytest.raises(ValueError, match=r"retrain: coverage: must be in \(0, 1\)"):
        ForecastService("naive", 12, {"coverage": 1.0})
    with pytest.raises(ValueError, match="unknown parameter"):
        RetrainPolicy.from_config({"coverge": 0.9})


# ----------------------------------------------------------------------------- service


def drive(svc: ForecastService, h: LoadHistory, start: int) -> list:
    return [svc.update(upto(h, n)) for n in range(start, h.n_steps + 1)]


def test_service_reports_the_coverage_it_served():
    h = noisy_fleet(4, "gaussian", seed=4)
    svc = ForecastService("seasonal_naive", 24, RetrainPolicy(every_hours=24, min_history_hours=24))
    served = drive(svc, h, DAY)
    s = svc.summary()
    # recompute from the forecasts served at each whole hour, scored on what came after
    y = np.stack([h.iops, h.mbps], -1)
    hits, total = np.zeros(SCALES.size), np.zeros(SCALES.size)
    for n, fc in zip(range(DAY, h.n_steps + 1), served, strict=True):
        if n % 12 == 0:
            k = min(24, h.n_steps - n)
            hits += np.sum(y[n : n + k].transpose(1, 0, 2) <= fc.upper[:, :k] + 1e-12, axis=(1, 2))
            total += 2 * k
    assert np.allclose(s["coverage_per_volume"], hits / total, atol=1e-4)
    assert s["coverage"] == pytest.approx(hits.sum() / total.sum())
    assert s["coverage_nominal"] == 0.9 and s["coverage_target"] is None
    assert s["coverage_within_5pts"] == pytest.approx(np.mean(np.abs(hits / total - 0.9) <= 0.05))
    assert s["coverage_values"] == int(total.sum())


def test_service_calibrates_when_configured():
    h = noisy_fleet(5, "student_t3", seed=6)
    runs = {}
    for cov in (None, 0.8):
        svc = ForecastService(
            KnownSignal(),
            24,
            {"min_history_hours": 24} if cov is None else {"coverage": cov, "min_history_hours": 24, "calib_window_h": 48},
        )
        served = drive(svc, h, DAY)
        runs[cov] = (svc.summary(), served)
    (raw, raw_fc), (cal, cal_fc) = runs[None], runs[0.8]
    assert cal["forecaster"] == "known_signal+cal" and cal["coverage_target"] == 0.8 and cal["coverage_nominal"] == 0.8
    assert all(f.quantile == 0.8 for f in cal_fc)
    assert np.array_equal(raw_fc[-1].mean, cal_fc[-1].mean)  # only the band changes
    assert np.max(np.abs(np.array(raw["coverage_per_volume"]) - 0.9)) > 0.1
    assert np.all(np.abs(np.array(cal["coverage_per_volume"]) - 0.8) <= 0.05), cal["coverage_per_volume"]
    assert cal["coverage_within_5pts"] == 1.0 > raw["coverage_within_5pts"]
    # deterministic: the same run again gives the same report
    again = ForecastService(KnownSignal(), 24, {"coverage": 0.8, "min_history_hours": 24, "calib_window_h": 48})
    drive(again, h, DAY)
    assert again.summary() == {
        **cal,
        "fit_s_total": again.summary()["fit_s_total"],
        "predict_s_total": again.summary()["predict_s_total"],
        "predict_ms_mean": again.summary()["predict_ms_mean"],
    }


# ----------------------------------------------------------------------------- backtest


def test_backtest_calibrates_a_spec_and_reports_coverage_spread():
    h = noisy_fleet(12, "student_t3", seed=7)
    cfg = BacktestConfig(horizon_s=6 * 3600.0, n_origins=12, train_days=8.0, retrain_hours=24.0)
    res = run_backtest(h, ["naive", "naive:coverage=0.8"], cfg)
    assert res.quantile == {"seasonal_naive": 0.9, "naive": 0.9, "naive:coverage=0.8": 0.8}
    row = res.summary[(res.summary.kind == "all")].set_index("forecaster")
    cal = row.loc["naive:coverage=0.8"]
    assert cal.coverage_nominal == 0.8 and abs(cal.upper_coverage - 0.8) < 0.05
    per_volume = coverage(res.upper["naive:coverage=0.8"], res.truth).mean(axis=1)
    assert cal.coverage_vol_min == pytest.approx(per_volume.min())
    assert cal.coverage_within_5pts == pytest.approx(np.mean(np.abs(per_volume - 0.8) <= 0.05))
    assert np.array_equal(res.mean["naive"], res.mean["naive:coverage=0.8"])  # the point forecast is untouched
    with pytest.raises(ValueError, match="true future"):
        run_backtest(h, ["oracle:coverage=0.9"], cfg)
    with pytest.raises(ValueError, match="coverage"):
        run_backtest(h, ["naive:calib_window_h=24"], cfg)

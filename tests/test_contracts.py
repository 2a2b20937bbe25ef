"""Contract suites every registered policy and forecaster must pass, built-in or plug-in.

Like scikit-learn's `parametrize_with_checks`: the names are collected from the
registries at import, so a newly registered model is checked without editing this file.

Forecasters (on a small synthetic fleet at hourly steps): forecast shapes and bounds
(`[volumes, horizon, (iops, mbps)]`, finite, non-negative, lower <= mean <= upper, valid
labels), determinism (two fresh instances, same data, identical arrays), and no look past
the origin (data after it perturbed, forecast unchanged; a model that declares
`needs_future`, the oracle, must see the change instead).

Schedulers (on 12 h of the default config's fleet, after a day of prior load): every action valid against the
context it answered, determinism across fresh instances, `reset()` then a rerun gives the
same actions, `summary()` is JSON, and a valid answer to a frozen context.
"""

from __future__ import annotations

import dataclasses
import json
from functools import cache

import numpy as np
import pytest

import forecasters  # noqa: F401  (registration)
import schedulers  # noqa: F401  (registration)
from common.jsonable import jsonable
from forecasters.base import FORECASTERS
from schedulers.base import SCHEDULERS
from sim.types import BackupKind, DecisionContext, Forecast, JobState, LoadHistory, LoadLabel, Pause, Resume, Start, Throttle

# ----------------------------------------------------------------------------- forecasters

SLOW_FORECASTERS = {"lstm", "arima", "mstl", "ets"}
#: parameters that keep the heavy models to seconds on the tiny data below
TINY_PARAMS: dict[str, dict] = {
    "lstm": dict(
        window_s=6 * 3600.0, horizon_s=86_400.0, hidden=8, days=2, epochs=2, warm_epochs=1, samples_per_epoch=256, batch_size=64, seed=0
    ),
    "ets": {"fit_days": 3},
    "arima": {"fit_days": 3},
    "mstl": {"fit_days": 15},
}
#: days of history per model (MSTL's weekly season needs two weeks to be estimated)
HISTORY_DAYS: dict[str, float] = {"mstl": 17.0}
STEP_S = 3600.0
VOLUMES = 2
HORIZON = 24  # one day: seasonal lags reach past the origin within the horizon


def forecaster_params() -> list:
    return [pytest.param(n, marks=pytest.mark.slow) if n in SLOW_FORECASTERS else n for n in FORECASTERS.names()]


def needs_future(name: str) -> bool:
    """Whether the model is built with the true future (the oracle): it must see past the origin."""
    return bool(getattr(FORECASTERS.get(name), "needs_future", False))


def build_forecaster(name: str, full: LoadHistory):
    params = dict(TINY_PARAMS.get(name, {}))
    if needs_future(name):
        params["future"] = full
    return FORECASTERS.create(name, **params)


def prefix(h: LoadHistory, n: int) -> LoadHistory:
    """The first `n` steps as views of the longer arrays (as the simulator's recorder hands them out)."""
    return LoadHistory(h.step_s, h.start_epoch, h.times[:n], h.iops[:n], h.mbps[:n], h.cpu_pct[:n], h.mem_pct[:n], h.net_mbps[:n], h.kinds)


def perturbed_after(h: LoadHistory, t: int) -> LoadHistory:
    """`h` with every series changed from step `t` on (same up to `t`)."""
    out = dataclasses.replace(h, **{k: getattr(h, k).copy() for k in ("iops", "mbps", "cpu_pct", "mem_pct", "net_mbps")})
    for k in ("iops", "mbps", "net_mbps"):
        getattr(out, k)[t:] = getattr(out, k)[t:] * 50.0 + 1000.0
    out.cpu_pct[t:] = 99.0
    out.mem_pct[t:] = 95.0
    return out


@dataclasses.dataclass
class ForecastRuns:
    origins: tuple[int, int, int]  # fit origin, checked origin, a day later
    at_origin: Forecast  # forecast from the checked origin
    later: Forecast  # from a day later
    again: Forecast  # a fresh instance, same data, checked origin
    perturbed: Forecast  # data after the checked origin changed, checked origin
    perturbed_later: Forecast
    input_kept: bool  # the histories handed in were not modified


def walk(name: str, full: LoadHistory, origins: tuple[int, int, int]) -> tuple[Forecast, Forecast]:
    """Fit a fresh instance at the first origin, predict at the next two (as the service does)."""
    fit_at, t, later = origins
    model = build_forecaster(name, full)
    model.fit(prefix(full, fit_at))
    return model.predict(prefix(full, t), HORIZON), model.predict(prefix(full, later), HORIZON)


@cache
def forecast_runs(name: str, make_history) -> ForecastRuns:
    """Every forecast the checks compare, computed once per model (`make_history`: the conftest fixture)."""
    days = HISTORY_DAYS.get(name, 5.0)
    full = make_history(days=days, volumes=VOLUMES, step_s=STEP_S, seed=11)
    n = full.n_steps
    origins = (n - 48, n - 42, n - 12)  # the checked origin is 6 h after the fit, the last a day and a half later
    before = {k: getattr(full, k).copy() for k in ("times", "iops", "mbps", "cpu_pct", "mem_pct", "net_mbps")}
    at_origin, later = walk(name, full, origins)
    kept = all(np.array_equal(v, getattr(full, k)) for k, v in before.items())
    again, _ = walk(name, full, origins)
    perturbed, perturbed_later = walk(name, perturbed_after(full, origins[1]), origins)
    return ForecastRuns(origins, at_origin, later, again, perturbed, perturbed_later, kept)


def _same(a: Forecast, b: Forecast) -> bool:
    return all(np.array_equal(x, y) for x, y in ((a.mean, b.mean), (a.upper, b.upper), (a.labels, b.labels)))


@pytest.mark.parametrize("name", forecaster_params())
def test_forecast_shapes_and_bounds(name, make_history):
    r = forecast_runs(name, make_history)
    for fc, origin in ((r.at_origin, r.origins[1]), (r.later, r.origins[2])):
        assert isinstance(fc, Forecast)
        assert fc.mean.shape == (VOLUMES, HORIZON, 2), fc.mean.shape
        assert fc.upper.shape == fc.mean.shape
        assert fc.labels.shape == (VOLUMES, HORIZON)
        assert fc.horizon == HORIZON and fc.step_s == STEP_S
        assert fc.origin_t == origin * STEP_S, "origin_t is the end of the history handed in"
        assert np.all(np.isfinite(fc.mean)) and np.all(np.isfinite(fc.upper))
        assert np.all(fc.mean >= 0.0), "negative load forecast"
        assert np.all(fc.upper >= fc.mean), "upper quantile below the mean"
        lower = getattr(fc, "lower", None)
        if lower is not None:
            assert np.all(lower <= fc.mean), "lower quantile above the mean"
        assert set(np.unique(fc.labels).tolist()) <= {int(x) for x in LoadLabel}
    assert r.input_kept, "fit/predict modified the history they were handed"


@pytest.mark.parametrize("name", forecaster_params())
def test_forecast_is_deterministic(name, make_history):
    r = forecast_runs(name, make_history)
    assert _same(r.at_origin, r.again), "two fresh instances on the same data forecast differently"


@pytest.mark.parametrize("name", forecaster_params())
def test_forecast_never_sees_past_the_origin(name, make_history):
    r = forecast_runs(name, make_history)
    if needs_future(name):  # built with the true future: the perturbation must show
        assert not np.array_equal(r.at_origin.mean, r.perturbed.mean), "a model given the future did not see it"
    else:
        assert _same(r.at_origin, r.perturbed), "changing data after the origin changed the forecast from it"
    # the perturbation is there to be seen: a later origin does see it
    assert not np.array_equal(r.later.mean, r.perturbed_later.mean), "the forecast ignores the newest load"


# ----------------------------------------------------------------------------- schedulers

RUN_HOURS = 12.0
PRIOR_H = 24.0  # load seen before the run: a day, so daily seasonal lags exist from the start
_NONE, _QUEUED, _RUNNING, _PAUSED = (int(s) for s in JobState)
_KINDS = {int(k) for k in BackupKind}


def action_problems(ctx: DecisionContext, actions) -> list[str]:
    """Why each action is invalid against `ctx`, following the job state the earlier actions leave."""
    if not isinstance(actions, list):
        return [f"decide returned {type(actions).__name__}, not a list"]
    out = []
    state = np.asarray(ctx.job_state).astype(int).copy()
    n, n_tiers = ctx.volumes.n, len(ctx.tiers)
    for a in actions:
        if not isinstance(a, (Start, Throttle, Pause, Resume)):
            out.append(f"{a!r} is not an Action")
            continue
        v = a.volume
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not 0 <= v < n:
            out.append(f"{a!r}: volume not in 0..{n - 1}")
            continue
        rate = getattr(a, "rate_mbps", None)
        if rate is not None and not rate >= 0:  # NaN fails too
            out.append(f"{a!r}: rate must be None or >= 0")
        if not isinstance(a.reason, str) or not a.reason.strip():
            out.append(f"{a!r}: no reason given")
        s = int(state[v])
        if isinstance(a, Start):
            if not isinstance(a.kind, (int, np.integer)) or int(a.kind) not in _KINDS:
                out.append(f"{a!r}: unknown backup kind")
            if isinstance(a.tier, bool) or not isinstance(a.tier, (int, np.integer)) or not 0 <= a.tier < n_tiers:
                out.append(f"{a!r}: tier not in 0..{n_tiers - 1}")
            if s != _NONE:
                out.append(f"{a!r}: volume {v} already has a {JobState(s).name.lower()} job")
            state[v] = _QUEUED
        elif isinstance(a, Throttle):
            if s == _NONE:
                out.append(f"{a!r}: volume {v} has no job")
        elif isinstance(a, Pause):
            if s not in (_RUNNING, _QUEUED):
                out.append(f"{a!r}: volume {v} has no running or queued job ({JobState(s).name.lower()})")
            state[v] = _PAUSED if s == _RUNNING else s
        elif s not in (_PAUSED, _QUEUED):  # Resume
            out.append(f"{a!r}: volume {v} has no paused or queued job ({JobState(s).name.lower()})")
        elif s == _PAUSED:
            state[v] = _RUNNING
    return out


class Recorder:
    """Wraps a policy: validates each answer against its context and logs the non-empty ones."""

    def __init__(self, inner):
        self.inner = inner
        self.name = getattr(inner, "name", "")
        self.log: list[tuple[float, tuple]] = []
        self.problems: list[str] = []

    def __getattr__(self, attr: str):  # reset, summary, uses_forecasts...: the policy's own
        if attr == "inner":
            raise AttributeError(attr)
        return getattr(self.inner, attr)

    def decide(self, ctx: DecisionContext):
        actions = self.inner.decide(ctx)
        self.problems += [f"t={ctx.t:g} s: {p}" for p in action_problems(ctx, actions)]
        actions = list(actions) if actions is not None else []
        if actions:
            self.log.append((float(ctx.t), tuple(actions)))
        return actions


def forecaster_for(name: str) -> str | None:
    """The forecaster a policy runs with: none, its declared default, or seasonal naive."""
    cls = SCHEDULERS.get(name)
    if not getattr(cls, "uses_forecasts", False):
        return None
    return getattr(cls, "default_forecaster", None) or "seasonal_naive"


@dataclasses.dataclass
class PolicyRuns:
    first: Recorder
    summary: object
    fresh: Recorder  # another fresh instance, same run
    after_reset: Recorder  # the first instance again, after reset()


@cache
def policy_runs(name: str, simulate_short) -> PolicyRuns:
    """Three runs of the policy, once per policy (`simulate_short`: the conftest fixture)."""
    fc = forecaster_for(name)
    policy = SCHEDULERS.create(name)
    first = Recorder(policy)
    simulate_short(first, forecaster=fc, hours=RUN_HOURS, history_h=PRIOR_H)
    summary = getattr(policy, "summary", dict)()
    fresh = Recorder(SCHEDULERS.create(name))
    simulate_short(fresh, forecaster=fc, hours=RUN_HOURS, history_h=PRIOR_H)
    getattr(policy, "reset", lambda: None)()
    again = Recorder(policy)
    simulate_short(again, forecaster=fc, hours=RUN_HOURS, history_h=PRIOR_H)
    return PolicyRuns(first, summary, fresh, again)


def first_difference(a: Recorder, b: Recorder) -> str:
    for (ta, xa), (tb, xb) in zip(a.log, b.log):
        if (ta, xa) != (tb, xb):
            return f"at t={ta:g} s: {xa} vs t={tb:g} s: {xb}"
    return f"{len(a.log)} vs {len(b.log)} decisions with actions"


def policy_params() -> list:
    """Every registered policy; those that read forecasts (a forecaster runs beside them) are slow."""
    return [pytest.param(n, marks=pytest.mark.slow) if forecaster_for(n) else n for n in SCHEDULERS.names()]


POLICIES = policy_params()


@pytest.mark.parametrize("name", POLICIES)
def test_policy_actions_are_valid(name, simulate_short):
    r = policy_runs(name, simulate_short)
    assert not r.first.problems, "\n".join(r.first.problems[:10])
    starts = [a for _, acts in r.first.log for a in acts if isinstance(a, Start)]
    assert starts, f"no backup started in {RUN_HOURS:g} h with RPOs of 4-12 h"


@pytest.mark.parametrize("name", POLICIES)
def test_policy_is_deterministic(name, simulate_short):
    r = policy_runs(name, simulate_short)
    assert r.first.log == r.fresh.log, "two fresh instances acted differently: " + first_difference(r.first, r.fresh)


@pytest.mark.parametrize("name", POLICIES)
def test_policy_reset_then_rerun_acts_the_same(name, simulate_short):
    r = policy_runs(name, simulate_short)
    assert r.first.log == r.after_reset.log, "after reset() a rerun acted differently (reset must forget run state): " + first_difference(
        r.first, r.after_reset
    )


@pytest.mark.parametrize("name", POLICIES)
def test_policy_summary_is_json(name, simulate_short):
    s = policy_runs(name, simulate_short).summary
    assert isinstance(s, dict), f"summary() returned {type(s).__name__}"
    assert all(isinstance(k, str) for k in s), "summary keys must be strings"
    assert json.loads(json.dumps(jsonable(s))) == jsonable(s)


@pytest.mark.parametrize("name", SCHEDULERS.names())
def test_policy_answers_a_frozen_context(name, decision_context):
    policy = SCHEDULERS.create(name)
    assert getattr(policy, "name", name) == name, "the policy's name is not the name it is registered under"
    actions = policy.decide(decision_context)
    assert not action_problems(decision_context, actions), action_problems(decision_context, actions)

"""Fixtures shared by the test suite: paths, the `piop` command, small histories and runs.

- `root`: the repository root; `default_config`: `experiments/configs/default.yaml`.
- `traces_dir`: the real traces (`$PIOP_TRACES` or `../shared/traces`); skips with the
  reason when they are absent.
- `run_piop`: runs `piop` as a user would (`cli_helpers.piop`), with extra environment.
- `make_history`: a small synthetic `LoadHistory` (daily rhythm, noise, covariates).
- `simulate_short`: a short real simulation of the default config's fleet driven by any
  scheduler object, built with the experiment runner's own functions.
- `decision_context`: one `DecisionContext` taken from such a run while backups run,
  frozen (its arrays copied, its dirty bytes and history evaluated at that moment).

The `slow` marker is registered in `pyproject.toml`; `make test` runs slow tests too, on two
processes (pytest-xdist, a module to a process); the host-disk tests take turns (`host_io_turn`).
"""

from __future__ import annotations

import dataclasses
import fcntl
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
from cli_helpers import MONDAY, ROOT, piop

if TYPE_CHECKING:  # imported where used, so a test that needs none of this does not load it
    from sim.types import DecisionContext, LoadHistory

DEFAULT_CONFIG = ROOT / "experiments" / "configs" / "default.yaml"

#: modules whose tests load, measure or drop the cache of this host's disk: with several test
#: processes (`make test` runs pytest-xdist) they take turns, so one test's fio load or cache
#: drop never lands in another's measurement
HOST_IO_MODULES = ("test_agent_host.py", "test_host_calibrate.py", "test_host_record.py")


@pytest.fixture(autouse=True)
def host_io_turn(request, tmp_path_factory):
    """A host-disk test (`HOST_IO_MODULES`) holds a lock shared by all test processes while it runs."""
    if request.path.name not in HOST_IO_MODULES:
        yield
        return
    lock = tmp_path_factory.getbasetemp().parent / "piop-host-io.lock"  # the processes' common folder
    with open(lock, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def default_config() -> Path:
    return DEFAULT_CONFIG


@pytest.fixture(scope="session")
def traces_dir() -> Path:
    """The real-trace folder; the test is skipped (saying where it looked) when it is missing."""
    path = Path(os.environ.get("PIOP_TRACES", ROOT.parent / "shared" / "traces"))
    if not path.is_dir():
        pytest.skip(f"real traces not found at {path} (set PIOP_TRACES)")
    return path


@pytest.fixture
def run_piop(monkeypatch) -> Callable:
    """`run_piop(*args, cwd=None, env=None)`: `piop ARGS` in a subprocess; `env` adds variables."""

    def run(*args, cwd=None, env: dict[str, str] | None = None):
        for key, value in (env or {}).items():
            monkeypatch.setenv(key, str(value))
        return piop(*args, cwd=cwd)

    return run


def synthetic_history(
    days: float = 3.0, volumes: int = 2, step_s: float = 3600.0, seed: int = 0, noise: float = 0.1, kinds: list[str] | None = None
) -> LoadHistory:
    """A daily-periodic fleet load: volume i peaks at its own hour, scaled by i + 1, with noise."""
    from sim.types import LoadHistory

    rng = np.random.default_rng(seed)
    n = int(round(days * 86_400.0 / step_s))
    times = np.arange(n) * step_s
    tod = times[:, None] / 86_400.0
    phase = np.linspace(0.0, 1.0, volumes, endpoint=False)[None, :]
    level = (1.0 + 0.8 * np.sin(2 * np.pi * (tod + phase))) * (1.0 + np.arange(volumes))[None, :]
    level = np.maximum(level * (1.0 + noise * rng.standard_normal(level.shape)), 0.0)
    mbps = (20.0 * level).astype(np.float32)
    iops = (400.0 * level).astype(np.float32)
    cpu = np.clip(10.0 + 15.0 * level, 0.0, 100.0).astype(np.float32)
    mem = np.full_like(cpu, 50.0)
    net = (0.5 * mbps).astype(np.float32)
    kinds = kinds or [("database", "vm", "fileserver")[i % 3] for i in range(volumes)]
    return LoadHistory(step_s, MONDAY, times, iops, mbps, cpu, mem, net, kinds)


@pytest.fixture(scope="session")
def make_history() -> Callable[..., LoadHistory]:
    """`make_history(days=3, volumes=2, step_s=3600, seed=0, noise=0.1, kinds=None)`."""
    return synthetic_history


def short_run(scheduler, *, forecaster: str | None = None, hours: float = 12.0, seed: int = 1, config: Path = DEFAULT_CONFIG, **overrides):
    """Simulate `hours` of `config`'s fleet (with its prior history) under `scheduler`.

    Built like `experiments.runner.simulate`, but with a scheduler object instead of a
    name, so tests can wrap a policy. `forecaster` names the forecasting service's model.
    """
    from experiments.config import PolicyConfig, load_config
    from experiments.runner import build_fleet, build_forecasts, sim_spec, split_history
    from sim.model import Simulation

    cfg = load_config(config, {"duration_h": hours, **overrides})
    fleet, volumes, fleet_start = build_fleet(cfg, seed)
    load, start, prior = split_history(cfg, fleet, fleet_start)
    spec = sim_spec(cfg, volumes, start, seed)
    policy = PolicyConfig(policy=getattr(scheduler, "name", "") or "fixed", forecaster=forecaster)
    forecasts = build_forecasts(cfg, policy, load, prior) if forecaster else None
    return Simulation(spec, load, scheduler, forecasts=forecasts).run()


@pytest.fixture(scope="session")
def simulate_short() -> Callable:
    """`simulate_short(scheduler, forecaster=None, hours=12, seed=1, config=default.yaml, **overrides)`."""
    return short_run


def freeze_context(ctx: DecisionContext) -> DecisionContext:
    """A copy of `ctx` that no longer follows the simulation (arrays, dirty bytes, history)."""
    copies = {f.name: np.copy(v) for f in dataclasses.fields(ctx) if isinstance(v := getattr(ctx, f.name), np.ndarray)}
    dirty = tuple(np.copy(a) for a in ctx.dirty_bytes())
    history = ctx.history()
    history = dataclasses.replace(
        history, **{k: np.copy(getattr(history, k)) for k in ("times", "iops", "mbps", "cpu_pct", "mem_pct", "net_mbps")}
    )
    return dataclasses.replace(ctx, **copies, _dirty=lambda: dirty, _history=lambda: history)


class _Capture:
    """Runs the fixed policy and keeps the first context after `after_s` with a backup running."""

    def __init__(self, after_s: float):
        import schedulers

        self.inner = schedulers.SCHEDULERS.create("fixed")
        self.name = "fixed"
        self.after_s = after_s
        self.ctx: DecisionContext | None = None

    def __getattr__(self, attr: str):  # reset, summary, uses_forecasts...: the policy's own
        if attr == "inner":
            raise AttributeError(attr)
        return getattr(self.inner, attr)

    def decide(self, ctx: DecisionContext):
        from sim.types import JobState

        if self.ctx is None and ctx.t >= self.after_s and np.any(ctx.job_state == int(JobState.RUNNING)):
            self.ctx = freeze_context(ctx)
        return self.inner.decide(ctx)


@pytest.fixture(scope="session")
def decision_context() -> DecisionContext:
    """A frozen context from 3 h of the default fleet under `fixed` (after a day of prior load), taken while a backup runs."""
    cap = _Capture(after_s=3600.0)
    short_run(cap, hours=3.0, history_h=24.0)
    assert cap.ctx is not None, "no backup was running after the first hour"
    return cap.ctx

"""`piop tune`: an Optuna multi-objective study over a policy's and forecaster's settings.

The search space lives in its own YAML (see `experiments/configs/tune.yaml`), validated by
`TuneSpec` below; the experiment config it points to (`base`) stays a plain experiment.

Each trial builds the base config with the tuned policy's settings overridden, simulates
it for the study's seeds (no run folders: fast), and returns one value per objective
(default: minimise IO-weighted mean production impact and minimise the % of volume-time
outside the RPO). Constraints (e.g. RTO compliance >= 99 %, storage cost <= X) are set
with `trial.set_constraint` (Optuna 5's replacement of the deprecated `constraints_func`):
the sampler prefers feasible trials and the Pareto front holds only feasible ones.

Storage is an Optuna RDB URL. By default SQLite at
`results/<experiment>/tune/<study>.db` (resumable: the study is loaded if it exists and
`n_trials` is the study's *total* of completed trials, so a rerun does what is missing).
Any PostgreSQL / MySQL URL lets many machines work on one study: run the same
`piop tune SPEC --storage URL` on each. `--jobs N` runs N worker processes on this
machine, all on the same storage.

After optimising, `results/<experiment>/tune/<study>/` receives `trials.parquet`,
`pareto.parquet`, `pareto.png`, `summary.json`, and the chosen trial as `best.yaml`
(a ready-to-run experiment config: the base policies plus `<policy>-tuned`, at the
study's seeds and duration, so `piop run best.yaml` reproduces the trial) and
`best.json`. The chosen trial is the Pareto-front trial with the smallest weighted sum of
objectives, each scaled to [0, 1] over the front (a balanced compromise).
"""

from __future__ import annotations

import math
import os
import re
import socket
import time
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from experiments.config import ExperimentConfig, PolicyConfig, _format_validation, load_config, parse_config, read_yaml
from common.errors import UserError
from experiments.results import write_json

DERIVED = {
    "rpo_violation_pct": lambda f: 100.0 - f["rpo_compliance_pct"],
    "rto_violation_pct": lambda f: 100.0 - f["rto_compliance_pct"],
}
_KEY = re.compile(r"^(forecaster|(params|forecaster_params|retrain)\.[A-Za-z_][A-Za-z0-9_]*)$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ParamSpec(_Strict):
    """One dimension of the search space."""

    type: Literal["float", "int", "categorical"] = "float"
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = Field(None, gt=0)
    choices: list[Any] | None = None
    when: dict[str, Any] = Field(default_factory=dict)  # only suggested when these keys have these values

    @model_validator(mode="after")
    def _range(self) -> ParamSpec:
        if self.type == "categorical":
            if not self.choices:
                raise ValueError("a categorical parameter needs a non-empty 'choices' list")
            if self.low is not None or self.high is not None:
                raise ValueError("a categorical parameter takes 'choices', not 'low'/'high'")
            return self
        if self.low is None or self.high is None:
            raise ValueError(f"a {self.type} parameter needs 'low' and 'high'")
        if self.low > self.high:
            raise ValueError(f"low ({self.low:g}) is above high ({self.high:g})")
        if self.log and self.low <= 0:
            raise ValueError(f"a log-scaled range needs low > 0, not {self.low:g}")
        if self.log and self.step is not None:
            raise ValueError("'step' cannot be combined with 'log'")
        if self.type == "int" and (self.low != int(self.low) or self.high != int(self.high)):
            raise ValueError("an int parameter needs whole-number 'low' and 'high'")
        return self


class ObjectiveSpec(_Strict):
    metric: str
    direction: Literal["minimize", "maximize"] = "minimize"
    weight: float = Field(1.0, gt=0)  # in choosing the compromise trial on the front


class ConstraintSpec(_Strict):
    metric: str
    max: float | None = None
    min: float | None = None

    @model_validator(mode="after")
    def _bound(self) -> ConstraintSpec:
        if self.max is None and self.min is None:
            raise ValueError("a constraint needs 'max' and/or 'min'")
        if self.max is not None and self.min is not None and self.min > self.max:
            raise ValueError(f"min ({self.min:g}) is above max ({self.max:g})")
        return self

    @property
    def name(self) -> str:
        parts = ([f">={self.min:g}"] if self.min is not None else []) + ([f"<={self.max:g}"] if self.max is not None else [])
        return f"{self.metric} {' '.join(parts)}"

    def violation(self, value: float) -> float:
        """<= 0 when met (Optuna's convention)."""
        v = -math.inf
        if self.max is not None:
            v = max(v, value - self.max)
        if self.min is not None:
            v = max(v, self.min - value)
        return float(v)


def _default_objectives() -> list[ObjectiveSpec]:
    return [ObjectiveSpec(metric="impact_io_mean"), ObjectiveSpec(metric="rpo_violation_pct")]


class TuneSpec(_Strict):
    base: str  # experiment config (relative to this file's folder, else to the working folder)
    policy: str | PolicyConfig | None = None  # a label or policy kind of the base config, or a policy entry; default: the first
    study: str | None = Field(None, pattern=r"^[A-Za-z0-9_.-]+$")
    seeds: list[int] | None = Field(None, min_length=1)  # default: the base config's
    duration_h: float | None = Field(None, gt=0)  # default: the base config's
    n_trials: int = Field(50, ge=1)  # completed trials the study should hold in total
    sampler: Literal["tpe", "nsga2", "random"] = "tpe"
    sampler_seed: int = 0
    population_size: int | None = Field(None, ge=2)  # nsga2
    startup_trials: int | None = Field(None, ge=1)  # tpe: random trials before modelling
    storage: str | None = None
    params: dict[str, ParamSpec] = Field(min_length=1)
    objectives: list[ObjectiveSpec] = Field(default_factory=_default_objectives, min_length=1)
    constraints: list[ConstraintSpec] = Field(default_factory=list)

    @field_validator("params")
    @classmethod
    def _keys(cls, v: dict[str, ParamSpec]) -> dict[str, ParamSpec]:
        for key, p in v.items():
            if not _KEY.match(key):
                raise ValueError(f"{key!r}: a tuned setting is 'forecaster' or 'params.X', 'forecaster_params.X' or 'retrain.X'")
            for other in p.when:
                if not _KEY.match(other):
                    raise ValueError(f"{key}.when: {other!r} is not a policy setting")
        return v

    @model_validator(mode="after")
    def _metrics(self) -> TuneSpec:
        names = [o.metric for o in self.objectives]
        if len(set(names)) != len(names):
            raise ValueError(f"objectives name a metric twice: {names}")
        return self


# --------------------------------------------------------------------------- loading


@dataclass
class Tuning:
    """A validated tuning set-up: the spec, the base config and the policy tuned."""

    spec: TuneSpec
    path: Path
    base: ExperimentConfig  # with the study's duration and seeds
    policy: PolicyConfig  # untuned
    study: str
    seeds: list[int]

    @property
    def directions(self) -> list[str]:
        return [o.direction for o in self.spec.objectives]

    @property
    def objective_names(self) -> list[str]:
        return [o.metric for o in self.spec.objectives]

    def out_dir(self, out_root: Path) -> Path:
        return Path(out_root) / self.base.name / "tune" / self.study

    def default_storage(self, out_root: Path) -> str:
        db = (Path(out_root) / self.base.name / "tune" / f"{self.study}.db").resolve()
        return f"sqlite:///{db}"


def load_tuning(path: str | Path, trials: int | None = None, study: str | None = None, duration_h: float | None = None) -> Tuning:
    path = Path(path)
    data = read_yaml(path, "tuning YAML")
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a mapping of settings at the top level")
    try:
        spec = TuneSpec.model_validate(data)
    except ValidationError as err:
        raise UserError(_format_validation(path, err)) from None
    updates = {k: v for k, v in {"n_trials": trials, "study": study, "duration_h": duration_h}.items() if v is not None}
    if updates:
        if trials is not None and trials < 1:
            raise UserError(f"--trials: must be at least 1, not {trials}")
        if duration_h is not None and duration_h <= 0:
            raise UserError(f"--duration-h: must be > 0, not {duration_h:g}")
        if study is not None and not re.match(r"^[A-Za-z0-9_.-]+$", study):
            raise UserError(f"--study: {study!r}: use letters, digits, '_', '.', '-'")
        spec = spec.model_copy(update=updates)
    base_path = Path(spec.base)
    if not base_path.is_absolute():
        beside = path.parent / base_path
        base_path = beside if beside.exists() else base_path
    base = load_config(base_path)
    if isinstance(spec.policy, PolicyConfig):
        policy = spec.policy
    else:
        labels = {p.label: p for p in base.policies}
        if spec.policy is None:
            policy = base.policies[0]
        elif spec.policy in labels:
            policy = labels[spec.policy]
        elif any(p.policy == spec.policy for p in base.policies):  # a policy kind: its first entry
            policy = next(p for p in base.policies if p.policy == spec.policy)
        else:
            raise UserError(f"{path}: policy: {spec.policy!r} is not in {base_path}; it has: {', '.join(labels)}")
    seeds = list(spec.seeds or base.seed_list)
    dump = base.model_dump(mode="json")
    dump.update({"seeds": seeds, "seed": seeds[0], "policies": [policy.model_dump(mode="json", exclude_defaults=True)]})
    if spec.duration_h is not None:
        dump["duration_h"] = spec.duration_h
    base = parse_config(dump, base_path)
    policy = base.policies[0]
    tuning = Tuning(spec, path, base, policy, spec.study or f"{base.name}-{policy.label}", seeds)
    _check_space(tuning)
    return tuning


def _set(d: dict, key: str, value: Any) -> None:
    if key == "forecaster":
        d["forecaster"] = value
        return
    section, name = key.split(".", 1)
    d.setdefault(section, {})
    d[section] = {**(d[section] or {}), name: value}


def _get(d: dict, key: str) -> Any:
    if key == "forecaster":
        return d.get("forecaster")
    section, name = key.split(".", 1)
    return (d.get(section) or {}).get(name)


def policy_with(policy: PolicyConfig, values: dict[str, Any], name: str | None = None) -> PolicyConfig:
    d = policy.model_dump(mode="json")
    for k, v in values.items():
        _set(d, k, v)
    if name is not None:
        d["name"] = name
    return PolicyConfig.model_validate(d)


def config_with(t: Tuning, values: dict[str, Any]) -> ExperimentConfig:
    """The base config with only the tuned policy, its settings set to `values`."""
    dump = t.base.model_dump(mode="json")
    dump["policies"] = [policy_with(t.policy, values).model_dump(mode="json")]
    return parse_config(dump, f"{t.path} (trial settings)")


def _active(p: ParamSpec, values: dict[str, Any], policy: dict) -> bool:
    return all((values[k] if k in values else _get(policy, k)) == want for k, want in p.when.items())


def _check_space(t: Tuning) -> None:
    """Build the config at the range's ends and each choice: unknown settings fail now, by name."""
    pdict = t.policy.model_dump(mode="json")
    corners: list[dict[str, Any]] = []
    for end in ("low", "high"):
        values: dict[str, Any] = {}
        for key, p in t.spec.params.items():
            if not _active(p, values, pdict):
                continue
            if p.type == "categorical":
                values[key] = p.choices[0] if end == "low" else p.choices[-1]
            else:
                v = getattr(p, end)
                values[key] = int(v) if p.type == "int" else float(v)
        corners.append(values)
    for key, p in t.spec.params.items():
        for c in p.choices or []:
            corners.append({**corners[0], key: c})
    for values in corners:
        try:
            cfg = config_with(t, values)
        except UserError as err:
            raise UserError(f"{t.path}: params: the search space gives an invalid policy: {str(err).split(': ', 1)[-1]}") from None
        pol = cfg.policies[0]
        if pol.forecaster is not None and pol.forecaster != "oracle":
            from forecasters.base import FORECASTERS

            try:
                FORECASTERS.create(pol.forecaster, **pol.forecaster_params)
            except (TypeError, ValueError) as err:
                raise UserError(f"{t.path}: params: forecaster {pol.forecaster!r} rejects {pol.forecaster_params}: {err}") from None


# --------------------------------------------------------------------------- evaluation


def run_metrics(cfg: ExperimentConfig, seeds: Sequence[int]) -> dict[str, float]:
    """Mean fleet metrics (plus derived ones) of the config's first policy over `seeds`."""
    from experiments.runner import RunPlan, simulate

    rows = []
    for s in seeds:
        result, _ = simulate(RunPlan(cfg, cfg.policies[0], int(s)))
        f = {k: float(v) for k, v in result.fleet.items() if isinstance(v, (int, float, np.number)) and not isinstance(v, bool)}
        for k, fn in DERIVED.items():
            try:
                f[k] = float(fn(f))
            except KeyError:
                pass
        rows.append(f)
    keys = set.intersection(*(set(r) for r in rows))
    return {k: float(np.mean([r[k] for r in rows])) for k in sorted(keys)}


def _metric(metrics: dict[str, float], name: str) -> float:
    if name not in metrics:
        raise UserError(f"tuning: metric {name!r} is not reported by runs; known: {', '.join(sorted(metrics))}")
    return metrics[name]


def suggest(trial, t: Tuning) -> dict[str, Any]:
    values: dict[str, Any] = {}
    pdict = t.policy.model_dump(mode="json")
    for key, p in t.spec.params.items():
        if not _active(p, values, pdict):
            continue
        if p.type == "categorical":
            values[key] = trial.suggest_categorical(key, p.choices)
        elif p.type == "int":
            values[key] = trial.suggest_int(key, int(p.low), int(p.high), step=int(p.step or 1), log=p.log)
        else:
            values[key] = trial.suggest_float(key, float(p.low), float(p.high), step=p.step, log=p.log)
    return values


def make_objective(t: Tuning) -> Callable:
    worker = f"{socket.gethostname()}:{os.getpid()}"

    def objective(trial):
        values = suggest(trial, t)
        cfg = config_with(t, values)
        t0 = time.perf_counter()
        try:
            metrics = run_metrics(cfg, t.seeds)
        except UserError:
            raise
        except Exception as err:  # noqa: BLE001 - a setting the policy cannot run with: a failed trial, not a failed study
            trial.set_user_attr("error", f"{type(err).__name__}: {err}")
            trial.set_user_attr("worker", worker)
            return [math.nan] * len(t.spec.objectives)
        trial.set_user_attr("metrics", metrics)
        trial.set_user_attr("settings", values)
        trial.set_user_attr("worker", worker)
        trial.set_user_attr("wall_s", time.perf_counter() - t0)
        for c in t.spec.constraints:
            trial.set_constraint(c.name, c.violation(_metric(metrics, c.metric)))
        return [_metric(metrics, o.metric) for o in t.spec.objectives]

    return objective


# --------------------------------------------------------------------------- storage and study


def _quiet_optuna() -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    warnings.filterwarnings("ignore", category=FutureWarning, module="optuna")


def safe_url(url: str) -> str:
    """The URL with any password hidden, for messages."""
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", url)


def open_storage(url: str, retries: int = 5):
    """An Optuna RDB storage, or a one-line UserError naming the URL."""
    import optuna

    _quiet_optuna()
    scheme = url.split(":", 1)[0].lower() if ":" in url else ""
    if not scheme or "://" not in url:
        raise UserError(f"storage {safe_url(url)!r}: not a database URL (e.g. sqlite:///path.db, postgresql://user@host/db)")
    kwargs: dict[str, Any] = {}
    if scheme.startswith("sqlite"):
        path = url.split(":///", 1)[1] if ":///" in url else ""
        if path and path != ":memory:":
            parent = Path(path).parent
            if not parent.is_dir():
                raise UserError(f"storage {safe_url(url)!r}: folder {parent} does not exist")
        kwargs = {"connect_args": {"timeout": 120}}
    elif scheme.startswith(("postgresql", "mysql")):
        kwargs = {"pool_pre_ping": True, "connect_args": {"connect_timeout": 10}}
    last: Exception | None = None
    for attempt in range(retries):
        try:
            return optuna.storages.RDBStorage(url, engine_kwargs=kwargs, heartbeat_interval=60, grace_period=300)
        except ModuleNotFoundError as err:
            raise UserError(f"storage {safe_url(url)!r}: its database driver is not installed ({err.name})") from None
        except Exception as err:  # noqa: BLE001 - sqlalchemy / driver errors, worded below
            last = err
            msg = str(err).lower()
            if (scheme.startswith("sqlite") and "already exists" in msg) or "locked" in msg:
                time.sleep(0.2 * (attempt + 1))  # two processes creating the schema at once
                continue
            break
    first = str(last).strip().splitlines()[0] if last is not None and str(last).strip() else type(last).__name__
    if "Failed to import DB access module" in first:
        raise UserError(f"storage {safe_url(url)!r}: its database driver is not installed (PostgreSQL: psycopg2, MySQL: pymysql)")
    first = re.sub(r"^\([\w.]+\)\s*", "", first)
    raise UserError(f"storage {safe_url(url)!r} is unreachable: {first[:200]}")


def make_sampler(t: Tuning, seed: int):
    import optuna

    _quiet_optuna()
    s = t.spec
    if s.sampler == "nsga2":
        pop = s.population_size or max(4, min(50, s.n_trials // 5))
        return optuna.samplers.NSGAIISampler(population_size=pop, seed=seed)
    if s.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    startup = s.startup_trials or max(3, min(10, s.n_trials // 5))
    return optuna.samplers.TPESampler(n_startup_trials=startup, multivariate=True, constant_liar=True, seed=seed)


def open_study(t: Tuning, storage, sampler=None, create: bool = True):
    import optuna

    try:
        if create:
            study = optuna.create_study(study_name=t.study, storage=storage, sampler=sampler, directions=t.directions, load_if_exists=True)
        else:
            study = optuna.load_study(study_name=t.study, storage=storage, sampler=sampler)
    except KeyError:
        raise UserError(f"study {t.study!r} does not exist in that storage") from None
    stored = study.user_attrs.get("objectives")
    if stored is None:
        study.set_user_attr("objectives", [o.model_dump() for o in t.spec.objectives])
        study.set_user_attr("spec", t.spec.model_dump(mode="json"))
        study.set_user_attr("experiment", t.base.name)
    elif [o["metric"] for o in stored] != t.objective_names or [d.name.lower() for d in study.directions] != t.directions:
        raise UserError(
            f"study {t.study!r} already exists with objectives {[o['metric'] for o in stored]}; "
            f"these are {t.objective_names}: use --study to start another"
        )
    return study


def _stop_if_all_fail(study, trial) -> None:
    """Abort when trials only fail (a bug or a broken set-up), naming the first error."""
    from optuna.trial import TrialState

    if trial.state != TrialState.FAIL or _complete(study):
        return
    failed = study.get_trials(deepcopy=False, states=(TrialState.FAIL,))
    if len(failed) >= 3:
        err = next((f.user_attrs["error"] for f in failed if "error" in f.user_attrs), "see the log")
        raise UserError(f"study {study.study_name!r}: the first {len(failed)} trials all failed; first error: {err}")


def _complete(study) -> list:
    from optuna.trial import TrialState

    return study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))


def _optimize(t: Tuning, url: str, n_run: int, worker_index: int) -> int:
    """Run up to `n_run` trials (stopping once the study holds n_trials completed)."""
    from optuna.study import MaxTrialsCallback
    from optuna.trial import TrialState

    storage = open_storage(url)
    study = open_study(t, storage, create=True)
    seed = t.spec.sampler_seed + 7919 * worker_index + len(study.trials)
    study.sampler = make_sampler(t, seed)
    before = len(_complete(study))
    if before >= t.spec.n_trials:
        return 0
    study.optimize(
        make_objective(t), n_trials=n_run, gc_after_trial=False,
        callbacks=[MaxTrialsCallback(t.spec.n_trials, states=(TrialState.COMPLETE,)), _stop_if_all_fail],
    )
    return n_run


def _worker(tune_path: str, overrides: dict, url: str, n_run: int, worker_index: int) -> int:
    from experiments.compare import _worker_init

    _worker_init()
    t = load_tuning(tune_path, **overrides)
    return _optimize(t, url, n_run, worker_index)


@dataclass
class TuneOutcome:
    tuning: Tuning
    url: str
    trials: pd.DataFrame  # every trial: number, state, objectives, settings, metrics, feasible, pareto
    front: pd.DataFrame
    chosen: dict | None
    untuned: dict[str, float] | None
    improvement: list[dict] = field(default_factory=list)
    out_dir: Path | None = None
    new_trials: int = 0

    def to_json(self) -> dict:
        return {
            "study": self.tuning.study,
            "storage": safe_url(self.url),
            "experiment": self.tuning.base.name,
            "policy": self.tuning.policy.label,
            "seeds": self.tuning.seeds,
            "duration_h": self.tuning.base.duration_h,
            "objectives": [o.model_dump() for o in self.tuning.spec.objectives],
            "constraints": [c.model_dump() | {"name": c.name} for c in self.tuning.spec.constraints],
            "n_trials": int((self.trials["state"] == "COMPLETE").sum()) if not self.trials.empty else 0,
            "new_trials": self.new_trials,
            "failed_trials": int((self.trials["state"] == "FAIL").sum()) if not self.trials.empty else 0,
            "pareto": self.front.to_dict(orient="records"),
            "chosen": self.chosen,
            "untuned": self.untuned,
            "improvement": self.improvement,
            "out_dir": str(self.out_dir) if self.out_dir else None,
        }


def tune(
    tune_path: str | Path,
    trials: int | None = None,
    jobs: int = 1,
    storage: str | None = None,
    study: str | None = None,
    duration_h: float | None = None,
    out_root: Path = Path("results"),
    on_progress: Callable[[int, int], None] | None = None,
) -> TuneOutcome:
    """Optimise (resuming the study), then write the front, plot and chosen config."""
    if jobs < 1:
        raise UserError(f"--jobs: must be at least 1, not {jobs}")
    overrides = {"trials": trials, "study": study, "duration_h": duration_h}
    t = load_tuning(tune_path, **overrides)
    url = storage or t.spec.storage
    if url is None:
        url = t.default_storage(out_root)
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    st = open_storage(url)
    study_obj = open_study(t, st, create=True)
    if "untuned" not in study_obj.user_attrs:  # the reference the tuned policy is judged against
        study_obj.set_user_attr("untuned", run_metrics(config_with(t, {}), t.seeds))
    done_before = len(_complete(study_obj))
    todo = max(0, t.spec.n_trials - done_before)
    target = t.spec.n_trials
    if on_progress:
        on_progress(done_before, target)
    if todo:
        if jobs <= 1 or todo == 1:
            from optuna.study import MaxTrialsCallback
            from optuna.trial import TrialState

            study_obj.sampler = make_sampler(t, t.spec.sampler_seed + len(study_obj.trials))
            cbs = [MaxTrialsCallback(target, states=(TrialState.COMPLETE,)), _stop_if_all_fail]
            if on_progress:
                cbs.append(lambda s, _tr: on_progress(len(_complete(s)), target))
            study_obj.optimize(make_objective(t), n_trials=todo, gc_after_trial=False, callbacks=cbs)
        else:
            n = min(jobs, todo)
            shares = [todo // n + (1 if i < todo % n else 0) for i in range(n)]
            kw = {k: v for k, v in overrides.items() if v is not None}
            with ProcessPoolExecutor(max_workers=n, mp_context=get_context("spawn")) as pool:
                futs = [pool.submit(_worker, str(tune_path), kw, url, share, i + 1) for i, share in enumerate(shares)]
                pending = set(futs)
                while pending:
                    _, pending = wait(pending, timeout=1.0)
                    if on_progress:
                        on_progress(len(_complete(study_obj)), target)
                for f in futs:
                    f.result()  # re-raise a worker's error (UserError stays one line)
    study_obj = open_study(t, st, create=False)
    outcome = summarise_study(t, study_obj, url)
    outcome.new_trials = len(outcome.trials[outcome.trials["state"] == "COMPLETE"]) - done_before if not outcome.trials.empty else 0
    export(outcome, t.out_dir(out_root))
    return outcome


# --------------------------------------------------------------------------- the front


def trials_frame(t: Tuning, study) -> pd.DataFrame:
    rows = []
    for tr in study.get_trials(deepcopy=False):
        row: dict[str, Any] = {"number": tr.number, "state": tr.state.name, "worker": tr.user_attrs.get("worker")}
        for i, name in enumerate(t.objective_names):
            row[name] = tr.values[i] if tr.values is not None and i < len(tr.values) else math.nan
        cons = tr.constraints or {}
        row["violation"] = float(sum(max(0.0, v) for v in cons.values())) if cons else 0.0
        row["feasible"] = tr.state.name == "COMPLETE" and all(v <= 0 for v in cons.values())
        for k, v in tr.params.items():
            row[f"param:{k}"] = v
        for k, v in (tr.user_attrs.get("metrics") or {}).items():
            row[f"metric:{k}"] = v
        row["wall_s"] = tr.user_attrs.get("wall_s")
        row["error"] = tr.user_attrs.get("error")
        rows.append(row)
    return pd.DataFrame(rows)


def pareto_mask(values: np.ndarray, directions: Sequence[str]) -> np.ndarray:
    """Non-dominated rows of `values` [n, k] (minimising after flipping 'maximize')."""
    sign = np.array([1.0 if d == "minimize" else -1.0 for d in directions])
    v = values * sign
    n = len(v)
    keep = np.ones(n, bool)
    for i in range(n):
        dominated = np.all(v <= v[i], axis=1) & np.any(v < v[i], axis=1)
        if dominated.any():
            keep[i] = False
    return keep


def choose(front: pd.DataFrame, t: Tuning) -> int | None:
    """Index (in `front`) of the balanced compromise: min weighted sum of objectives scaled to [0, 1]."""
    if front.empty:
        return None
    score = np.zeros(len(front))
    for o in t.spec.objectives:
        x = front[o.metric].to_numpy(float)
        if o.direction == "maximize":
            x = -x
        span = x.max() - x.min()
        score += o.weight * ((x - x.min()) / span if span > 0 else 0.0)
    order = np.lexsort((front["number"].to_numpy(), score))
    return int(order[0])


def summarise_study(t: Tuning, study, url: str) -> TuneOutcome:
    df = trials_frame(t, study)
    untuned = study.user_attrs.get("untuned")
    if df.empty or not (df["state"] == "COMPLETE").any():
        return TuneOutcome(t, url, df, pd.DataFrame(), None, untuned)
    df["pareto"] = False
    feas = df[df["feasible"]]
    if not feas.empty:
        mask = pareto_mask(feas[t.objective_names].to_numpy(float), t.directions)
        df.loc[feas.index[mask], "pareto"] = True
    front = df[df["pareto"]].sort_values(t.objective_names[0]).reset_index(drop=True)
    ci = choose(front, t)
    chosen = None
    improvement = []
    if ci is not None:
        row = front.iloc[ci]
        tr = study.trials[int(row["number"])]
        chosen = {
            "number": int(row["number"]),
            "objectives": {n: float(row[n]) for n in t.objective_names},
            "settings": tr.user_attrs.get("settings") or dict(tr.params),
            "metrics": tr.user_attrs.get("metrics") or {},
        }
        if untuned:
            for o in t.spec.objectives:
                u, c = untuned.get(o.metric), chosen["objectives"][o.metric]
                if u is None:
                    continue
                d = c - u
                better = (d < 0) if o.direction == "minimize" else (d > 0)
                improvement.append({
                    "metric": o.metric, "direction": o.direction, "untuned": u, "tuned": c, "diff": d,
                    "rel_pct": 100.0 * d / abs(u) if u else None, "better": bool(better) if d != 0 else None,
                })
    return TuneOutcome(t, url, df, front, chosen, untuned, improvement)


def best_config(t: Tuning, settings: dict[str, Any]) -> ExperimentConfig:
    """Ready to run: the untuned policy and `<label>-tuned`, at the study's seeds and duration."""
    dump = t.base.model_dump(mode="json")
    tuned = policy_with(t.policy, settings, name=f"{t.policy.label}-tuned")
    dump["name"] = f"{t.base.name}-tuned"
    dump["description"] = f"{t.policy.label} tuned by study {t.study!r} ({', '.join(t.objective_names)})"
    dump["policies"] = [t.policy.model_dump(mode="json", exclude_defaults=True), tuned.model_dump(mode="json", exclude_defaults=True)]
    return parse_config(dump, "best.yaml")


def export(o: TuneOutcome, out_dir: Path) -> None:
    from experiments.report import pareto_png

    out_dir.mkdir(parents=True, exist_ok=True)
    t = o.tuning
    if not o.trials.empty:
        o.trials.to_parquet(out_dir / "trials.parquet", index=False)
    if not o.front.empty:
        o.front.to_parquet(out_dir / "pareto.parquet", index=False)
    if o.chosen is not None:
        cfg = best_config(t, o.chosen["settings"])
        head = (
            f"# chosen trial {o.chosen['number']} of study {t.study!r} ({safe_url(o.url)})\n"
            f"# objectives: {', '.join(f'{k} = {v:.6g}' for k, v in o.chosen['objectives'].items())}\n"
            f"# run it: piop run {out_dir / 'best.yaml'}\n"
        )
        dump = cfg.model_dump(mode="json") | {"policies": [p.model_dump(mode="json", exclude_defaults=True) for p in cfg.policies]}
        text = head + yaml.safe_dump(dump, sort_keys=False)
        tmp = out_dir / ".best.yaml.tmp"
        tmp.write_text(text)
        os.replace(tmp, out_dir / "best.yaml")
        write_json(out_dir / "best.json", o.chosen | {"policy": f"{t.policy.label}-tuned", "config": str(out_dir / "best.yaml")})
    if not o.trials.empty and (o.trials["state"] == "COMPLETE").any():
        pareto_png(o.trials, [(ob.metric, ob.direction) for ob in t.spec.objectives], out_dir / "pareto.png",
                   chosen=None if o.chosen is None else o.chosen["number"], untuned=o.untuned, title=f"study {t.study}: {t.policy.label} on {t.base.name}")
    o.out_dir = out_dir
    write_json(out_dir / "summary.json", o.to_json())

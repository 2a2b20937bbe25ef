"""A validated tuning set-up: the spec read, its base config loaded, the tuned policy chosen,
and the search space checked at its corners before any trial runs."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from common.errors import UserError
from experiments.config import ExperimentConfig, PolicyConfig, format_validation, load_config, parse_config, read_yaml
from experiments.runner import needs_future
from experiments.tune.patch import config_with, is_active
from experiments.tune.spec import TuneSpec
from experiments.tune.storage import Liveness


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

    def liveness(self) -> Liveness:
        """How this study's trials whose process died are noticed and retried."""
        s = self.spec
        return Liveness(s.heartbeat_s, s.grace_s or 5 * s.heartbeat_s, s.trial_retries)

    def default_storage(self, out_root: Path) -> str:
        db = (Path(out_root) / self.base.name / "tune" / f"{self.study}.db").resolve()
        return f"sqlite:///{db}"


def _read_spec(path: Path, trials: int | None, study: str | None, duration_h: float | None) -> TuneSpec:
    """The spec of `path` with the command line's overrides applied (each checked)."""
    data = read_yaml(path, "tuning YAML")
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a mapping of settings at the top level")
    try:
        spec = TuneSpec.model_validate(data)
    except ValidationError as err:
        raise UserError(format_validation(path, err)) from None
    updates = {k: v for k, v in {"n_trials": trials, "study": study, "duration_h": duration_h}.items() if v is not None}
    if updates:
        if trials is not None and trials < 1:
            raise UserError(f"--trials: must be at least 1, not {trials}")
        if duration_h is not None and duration_h <= 0:
            raise UserError(f"--duration-h: must be > 0, not {duration_h:g}")
        if study is not None and not re.match(r"^[A-Za-z0-9_.-]+$", study):
            raise UserError(f"--study: {study!r}: use letters, digits, '_', '.', '-'")
        spec = spec.model_copy(update=updates)
    return spec


def _tuned_policy(spec: TuneSpec, base: ExperimentConfig, path: Path, base_path: Path) -> PolicyConfig:
    """The policy entry tuned: given inline, or a label or policy kind of the base config."""
    if isinstance(spec.policy, PolicyConfig):
        return spec.policy
    labels = {p.label: p for p in base.policies}
    if spec.policy is None:
        return base.policies[0]
    if spec.policy in labels:
        return labels[spec.policy]
    if any(p.policy == spec.policy for p in base.policies):  # a policy kind: its first entry
        return next(p for p in base.policies if p.policy == spec.policy)
    raise UserError(f"{path}: policy: {spec.policy!r} is not in {base_path}; it has: {', '.join(labels)}")


def load_tuning(path: str | Path, trials: int | None = None, study: str | None = None, duration_h: float | None = None) -> Tuning:
    path = Path(path)
    spec = _read_spec(path, trials, study, duration_h)
    base_path = Path(spec.base)
    if not base_path.is_absolute():
        beside = path.parent / base_path
        base_path = beside if beside.exists() else base_path
    base = load_config(base_path)
    policy = _tuned_policy(spec, base, path, base_path)
    seeds = list(spec.seeds or base.seed_list)
    dump = base.model_dump(mode="json")
    dump.update({"seeds": seeds, "seed": seeds[0], "policies": [policy.model_dump(mode="json", exclude_defaults=True)]})
    if spec.duration_h is not None:
        dump["duration_h"] = spec.duration_h
    base = parse_config(dump, base_path)
    policy = base.policies[0]
    tuning = Tuning(spec, path, base, policy, spec.study or f"{base.name}-{policy.label}", seeds)
    check_space(tuning)
    check_metrics(tuning)
    return tuning


def known_metrics(t: Tuning) -> set[str]:
    """The metrics a trial reports: those of a run of the tuned policy (its forecaster
    included) on one small volume for two decision (or record) periods, plus the derived ones."""
    from experiments.runner import RunPlan, simulate
    from experiments.tune.objective import DERIVED

    dump = t.base.model_dump(mode="json")
    dump.update(
        {
            "duration_h": 2 * max(t.base.decision_s, t.base.record_s) / 3600.0,
            "history_h": 0.0,
            "initial_full_spread_h": 0.0,
            "seeds": None,
            "fleet": [{"workload": "constant", "count": 1, "used_gb": 1.0}],
            "policies": [t.policy.model_dump(mode="json")],
        }
    )
    cfg = parse_config(dump, f"{t.path} (metric check)")
    result, _ = simulate(RunPlan(cfg, cfg.policies[0], t.seeds[0]))
    numeric = {k for k, v in result.fleet.items() if isinstance(v, int | float) and not isinstance(v, bool)}
    return numeric | set(DERIVED)


def check_metrics(t: Tuning) -> None:
    """Every objective and constraint names a metric the runs report: a typo fails now, not
    after the first trial (and is never stored in the study)."""
    named = [(f"objectives.{i}.metric", o.metric) for i, o in enumerate(t.spec.objectives)]
    named += [(f"constraints.{i}.metric", c.metric) for i, c in enumerate(t.spec.constraints)]
    known = known_metrics(t)
    for where, metric in named:
        if metric not in known:
            raise UserError(f"{t.path}: {where}: unknown metric {metric!r}; runs report: {', '.join(sorted(known))}")


def check_space(t: Tuning) -> None:
    """Build the config at the range's ends and each choice: unknown settings fail now, by name."""
    pdict = t.policy.model_dump(mode="json")
    corners: list[dict[str, Any]] = []
    for end in ("low", "high"):
        values: dict[str, Any] = {}
        for key, p in t.spec.params.items():
            if not is_active(p, values, pdict):
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
        if pol.forecaster is not None and not needs_future(pol.forecaster):  # the true future exists only in a run
            from forecasters.base import FORECASTERS

            try:
                FORECASTERS.create(pol.forecaster, **pol.forecaster_params)
            except (TypeError, ValueError) as err:
                raise UserError(f"{t.path}: params: forecaster {pol.forecaster!r} rejects {pol.forecaster_params}: {err}") from None

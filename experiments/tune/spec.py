"""The tuning YAML's schema: the search space, the objectives and the constraints.

A tuned setting is a key of the policy entry: `forecaster`, `params.X`,
`forecaster_params.X` or `retrain.X`; a parameter may be suggested only `when` other
settings have given values.
"""

from __future__ import annotations

import math
import re
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from common.strict import Strict
from experiments.config import PolicyConfig

#: what a tuned setting may name
KEY_PATTERN = re.compile(r"^(forecaster|(params|forecaster_params|retrain)\.[A-Za-z_][A-Za-z0-9_]*)$")


class ParamSpec(Strict):
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


class ObjectiveSpec(Strict):
    metric: str
    direction: Literal["minimize", "maximize"] = "minimize"
    weight: float = Field(1.0, gt=0)  # in choosing the compromise trial on the front


class ConstraintSpec(Strict):
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


def default_objectives() -> list[ObjectiveSpec]:
    return [ObjectiveSpec(metric="impact_io_mean"), ObjectiveSpec(metric="rpo_violation_pct")]


class TuneSpec(Strict):
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
    storage: str | None = None  # default: SQLite in the results folder (see experiments.tune.storage)
    heartbeat_s: int = Field(60, ge=1)  # RDB storages: a running trial's heartbeat period
    grace_s: int | None = Field(None, ge=1)  # a trial silent this long is failed and retried (default: 5 x heartbeat_s)
    trial_retries: int = Field(2, ge=0)  # times a trial whose process died is run again
    params: dict[str, ParamSpec] = Field(min_length=1)
    objectives: list[ObjectiveSpec] = Field(default_factory=default_objectives, min_length=1)
    constraints: list[ConstraintSpec] = Field(default_factory=list)

    @field_validator("params")
    @classmethod
    def _keys(cls, v: dict[str, ParamSpec]) -> dict[str, ParamSpec]:
        for key, p in v.items():
            if not KEY_PATTERN.match(key):
                raise ValueError(f"{key!r}: a tuned setting is 'forecaster' or 'params.X', 'forecaster_params.X' or 'retrain.X'")
            for other in p.when:
                if not KEY_PATTERN.match(other):
                    raise ValueError(f"{key}.when: {other!r} is not a policy setting")
        return v

    @model_validator(mode="after")
    def _metrics(self) -> TuneSpec:
        names = [o.metric for o in self.objectives]
        if len(set(names)) != len(names):
            raise ValueError(f"objectives name a metric twice: {names}")
        if self.grace_s is not None and self.grace_s <= self.heartbeat_s:
            raise ValueError(f"grace_s ({self.grace_s}) must exceed heartbeat_s ({self.heartbeat_s}): live trials would be failed")
        return self

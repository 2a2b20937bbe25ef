"""Tuned settings applied to a policy entry and to the experiment config around it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from experiments.config import ExperimentConfig, PolicyConfig, parse_config

if TYPE_CHECKING:
    from experiments.tune.spec import ParamSpec
    from experiments.tune.tuning import Tuning


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
    """`policy` with the tuned `values` (keys like `params.X`) set, optionally renamed."""
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


def is_active(p: ParamSpec, values: dict[str, Any], policy: dict) -> bool:
    """Whether `p` is suggested: its `when` settings have their values (drawn or the policy's)."""
    return all((values[k] if k in values else _get(policy, k)) == want for k, want in p.when.items())


def best_config(t: Tuning, settings: dict[str, Any]) -> ExperimentConfig:
    """Ready to run: the untuned policy and `<label>-tuned`, at the study's seeds and duration."""
    dump = t.base.model_dump(mode="json")
    tuned = policy_with(t.policy, settings, name=f"{t.policy.label}-tuned")
    dump["name"] = f"{t.base.name}-tuned"
    dump["description"] = f"{t.policy.label} tuned by study {t.study!r} ({', '.join(t.objective_names)})"
    dump["policies"] = [t.policy.model_dump(mode="json", exclude_defaults=True), tuned.model_dump(mode="json", exclude_defaults=True)]
    return parse_config(dump, "best.yaml")

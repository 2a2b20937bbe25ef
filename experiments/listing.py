"""`piop list`: what a config may name, read from the registries themselves.

Policies, forecasters, synthetic workloads, trace families and device classes, each with
its parameters and their defaults, so a user writing `params:` in a config need not read
the source. Names come from the registries (plug-ins included); parameters from, in this
order, a factory's `Params` model (dataclass or pydantic), its signature (walking base
classes a `**kw` is passed on to), or the `params` dataclass a class builds from its
keyword arguments when created with none. Trace families list their common and own
parameters (`workloads.traces.families.PARAMS`).
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from typing import Any

from common.jsonable import jsonable

#: arguments the environment passes itself (not a config's `params:`)
PLUMBING = {"self", "count", "tick_s", "seed", "id_prefix", "start_epoch", "path", "rule", "future"}
_EMPTY = inspect.Parameter.empty


def _param(name: str, default: Any, kind: Any) -> dict:
    shown = None if default is _EMPTY else jsonable(default)
    return {"name": name, "default": shown, "required": default is _EMPTY, "type": _type_name(kind)}


def _type_name(t: Any) -> str:
    if t is _EMPTY or t is None:
        return ""
    return t if isinstance(t, str) else getattr(t, "__name__", str(t)).replace("typing.", "")


def _model_params(model: Any) -> list[dict] | None:
    """Fields of a dataclass or pydantic model (class or instance), with defaults."""
    if dataclasses.is_dataclass(model):
        out = []
        for f in dataclasses.fields(model):
            if f.default is not dataclasses.MISSING:
                d = f.default
            elif f.default_factory is not dataclasses.MISSING:
                d = f.default_factory()
            else:
                d = _EMPTY
            out.append(_param(f.name, getattr(model, f.name, d) if not isinstance(model, type) else d, f.type))
        return out
    fields = getattr(model, "model_fields", None)
    if isinstance(fields, dict):
        from pydantic_core import PydanticUndefined

        return [
            _param(
                n,
                _EMPTY
                if f.default is PydanticUndefined and f.default_factory is None
                else (f.default_factory() if f.default_factory else f.default),
                f.annotation,
            )
            for n, f in fields.items()
        ]
    return None


def _signature_params(factory: Callable) -> tuple[list[dict], bool]:
    """Keyword parameters of `factory` and its bases' `__init__` while `**kw` is passed on;
    True when a `**kw` remains open at the end."""
    found: dict[str, dict] = {}
    chain = [k.__init__ for k in inspect.getmro(factory) if "__init__" in vars(k)] if isinstance(factory, type) else [factory]
    open_kw = True
    for fn in chain:
        try:
            sig = inspect.signature(fn)
        except (TypeError, ValueError):
            break
        open_kw = False
        for p in sig.parameters.values():
            if p.kind is inspect.Parameter.VAR_KEYWORD:
                open_kw = True
            elif p.kind is not inspect.Parameter.VAR_POSITIONAL and p.name not in PLUMBING:
                found.setdefault(p.name, _param(p.name, p.default, p.annotation))
        if not open_kw or fn is object.__init__:
            break
    return list(found.values()), open_kw


def parameters(factory: Callable) -> list[dict]:
    """A registered factory's configurable parameters: name, default, required, type."""
    model = getattr(factory, "Params", None)
    if model is not None and (listed := _model_params(model)) is not None:
        return listed
    params, open_kw = _signature_params(factory)
    if open_kw and not params and isinstance(factory, type):
        try:  # a class that builds its `params` dataclass from **params: its defaults
            built = factory()
        except Exception:  # noqa: BLE001 - a class that needs arguments lists none here
            return params
        listed = _model_params(getattr(built, "params", None))
        if listed is not None:
            return listed
    return params


def _doc(obj: Any) -> str:
    """The first paragraph of the object's own docstring, else of its module's."""
    import sys

    own = obj.__dict__.get("__doc__") if isinstance(obj, type) else getattr(obj, "__doc__", None)
    mod = sys.modules.get(getattr(obj, "__module__", ""), None)
    doc = inspect.cleandoc(own or getattr(mod, "__doc__", None) or "")
    return " ".join(doc.split("\n\n")[0].split())


def _entries(registry, extra: Callable[[str, Any], dict] | None = None) -> list[dict]:
    out = []
    for name in registry.names():
        factory = registry.get(name)
        row = {
            "name": name,
            "doc": _doc(factory),
            "params": parameters(factory),
            "source": f"{getattr(factory, '__module__', '?')}:{getattr(factory, '__qualname__', name)}",
        }
        if extra:
            row.update(extra(name, factory))
        out.append(row)
    return out


def _policy_extra(name: str, cls: Any) -> dict:
    return {"uses_forecasts": bool(getattr(cls, "uses_forecasts", False)), "default_forecaster": getattr(cls, "default_forecaster", None)}


def _trace_entries() -> list[dict]:
    import workloads.traces  # noqa: F401  (registration)
    from workloads.registry import TRACES
    from workloads.traces.families import FAMILIES, PARAMS
    from workloads.traces.params import COMMON

    rows = _entries(TRACES)
    for row in rows:
        fam = FAMILIES.get(row["name"])
        table = PARAMS.get(row["name"]) if fam else (COMMON if row["name"] == "auto" else None)
        if table is not None and row["source"].startswith("workloads.traces"):
            row["params"] = [_param(k, v, type(v).__name__ if v is not None else "") for k, v in table.items()]
        if fam is not None:
            row.update({"doc": fam.title, "level": fam.level, "default_kind": fam.kind})
        elif row["name"] == "auto":
            row["doc"] = "the family detected from the content (every family's parameters apply)"
    return rows


def _policies() -> list[dict]:
    import schedulers  # noqa: F401  (registration)
    from schedulers.base import SCHEDULERS

    return _entries(SCHEDULERS, _policy_extra)


def _forecasters() -> list[dict]:
    import forecasters  # noqa: F401  (registration)
    from forecasters.base import FORECASTERS

    return _entries(FORECASTERS, lambda n, c: {"needs_future": bool(getattr(c, "needs_future", False))})


def _workloads() -> list[dict]:
    import workloads.synthetic  # noqa: F401  (registration)
    from workloads.registry import SYNTHETIC

    return _entries(SYNTHETIC)


def _devices() -> list[dict]:
    from sim.devices import DEVICE_CLASSES

    return [
        {
            "name": n,
            "doc": "source-volume device class",
            "params": [_param(k, v, type(v).__name__) for k, v in dataclasses.asdict(d).items() if k != "name"],
        }
        for n, d in DEVICE_CLASSES.items()
    ]


#: section -> (what a config calls it, how to list it)
SECTIONS: dict[str, tuple[str, Callable[[], list[dict]]]] = {
    "policies": ("policy", _policies),
    "forecasters": ("forecaster", _forecasters),
    "workloads": ("workload (fleet `workload:`)", _workloads),
    "trace_families": ("trace family (fleet `trace:`)", _trace_entries),
    "device_classes": ("device class (fleet `device:`)", _devices),
}


def catalogue(sections: list[str] | None = None) -> dict[str, list[dict]]:
    """Everything a config may name, by section (JSON-able); only `sections` when given
    (listing policies alone does not import the forecasters' torch)."""
    return {key: SECTIONS[key][1]() for key in (sections or list(SECTIONS))}


def as_text(cat: dict[str, list[dict]], sections: list[str] | None = None) -> str:
    """The catalogue as plain text: a heading per section, a line per name, its parameters indented."""
    lines = []
    for key in sections or list(cat):
        lines.append(f"{key.replace('_', ' ')} ({SECTIONS[key][0] if key in SECTIONS else key}):")
        for row in cat[key]:
            flags = []
            if row.get("uses_forecasts"):
                flags.append(
                    "reads forecasts" + (f", default forecaster {row['default_forecaster']}" if row.get("default_forecaster") else "")
                )
            if row.get("needs_future"):
                flags.append("needs the true future (a bound, not a forecaster)")
            if row.get("level"):
                flags.append(f"{row['level']}-level")
            lines.append(
                f"  {row['name']}" + (f"  [{'; '.join(flags)}]" if flags else "") + (f"  - {row['doc']}" if row.get("doc") else "")
            )
            for p in row["params"]:
                default = "required" if p["required"] else f"default {p['default']!r}"
                lines.append(f"      {p['name']}" + (f": {p['type']}" if p["type"] else "") + f" ({default})")
        lines.append("")
    return "\n".join(lines)

"""The experiment-config reference (`docs/config-reference.md`), generated from the schema.

Walks the pydantic models of `experiments.config` (`ExperimentConfig` and the models its
fields hold): every key with its type, default, constraints and description. A field's
description is its pydantic `description`, else the comment beside it or right above it
in the model's source, so the schema stays the one place a key is documented.
`piop list --config-reference > docs/config-reference.md` rewrites the file; a test
checks the committed file equals this output, so the two cannot drift apart.
"""

from __future__ import annotations

import inspect
import io
import json
import re
import tokenize
import typing
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

HEADER = """# Experiment config reference

Generated from the schema in `experiments/config.py` by `piop list --config-reference`;
do not edit by hand (a test checks this file equals the generated one). Hours and GB in
the file, seconds and bytes in the simulator. The names a config may give to `policy`,
`forecaster`, `workload`, `trace` and `device`, with their `params`, are listed by
`piop list` (`--json` for scripts).
"""


def field_comments(model: type) -> dict[str, str]:
    """`name -> comment` from the model's source: the comment on a field's line, else the
    comment lines right above it."""
    try:
        src = inspect.getsource(model)
    except (OSError, TypeError):
        return {}
    out: dict[str, str] = {}
    above: list[str] = []
    line_comments: dict[int, str] = {}
    code_lines: dict[int, str] = {}
    for tok in tokenize.generate_tokens(io.StringIO(src).readline):
        if tok.type == tokenize.COMMENT:
            line_comments[tok.start[0]] = tok.string.lstrip("#").strip()
    for no, line in enumerate(src.splitlines(), start=1):
        code_lines[no] = line
    for no in sorted(code_lines):
        stripped = code_lines[no].strip()
        m = re.match(r"^([A-Za-z_]\w*)\s*:", stripped)
        if stripped.startswith("#"):
            above.append(line_comments.get(no, ""))
            continue
        if m and not stripped.startswith(("def ", "class ", "@")):
            text = line_comments.get(no) or " ".join(a for a in above if a)
            if text:
                out.setdefault(m.group(1), text)
        above = []
    return out


def _type(annotation: Any) -> str:
    text = repr(annotation) if not isinstance(annotation, type) else annotation.__name__
    text = re.sub(r"typing\.|datetime\.|experiments\.config\.", "", text)
    return text.replace("NoneType", "None")


def _default(field) -> str:
    if field.default_factory is not None:
        try:
            value = field.default_factory()
        except TypeError:
            return "(computed)"
        if isinstance(value, list) and value and isinstance(value[0], BaseModel):
            return f"{len(value)} built-in entries (see below)"
        return f"`{json.dumps(value, default=str)}`"
    if field.default is PydanticUndefined:
        return "**required**"
    return f"`{json.dumps(field.default, default=str)}`"


def _constraints(field) -> str:
    parts = []
    for meta in field.metadata:
        for attr, sym in (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<="), ("min_length", "at least"), ("pattern", "matches")):
            v = getattr(meta, attr, None)
            if v is not None:
                parts.append(f"{sym} `{v}`" if attr != "min_length" else f"{sym} {v} item(s)")
    return ", ".join(parts)


def _models_in(annotation: Any) -> list[type]:
    """Pydantic models named by a field's annotation (`list[VolumeGroup]`, `X | None`)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _models_in(arg)]


def _section(model: type, path: str) -> list[str]:
    doc = " ".join(inspect.cleandoc(model.__doc__ or "").split("\n\n")[0].split())
    lines = [f"## `{path}` ({model.__name__})\n"]
    if doc and not doc.startswith("!!!") and "BaseModel" not in doc:
        lines.append(doc + "\n")
    lines.append("| key | type | default | constraint | description |")
    lines.append("|---|---|---|---|---|")
    notes = field_comments(model)
    for name, f in model.model_fields.items():
        desc = (f.description or notes.get(name, "")).replace("|", "\\|")
        cells = [f"`{name}`", f"`{_type(f.annotation)}`", _default(f), _constraints(f), desc]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells[:4]) + f" | {desc} |")
    return lines + [""]


def config_reference() -> str:
    """The Markdown reference of the experiment-config schema."""
    from experiments.config import ExperimentConfig

    out = [HEADER]
    seen: set[type] = set()
    todo: list[tuple[type, str]] = [(ExperimentConfig, "top level")]
    while todo:
        model, path = todo.pop(0)
        if model in seen:
            continue
        seen.add(model)
        out.extend(_section(model, path))
        for name, f in model.model_fields.items():
            for sub in _models_in(f.annotation):
                prefix = "" if path == "top level" else f"{path}."
                todo.append((sub, f"{prefix}{name}[]" if typing.get_origin(f.annotation) is list else f"{prefix}{name}"))
    return "\n".join(out).rstrip() + "\n"

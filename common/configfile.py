"""Reading a YAML config file into a pydantic model with one-line errors.

Every config a person writes (experiment configs, the host agent's config) is read the
same way: a missing, binary or malformed file (a key given twice included) and the first
schema error all become one `UserError` line naming the file and the field, e.g.
`agent.yaml: volumes.1.rpo: must be > 0`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from common import yamlfile
from common.errors import UserError


def format_validation(path: Path | str, err: ValidationError) -> str:
    """The first pydantic error as one line naming the file and the field (`path: a.b: msg`)."""
    e = err.errors()[0]
    loc = ".".join(str(p) for p in e["loc"]) or "(top level)"
    msg = e["msg"].removeprefix("Value error, ")
    if e["type"] == "extra_forbidden":
        msg = "unknown key"
    more = f" (and {err.error_count() - 1} more)" if err.error_count() > 1 else ""
    return f"{path}: {loc}: {msg}{more}"


def read_yaml(path: Path, what: str = "YAML config") -> Any:
    """Parse a YAML file; a missing, binary or malformed file is a one-line `UserError`."""
    if not path.exists():
        raise UserError(f"{path}: no such file")
    if path.is_dir():
        raise UserError(f"{path}: is a folder, expected a {what} file")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as err:
        raise UserError(f"{path}: not a text file (byte {err.start} is not UTF-8); expected a {what}") from None
    except OSError as err:
        raise UserError(f"{path}: {err.strerror}") from None
    try:
        return yamlfile.load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise UserError(f"{path}:{where} malformed YAML: {problem}") from None


def validate(model: type, data: Any, path: Path | str) -> Any:
    """`model.model_validate(data)`, a schema error turned into one `UserError` line."""
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a mapping of settings at the top level")
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise UserError(format_validation(path, err)) from None

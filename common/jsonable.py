"""JSON conversion of NumPy / pandas values: one rule for every file and `--json` table."""

from __future__ import annotations

import json
import math
from pathlib import PurePath
from typing import Any

import numpy as np


def jsonable(x: Any) -> Any:
    """Plain Python for JSON: NumPy scalars and arrays unwrapped, NaN/inf as null."""
    if isinstance(x, dict):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple, set)):
        return [jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return [jsonable(v) for v in x.tolist()]
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, PurePath):
        return str(x)
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def dumps(data: Any, indent: int | None = 2) -> str:
    return json.dumps(jsonable(data), indent=indent)

"""Generic pieces every room of piop may import: nothing here knows about backups.

`common` sits below `workloads`, `sim`, `forecasters`, `schedulers`, `host` and
`experiments`, so importing from it never runs back up the data flow.
"""

from common.atomic import atomic_path, atomic_write_bytes, atomic_write_text, check_writable
from common.errors import UserError
from common.jsonable import dumps, jsonable
from common.registry import Registry, UnknownName
from common.strict import Strict
from common.units import DAY_S, GB, HOUR_S, MB, MIB, MONDAY0_S, WEEK_S

__all__ = [
    "DAY_S",
    "GB",
    "HOUR_S",
    "MB",
    "MIB",
    "MONDAY0_S",
    "WEEK_S",
    "Registry",
    "Strict",
    "UnknownName",
    "UserError",
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_text",
    "check_writable",
    "dumps",
    "jsonable",
]

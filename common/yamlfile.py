"""YAML as people write it: a key given twice in one mapping is an error, not "last wins".

PyYAML's safe loader keeps the last of two equal keys without a word, so a setting a
user changed near the top of a file can be silently overridden further down. `load`
parses like `yaml.safe_load` but raises a `yaml.constructor.ConstructorError` whose
`problem_mark` is the second key's position (`problem` names the key and the line of
the first). Merge keys (`<<: *base`) may still be overridden, as YAML intends.
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.constructor import ConstructorError

_MERGE = "tag:yaml.org,2002:merge"


class UniqueKeyLoader(yaml.SafeLoader):
    """`yaml.SafeLoader` that rejects a key written twice in the same mapping."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == _MERGE:
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.get(key)
            except TypeError:  # an unhashable key: the base loader reports it
                continue
            line = key_node.start_mark.line + 1
            if first is not None:
                raise ConstructorError(
                    "while constructing a mapping",
                    node.start_mark,
                    f"duplicate key {key!r} (first given on line {first})",
                    key_node.start_mark,
                )
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


def load(text: str) -> Any:
    """Parse YAML text like `yaml.safe_load`, rejecting duplicate keys."""
    return yaml.load(text, Loader=UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass

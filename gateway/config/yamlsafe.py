"""YAML for configuration files: PyYAML's safe loader, stricter.

- A key given twice in one mapping is an error naming both lines (PyYAML keeps the last
  one silently, so a second `max_charge_current_a` further down would win unseen).
- Aliases (`*name`) are refused: a 70 kB "billion laughs" file expands to gigabytes, and a
  configuration has no need for them.
- Nesting deeper than MAX_DEPTH is an error naming the line, not a RecursionError.

Errors are yaml.MarkedYAMLError, so callers report them with their line and column.
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml import SafeLoader
from yaml.composer import ComposerError
from yaml.constructor import ConstructorError
from yaml.events import AliasEvent
from yaml.nodes import MappingNode, Node

MAX_DEPTH = 32  # a configuration is a few levels deep; a table of points is four


class StrictLoader(SafeLoader):
    """SafeLoader without aliases, duplicate keys or deep nesting."""

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        if self.check_event(AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]
            raise ComposerError(
                None, None, "aliases (*name) are not allowed in a configuration", event.start_mark
            )
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise ComposerError(
                    None,
                    None,
                    f"nested deeper than {MAX_DEPTH} levels",
                    self.peek_event().start_mark,  # type: ignore[no-untyped-call]
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, Node] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                first = seen.get(key)
            except TypeError:  # an unhashable key: the base class reports it
                continue
            if first is not None:
                raise ConstructorError(
                    f"while reading the mapping starting at line {node.start_mark.line + 1}",
                    node.start_mark,
                    f"key {key!r} is given twice (first on line {first.start_mark.line + 1})",
                    key_node.start_mark,
                )
            seen[key] = key_node
        return super().construct_mapping(node, deep=deep)


def load(text: bytes | str) -> Any:
    """Parse one YAML document strictly (raises yaml.YAMLError). What yaml.load does, with
    this SafeLoader subclass: no tag can construct anything but plain data."""
    loader = StrictLoader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def describe(exc: yaml.YAMLError) -> str:
    """'line L, column C: problem' for an error from load()."""
    mark = getattr(exc, "problem_mark", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
    problem = getattr(exc, "problem", None) or str(exc)
    return f"{where}{problem}"

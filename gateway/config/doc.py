"""The configuration schema rendered for people: a commented example file
(`moat-bms config example`) and the reference page docs/configuration.md
(`make docs`; a test keeps it current). Both come from the pydantic models, so a new setting
is documented by writing its Field(description=...)."""

from __future__ import annotations

import enum
import types
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from gateway.config.root import Settings

EXAMPLE_HEADER = """\
# moat-bms gateway configuration (YAML).
# Every key is optional: what you leave out takes the default shown here, except the lines
# marked "example" (an example battery; the default is named there). Unknown keys are
# errors. Check a file with:  moat-bms config check FILE
# Reference: docs/configuration.md
"""

# Values the example shows instead of the defaults, to make it a useful starting point.
EXAMPLE_OVERRIDES: dict[tuple[str, ...], Any] = {
    # Two parallel strings of two 8-cell nodes in series: 16s LFP, the 48 V battery a
    # low-voltage (Pylontech-protocol) inverter expects.
    ("battery", "topology", "strings"): [[0, 1], [2, 3]],
    ("battery", "topology", "cells_per_node"): 8,
    ("battery", "topology", "capacity_ah"): 280.0,
}


def _model_of(annotation: Any) -> type[BaseModel] | None:
    """The BaseModel class inside an annotation (X, X | None), if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            found = _model_of(arg)
            if found is not None:
                return found
    return None


def _map_model_of(annotation: Any) -> type[BaseModel] | None:
    """The section of a map of sections by id (dict[int, X], battery.packs), if it is one."""
    if typing.get_origin(annotation) is dict:
        _, item = typing.get_args(annotation)
        return _model_of(item)
    return None


class _Required:
    """The default of a key that has none: it must be given."""

    def __repr__(self) -> str:
        return "required"


REQUIRED = _Required()


def _type_name(annotation: Any) -> str:
    if _map_model_of(annotation) is not None:
        return "map: id -> section"
    if typing.get_origin(annotation) is typing.Literal:
        return " / ".join(str(a) for a in typing.get_args(annotation))
    if isinstance(annotation, type):
        if issubclass(annotation, enum.Enum):
            return " / ".join(str(m.value) for m in annotation)
        return annotation.__name__
    text = str(annotation).replace("typing.", "").replace("pathlib.", "")
    return text.replace("NoneType", "None")


def _default(info: FieldInfo) -> Any:
    if info.default_factory is not None:
        return info.default_factory()  # type: ignore[call-arg]
    if info.is_required():
        return REQUIRED
    return info.default


def _plain(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Path):
        return str(value)
    return value


def _scalar_yaml(value: Any) -> str:
    if value is REQUIRED:
        return "  # required"
    text = yaml.safe_dump(_plain(value), default_flow_style=True, width=1000).strip()
    return text.removesuffix("\n...").removesuffix("...").strip()


Node = tuple[tuple[str, ...], FieldInfo, type[BaseModel] | None, Any]


def walk(
    model: type[BaseModel], default: Any, path: tuple[str, ...] = (), entries: bool = False
) -> Iterator[Node]:
    """Every field, depth first: (path, field info, nested model or None, default value).

    Defaults come from the enclosing section's default instance, so a section whose default
    differs from its class defaults (buses.battery = socketcan can0) shows what really
    applies. A map of sections by id (battery.packs) is one field; with `entries` its entry
    follows as a section of its own at `<id>` (for the reference and the example)."""
    for name, info in model.model_fields.items():
        nested = _model_of(info.annotation)
        value = getattr(default, name) if default is not None else _default(info)
        yield (*path, name), info, nested, value
        if nested is not None:
            yield from walk(nested, value, (*path, name), entries)
        item = _map_model_of(info.annotation) if entries else None
        if item is not None:  # one entry, as an optional section of its own
            entry = FieldInfo(description=f"one entry of {name}, by its id")
            yield (*path, name, "<id>"), entry, item, None
            yield from walk(item, None, (*path, name, "<id>"), entries)


def _comment(text: str, indent: str, width: int = 92) -> list[str]:
    words, lines, line = text.split(), [], ""
    for word in words:
        if line and len(indent) + 2 + len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    if line:
        lines.append(line)
    return [f"{indent}# {ln}" for ln in lines]


def example_yaml() -> str:
    """A commented YAML file with every key at its default (valid as it is)."""
    lines = [EXAMPLE_HEADER]
    off: tuple[str, ...] | None = None  # an optional section that is off by default
    for path, info, nested, value in walk(Settings, Settings(), entries=True):
        indent = "  " * (len(path) - 1)
        if off is not None and path[: len(off)] == off:
            lines.append(
                f"{'  ' * (len(off) - 1)}#   {'  ' * (len(path) - len(off) - 1)}"
                f"{path[-1]}: {_scalar_yaml(value) if nested is None else ''}".rstrip()
            )
            continue
        off = None
        if len(path) == 1:
            lines.append("")
        lines.extend(_comment(info.description or "", indent))
        if nested is not None:
            if value is None:
                off = path
                lines.append(f"{indent}# {path[-1]}:")
            else:
                lines.append(f"{indent}{path[-1]}:")
            continue
        if path in EXAMPLE_OVERRIDES:
            lines.append(
                f"{indent}{path[-1]}: {_scalar_yaml(EXAMPLE_OVERRIDES[path])}"
                f"  # example; the default is {_scalar_yaml(value)}"
            )
        else:
            lines.append(f"{indent}{path[-1]}: {_scalar_yaml(value)}")
    return "\n".join(lines).rstrip() + "\n"


def markdown() -> str:
    """docs/configuration.md."""
    out = [
        "# Configuration reference",
        "",
        "Generated from the settings schema (`gateway/config/root.py` and the sections it "
        "includes) by `make docs`; a test fails when this page is stale.",
        "",
        "The gateway reads one YAML file: `moat-bms run --config FILE`. Every key is "
        "optional; unknown keys and wrong types are errors that name the key "
        "(`moat-bms config check FILE` exits with status 2). `moat-bms config example` "
        "prints a commented file with every default.",
        "",
    ]
    for path, info, nested, value in walk(Settings, Settings(), entries=True):
        if nested is None:
            continue
        out.append(f"{'#' * min(len(path) + 1, 4)} `{'.'.join(path)}`")
        out.append("")
        if info.description:
            out.append(info.description[0].upper() + info.description[1:] + ".")
            out.append("")
        if value is None:
            out.append("Optional: leave it out to keep it off.")
            out.append("")
        out.append("| key | type | default | meaning |")
        out.append("|---|---|---|---|")
        for name, sub in nested.model_fields.items():
            sub_value = getattr(value, name) if value is not None else _default(sub)
            if _model_of(sub.annotation) is not None:
                default, kind = "(section)", "section"
            elif sub_value is REQUIRED:
                default, kind = "required", _type_name(sub.annotation)
            else:
                default = f"`{_scalar_yaml(sub_value)}`"
                kind = _type_name(sub.annotation)
            desc = (sub.description or "").replace("|", "/")
            out.append(f"| `{name}` | {kind.replace('|', 'or')} | {default} | {desc} |")
        out.append("")
    return "\n".join(out).rstrip() + "\n"

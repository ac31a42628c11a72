"""docs/strategy.md lists every setting with its current default and description."""

from __future__ import annotations

from collections.abc import Iterator

import pydantic
import pytest

from gateway.soc import SocSettings
from gateway.strategy.settings import StrategySettings
from tests.common import ROOT

DOC = (ROOT / "docs" / "strategy.md").read_text()


def _default(value: object) -> str:
    if value is None:
        return "chemistry"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def rows(model: type[pydantic.BaseModel], prefix: str = "") -> Iterator[str]:
    """The table row of every leaf setting: | `path` | default | description |."""
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel):
            yield from rows(annotation, f"{prefix}{name}.")
        else:
            default = _default(field.get_default(call_default_factory=True))
            yield f"| `{prefix}{name}` | {default} | {field.description} |"


@pytest.mark.parametrize("row", [*rows(StrategySettings), *rows(SocSettings)])
def test_every_default_is_documented(row: str) -> None:
    assert row in DOC, f"docs/strategy.md is missing or outdated: {row}"

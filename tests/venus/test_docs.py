"""docs/venus.md lists every path the service has, with the unit the service gives it."""

from __future__ import annotations

import re

from gateway.outputs.venus.paths import CELL_PREFIX, UNITS, unit_of
from tests.common import ROOT

DOC = ROOT / "docs" / "venus.md"
ROW = re.compile(r"^\| `(/[^`]+)` \|([^|]*)\|", re.MULTILINE)


def test_every_path_is_documented_with_its_unit() -> None:
    rows = {path: unit.strip() for path, unit in ROW.findall(DOC.read_text(encoding="utf-8"))}
    cells = f"{CELL_PREFIX}<n>"
    assert set(rows) == set(UNITS) | {cells}
    for path, unit in rows.items():
        expected = unit_of(f"{CELL_PREFIX}1" if path == cells else path).symbol
        assert unit == expected, f"{path}: the docs say {unit!r}, the service {expected!r}"

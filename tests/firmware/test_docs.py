"""docs/firmware.md lists every configuration key with its defaults per chemistry."""

from __future__ import annotations

import json

from bms.config import CHEMISTRIES, SCHEMA, default_config
from tests.common import ROOT


def config_table() -> dict[str, list[str]]:
    rows = {}
    text = (ROOT / "docs" / "firmware.md").read_text()
    section = text.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 6 and cells[0].startswith("`"):
            rows[cells[0].strip("`")] = [c.strip("`") for c in cells[2:5]]
    return rows


def test_every_key_is_documented_with_its_defaults() -> None:
    rows = config_table()
    assert list(rows) == [rule[0] for rule in SCHEMA]
    for column, chemistry in enumerate(CHEMISTRIES):
        defaults = default_config(chemistry)
        for key, documented in rows.items():
            assert documented[column] == json.dumps(defaults[key]), (key, chemistry)

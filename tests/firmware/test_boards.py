"""The example boards (firmware/boards/*, docs/firmware-boards.md): each manifest freezes
exactly the modules its board.py and bms.main import, and each board.py builds working
hardware and a CAN bus on fakes of its chips (a `machine` module that hands them out)."""

from __future__ import annotations

import ast
import importlib.util
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bms.config import load_config
from bms.node import Node
from gateway.sim.chips.bq76952 import FakeBq76952
from gateway.sim.chips.i2c import FakeI2C
from gateway.sim.chips.ina22x import FakeIna228
from gateway.sim.chips.ltc681x import FakeLtc681xChain
from gateway.sim.chips.ntc import FakeThermistorAdc
from tests.common import FIRMWARE_DIR
from tests.firmware.fake_mcp2515 import FakeMcp2515

BOARDS = sorted(p.parent.name for p in (FIRMWARE_DIR / "boards").glob("*/manifest.py"))
BMS = FIRMWARE_DIR / "bms"


def frozen_files(board: str) -> set[str]:
    """The files of package bms the board's manifest freezes (run with stub commands)."""
    manifest = FIRMWARE_DIR / "boards" / board / "manifest.py"
    frozen: set[str] = set()

    def package(name: str, files: list[str] | None = None, base_path: str = ".") -> None:
        assert name == "bms"
        assert (manifest.parent / base_path / name).resolve() == BMS
        assert files, "freeze a list of files, not the whole package"
        frozen.update(files)

    def include(path: str) -> None:
        assert path == "$(PORT_DIR)/boards/manifest.py"

    exec(manifest.read_text(), {"package": package, "include": include})
    return frozen


def module_file(name: str) -> str | None:
    """bms.x.y -> x/y.py or x/y/__init__.py (relative to the package), None if no such."""
    parts = name.split(".")[1:]
    for candidate in ("/".join(parts) + ".py", "/".join([*parts, "__init__.py"])):
        if candidate and (BMS / candidate).is_file():
            return candidate.removeprefix("/")
    return None


def imports_of(path: Path) -> Iterator[str]:
    """The bms modules a file imports at its top level (not in functions: those are the
    CPython-only or optional paths, which a board does not take)."""
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names if a.name.startswith("bms"))
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("bms"):
            yield node.module
            for alias in node.names:
                if module_file(f"{node.module}.{alias.name}"):
                    yield f"{node.module}.{alias.name}"
        elif isinstance(node, ast.Try):  # `try: from machine import ...` and friends
            for inner in node.body:
                if isinstance(inner, ast.ImportFrom) and (inner.module or "").startswith("bms"):
                    yield str(inner.module)


def needed(board: str) -> set[str]:
    todo = [*imports_of(FIRMWARE_DIR / "boards" / board / "board.py"), "bms.main"]
    files: set[str] = set()
    while todo:
        name = todo.pop()
        parts = name.split(".")
        for k in range(1, len(parts) + 1):  # parent packages run their __init__ too
            f = module_file(".".join(parts[:k]))
            if f and f not in files:
                files.add(f)
                todo.extend(imports_of(BMS / f))
    return files


@pytest.mark.parametrize("board", BOARDS)
def test_the_manifest_freezes_exactly_what_the_board_imports(board: str) -> None:
    frozen = frozen_files(board)
    assert all((BMS / f).is_file() for f in frozen), sorted(
        f for f in frozen if not (BMS / f).is_file()
    )
    assert frozen == needed(board), {
        "missing": sorted(needed(board) - frozen),
        "unused": sorted(frozen - needed(board)),
    }
    assert "can/pythoncan.py" not in frozen and "hw/sim.py" not in frozen


# ---- board.py on fakes ----


class FakePinBase:
    OUT, IN, PULL_UP = 1, 0, 2

    def __init__(self, pin_id: int, *args: Any, **kwargs: Any) -> None:
        self.id = pin_id
        self.level = kwargs.get("value", 1 if args[1:2] == (FakePinBase.PULL_UP,) else 0)

    def value(self, v: int | None = None) -> int:
        if v is not None:
            self.level = v
        return self.level


def fake_machine(
    pins: dict[int, Any], i2c: dict[int, Any], spi: dict[int, Any], adc: dict[int, Any]
) -> types.ModuleType:
    machine = types.ModuleType("machine")

    class Pin(FakePinBase):
        def __new__(cls, pin_id: int, *args: Any, **kwargs: Any) -> Any:
            if pin_id in pins:
                return pins[pin_id]
            pin = super().__new__(cls)
            pins[pin_id] = pin
            return pin

        def __init__(self, pin_id: int, *args: Any, **kwargs: Any) -> None:
            if not hasattr(self, "id") and not hasattr(self, "chain"):
                super().__init__(pin_id, *args, **kwargs)

    class ADC:
        ATTN_11DB = 3

        def __new__(cls, pin: Any, **kwargs: Any) -> Any:
            return adc[pin.id]

    machine.Pin = Pin  # type: ignore[attr-defined]
    machine.I2C = lambda bus, **kwargs: i2c[bus]  # type: ignore[attr-defined]
    machine.SPI = lambda bus, **kwargs: spi[bus]  # type: ignore[attr-defined]
    machine.ADC = ADC  # type: ignore[attr-defined]
    return machine


def load_board(board: str, machine: types.ModuleType, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setitem(sys.modules, "machine", machine)
    path = FIRMWARE_DIR / "boards" / board / "board.py"
    spec = importlib.util.spec_from_file_location(f"board_{board.replace('-', '_')}", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_node(board: Any, settings: dict[str, Any], feed: Any, mcp: FakeMcp2515) -> Any:
    config = load_config(settings)
    hw = board.hardware(config)
    node = Node(config, hw, board.can_backend(config))
    for t in range(0, 3000, 50):
        feed()
        node.step(t)
    assert mcp.sent, "nothing reached the CAN controller"
    return hw, node


def test_pico_bq76952_board_runs_a_node(monkeypatch: pytest.MonkeyPatch) -> None:
    i2c = FakeI2C()
    bq, ina = FakeBq76952(), FakeIna228(address=0x40, shunt_uohm=100)
    i2c.attach(bq)
    i2c.attach(ina)
    mcp = FakeMcp2515()
    machine = fake_machine({1: mcp.cs}, {0: i2c}, {0: mcp.spi}, {})
    board = load_board("pico-bq76952", machine, monkeypatch)
    cells = [3300 + i for i in range(16)]

    def feed() -> None:
        bq.set_cells(cells)
        bq.set_temps([24.0, 25.0, 26.0])
        bq.scan()
        ina.set(-5_000, sum(cells))
        ina.convert()

    hw, node = run_node(board, {"node_id": 2, "cells": 16, "temp_sensors": 3}, feed, mcp)
    assert hw.cell_mv == cells
    assert hw.current_ma == -5_000 and abs(hw.pack_mv - sum(cells)) <= 1
    assert node.faults == 0, hex(node.faults)


def test_esp32_ltc6813_board_runs_a_node(monkeypatch: pytest.MonkeyPatch) -> None:
    chain = FakeLtc681xChain(2, 6813)
    i2c = FakeI2C()
    ina = FakeIna228(address=0x40, shunt_uohm=100)
    i2c.attach(ina)
    mcp = FakeMcp2515()
    pack_adc = FakeThermistorAdc()
    balancer = FakeThermistorAdc(temp_c=30.0)
    machine = fake_machine(
        {5: chain.cs, 15: mcp.cs}, {0: i2c}, {2: chain, 1: mcp.spi}, {34: balancer, 35: pack_adc}
    )
    board = load_board("esp32-ltc6813", machine, monkeypatch)
    cells = [3250 + i for i in range(36)]

    def feed() -> None:
        chain.set_cells(cells, 18)
        # 2 A: a current above the node's rest limit (5 A) with its relay open is a sensor
        # fault (bms/plausible.py), and nothing closes the relay here.
        ina.set(2_000, 60_000)
        ina.convert()
        pack_adc.counts = sum(cells) * 1000 // 2365

    settings = {"node_id": 3, "cells": 36, "temp_sensors": 4}
    hw, node = run_node(board, settings, feed, mcp)
    assert hw.cell_mv == cells
    assert hw.temp_dc == [250, 250, 250, 250]  # 1.5 V of 3.0 V: 25 degC
    assert hw.current_ma == 2_000 and abs(hw.pack_mv - sum(cells)) <= 3
    assert hw.balancer_temp_dc == 300
    assert node.faults == 0, hex(node.faults)

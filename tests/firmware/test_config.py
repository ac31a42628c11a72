"""Node configuration: defaults per chemistry, validation, ConfigError with the relay open."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bms import protect
from bms.can.loopback import LoopbackBus
from bms.config import (
    CHEMISTRIES,
    SCHEMA,
    default_config,
    load_config,
    load_config_file,
)
from bms.hw.sim import SimHardware
from bms.lifecycle import CONFIG_ERROR
from bms.node import Node
from tests.firmware.harness import Bench


@pytest.mark.parametrize("chemistry", CHEMISTRIES)
def test_defaults_of_every_chemistry_are_valid(chemistry: str) -> None:
    config = load_config({"chemistry": chemistry})
    assert config.error is None
    assert config.settings == default_config(chemistry)
    assert set(default_config(chemistry)) == {rule[0] for rule in SCHEMA}
    edited = default_config(chemistry)
    edited.update(node_id=3, cells=14)
    config = load_config(edited)
    assert config.error is None
    assert (config.node_id, config.cells, config.chemistry) == (3, 14, chemistry)


def test_empty_configuration_is_lfp_16_cells() -> None:
    c = load_config({})
    assert c.error is None
    assert (c.node_id, c.cells, c.temp_sensors, c.chemistry) == (0, 16, 4, "LFP")
    assert c.cell_over_mv == [3550, 3600, 3650]
    assert c.cell_under_mv == [2900, 2700, 2500]
    assert c.charge_under_dc == [100, 30, 0]
    assert c.discharge_under_dc == [-100, -150, -200]


def test_values_are_converted_to_hot_path_units() -> None:
    c = load_config(
        {
            "cells": 8,
            "capacity_ah": 280.5,
            "pack_over_mv_per_cell": [3500, 3550, 3600],
            "charge_over_current_a": [10.5, 20, 30],
            "hysteresis_temp_c": 2.5,
            "charge_detect_a": 0.25,
        }
    )
    assert c.error is None
    assert c.capacity_dah == 2805
    assert c.pack_over_mv == [28000, 28400, 28800]
    assert c.hysteresis_pack_mv == 8 * 20
    assert c.charge_over_ma == [10500, 20000, 30000]
    assert c.hysteresis_dc == 25
    assert c.charge_detect_ma == 250
    assert all(type(v) is int for v in c.charge_over_ma)


@pytest.mark.parametrize(
    ("settings", "reason"),
    [
        ({"cell_count": 16}, "unknown key 'cell_count'"),
        ({"cells": "16"}, "cells: expected an integer"),
        ({"cells": 16.0}, "cells: expected an integer"),
        ({"cells": True}, "cells: expected an integer"),
        ({"cells": 0}, "cells: 0 outside 1..64"),
        ({"cells": 65}, "cells: 65 outside 1..64"),
        ({"node_id": 16}, "node_id: 16 outside 0..15"),
        ({"node_id": -1}, "node_id: -1 outside 0..15"),
        ({"temp_sensors": 0}, "temp_sensors: 0 outside 1..64"),
        ({"chemistry": "LiPo"}, "chemistry: expected one of LFP, NMC, LTO"),
        ({"capacity_ah": "100"}, "capacity_ah: expected a number"),
        ({"cell_over_mv": [3650, 3600, 3550]}, "cell_over_mv: levels must be info < warning"),
        ({"cell_under_mv": [2500, 2700, 2900]}, "cell_under_mv: levels must be info > warning"),
        ({"cell_over_mv": [3600, 3600, 3650]}, "cell_over_mv: levels must be"),
        ({"cell_over_mv": [3550, 3600]}, "cell_over_mv: expected [info, warning, fault]"),
        ({"charge_over_temp_c": [35, 40, "45"]}, "charge_over_temp_c: expected [info"),
        ({"charge_over_temp_c": [35, 40, 145]}, "charge_over_temp_c: 145 outside"),
        ({"comm_loss_action": "close"}, "comm_loss_action: expected one of keep, open"),
        ({"balancer_temp_sensor": 1}, "balancer_temp_sensor: expected true or false"),
        ({"cell_under_mv": [3600, 3000, 2800]}, "cell_under_mv must lie below cell_over_mv"),
        ({"charge_under_temp_c": [40, 3, 0]}, "charge_under_temp_c must lie below"),
        ({"balance_floor_mv": 2400}, "balance_floor_mv must lie between"),
        ({"settle_ms": 500}, "settle_ms must be at least the longest debounce (1000 ms)"),
        ({"sensor_stale_ms": 100, "cycle_ms": 100}, "sensor_stale_ms must be at least two"),
        ({"watchdog_ms": 100}, "watchdog_ms must be 0 (off) or at least four cycles"),
        ([1, 2], "the configuration must be a JSON object"),
    ],
)
def test_invalid_settings_give_a_config_error(settings: Any, reason: str) -> None:
    config = load_config(settings)
    assert config.error is not None
    assert reason in config.error


def test_every_error_is_reported() -> None:
    config = load_config({"cells": 0, "node_id": 20, "colour": "red"})
    assert config.error is not None
    for part in ("cells:", "node_id:", "unknown key 'colour'"):
        assert part in config.error


def test_config_error_keeps_a_valid_node_id() -> None:
    assert load_config({"node_id": 7, "cells": 99}).node_id == 7
    assert load_config({"node_id": 77}).node_id == 0


def test_config_file(tmp_path: Path) -> None:
    path = tmp_path / "bms.json"
    path.write_text(json.dumps({"node_id": 3, "chemistry": "LTO"}))
    config = load_config_file(str(path))
    assert config.error is None
    assert (config.node_id, config.chemistry) == (3, "LTO")
    assert "cannot read" in str(load_config_file(str(tmp_path / "missing.json")).error)
    path.write_text("{node_id: 3")
    assert "not valid JSON" in str(load_config_file(str(path)).error)


def config_error_bench(bench: Callable[..., Bench]) -> Bench:
    b = bench(settings={"node_id": 4, "debounce_voltage_ms": -5}, request="Close", reset=1)
    assert b.config.error is not None
    return b


def test_config_error_holds_the_relay_open_and_reports(bench: Callable[..., Bench]) -> None:
    b = config_error_bench(bench)
    b.hw.relay_drive = True  # whatever the relay did before the reboot
    b.run(10_000)
    assert b.node.state == CONFIG_ERROR
    assert not b.hw.relay_drive
    assert b.node.faults == protect.INTERNAL
    assert "debounce_voltage_ms" in str(b.node.config_error)
    state = b.last("NodeState")
    assert state["State"] == "ConfigError"
    assert state["FaultInternal"] == "Active"
    assert {b.db.get_message_by_frame_id(s.frame_id & 0x7F0).name for s in b.sent} == {"NodeState"}
    assert all(s.frame_id == 0x104 for s in b.sent)


def test_config_error_is_printed(capsys: pytest.CaptureFixture[str]) -> None:
    Node(load_config({"cells": 100}), SimHardware(), LoopbackBus())
    assert "bms: configuration error: cells: 100 outside 1..64" in capsys.readouterr().out


def test_hardware_that_does_not_match_the_configuration() -> None:
    node = Node(load_config({"cells": 16}), SimHardware(cells=15, temps=4), LoopbackBus())
    node.step(0)
    assert node.state == CONFIG_ERROR
    assert "15 cells" in str(node.config_error)

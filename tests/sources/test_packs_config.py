"""battery.packs: which ids of the topology are commercial packs, checked with the key and the
reason by the one validator `config check`, `run` and the web page use."""

from __future__ import annotations

import pytest

from gateway.cli import main
from gateway.config.root import ConfigError, validate

SERIAL = {"source": "jbd", "port": "/dev/ttyUSB0"}
CAN = {"source": "pylontech-can", "bus": {"interface": "socketcan", "channel": "can1"}}


def problems(packs: dict[int, object], strings: list[list[int]] | None = None) -> list[str]:
    data = {"battery": {"topology": {"strings": strings or [[0, 1], [2, 3]]}, "packs": packs}}
    with pytest.raises(ConfigError) as info:
        validate(data)
    return info.value.problems


def test_packs_and_nodes_mix_in_strings() -> None:
    settings = validate(
        {
            "battery": {
                "topology": {"strings": [[0, 1], [2, 3]]},
                "packs": {1: SERIAL, 3: CAN},
            }
        }
    )
    assert settings.battery.node_ids == [0, 2]
    assert settings.battery.packs[3].bus is not None
    assert settings.battery.packs[3].bus.bus_kwargs() == {
        "interface": "socketcan",
        "channel": "can1",
        "bitrate": 500_000,
    }


@pytest.mark.parametrize(
    ("packs", "expected"),
    [
        ({5: SERIAL}, "battery.packs.5: pack 5 is in no string of battery.topology.strings"),
        ({1: {"source": "jbd"}}, "battery.packs.1: port: a jbd BMS needs its serial port"),
        ({1: {"source": "pylontech-can"}}, "battery.packs.1: bus: a pylontech-can battery"),
        (
            {1: {**CAN, "port": "/dev/ttyUSB0"}},
            "battery.packs.1: port/address/baudrate: a pylontech-can battery is on a CAN bus",
        ),
        ({1: {**SERIAL, "bus": CAN["bus"]}}, "battery.packs.1: bus: a jbd BMS is on a serial"),
        ({1: {"source": "victron", "port": "x"}}, "battery.packs.1.source: Input should be"),
        ({1: {**SERIAL, "poll_s": 5, "timeout_s": 6}}, "battery.packs.1: timeout_s: 6.0 s"),
        (
            {1: SERIAL, 2: SERIAL},
            "battery.packs.2.address: pack 1 is on /dev/ttyUSB0 too",
        ),
        (
            {1: {**SERIAL, "address": 1}, 2: {**SERIAL, "address": 1}},
            "battery.packs.2.address: pack 1 is on /dev/ttyUSB0 too",
        ),
        (
            {1: CAN, 2: CAN},
            "battery.packs.2.id_offset: pack 1 already uses offset 0 on socketcan can1",
        ),
        ({1: {**SERIAL, "colour": "red"}}, "battery.packs.1.colour: unknown key"),
    ],
)
def test_errors_name_the_key_and_the_reason(packs: dict[int, object], expected: str) -> None:
    found = problems(packs)
    assert any(p.startswith(expected) for p in found), found


def test_packs_sharing_a_port_or_a_bus_at_their_own_addresses_and_offsets_are_fine() -> None:
    validate(
        {
            "battery": {
                "topology": {"strings": [[0, 1], [2, 3]]},
                "packs": {
                    0: {**SERIAL, "address": 1},
                    1: {**SERIAL, "address": 2},
                    2: CAN,
                    3: {**CAN, "id_offset": 0x20},
                },
            }
        }
    )


def test_cli_config_check_reports_a_misplaced_pack(tmp_path, capsys) -> None:
    path = tmp_path / "moat.yaml"
    path.write_text(
        "battery:\n  topology:\n    strings: [[0]]\n"
        "  packs:\n    4: {source: jbd, port: /dev/ttyUSB0}\n"
    )
    assert main(["config", "check", str(path)]) != 0
    assert "battery.packs.4: pack 4 is in no string" in capsys.readouterr().err

"""The MCP2515 driver against a register-level fake of the chip."""

from __future__ import annotations

from typing import Any

import pytest

from bms import e2e
from bms.can import (
    FLAG_EXT_ID,
    FLAG_RTR,
    STATE_ACTIVE,
    STATE_BUS_OFF,
    STATE_PASSIVE,
    STATE_WARNING,
    Frame,
)
from bms.can.mcp2515 import Mcp2515Bus, bit_timing
from bms.config import load_config
from bms.hw.sim import SimHardware
from bms.node import Node
from tests.firmware.fake_mcp2515 import CNF1, CNF2, CNF3, EFLG, MODE_NORMAL, FakeMcp2515

NODE_FILTERS = [(0x113, 0x7FF, 0), (0x120, 0x7FF, 0), (0x163, 0x7FF, 0)]


def datasheet_timing(crystal_hz: int, cnf: tuple[int, int, int]) -> dict[str, float]:
    """Decode CNF1..3 with the formulas of the datasheet (section 5)."""
    cnf1, cnf2, cnf3 = cnf
    brp = cnf1 & 0x3F
    sjw = (cnf1 >> 6) + 1
    prop = (cnf2 & 0x07) + 1
    ps1 = ((cnf2 >> 3) & 0x07) + 1
    ps2 = (cnf3 & 0x07) + 1
    assert cnf2 & 0x80, "BTLMODE: PS2 is taken from CNF3"
    tq_per_bit = 1 + prop + ps1 + ps2
    tq = 2 * (brp + 1) / crystal_hz
    return {
        "bitrate": 1 / (tq * tq_per_bit),
        "tq_per_bit": tq_per_bit,
        "sample_point": (1 + prop + ps1) / tq_per_bit,
        "prop": prop,
        "ps1": ps1,
        "ps2": ps2,
        "sjw": sjw,
    }


@pytest.mark.parametrize("crystal", [8_000_000, 16_000_000])
@pytest.mark.parametrize("bitrate", [125_000, 250_000, 500_000, 1_000_000])
def test_bit_timing_meets_the_datasheet_rules(crystal: int, bitrate: int) -> None:
    if crystal == 8_000_000 and bitrate == 1_000_000:
        with pytest.raises(ValueError, match="no bit timing"):
            bit_timing(crystal, bitrate)  # 4 time quanta per bit: below the 8 allowed
        return
    t = datasheet_timing(crystal, bit_timing(crystal, bitrate))
    assert t["bitrate"] == pytest.approx(bitrate)
    assert 8 <= t["tq_per_bit"] <= 25
    assert t["prop"] + t["ps1"] >= t["ps2"] > t["sjw"]
    assert t["ps2"] >= 2
    assert t["sample_point"] == pytest.approx(0.75)


def test_bit_timing_register_values_at_500_kbit() -> None:
    # 8 MHz: TQ = 250 ns, 8 TQ = 1 + PropSeg 3 + PS1 2 + PS2 2, sample point 75 %.
    assert bit_timing(8_000_000, 500_000) == (0x00, 0x8A, 0x01)
    # 16 MHz: TQ = 125 ns, 16 TQ = 1 + PropSeg 6 + PS1 5 + PS2 4, sample point 75 %.
    assert bit_timing(16_000_000, 500_000) == (0x00, 0xA5, 0x03)


def make(crystal: int = 16_000_000, bitrate: int = 500_000) -> tuple[FakeMcp2515, Mcp2515Bus]:
    chip = FakeMcp2515()
    bus = Mcp2515Bus(chip.spi, chip.cs, crystal_hz=crystal, bitrate=bitrate)
    return chip, bus


def test_init_resets_configures_and_goes_to_normal_mode() -> None:
    chip, bus = make(8_000_000, 250_000)
    assert chip.instructions[0] == 0xC0
    assert (chip.regs[CNF1], chip.regs[CNF2], chip.regs[CNF3]) == bit_timing(8_000_000, 250_000)
    assert chip.mode == MODE_NORMAL
    assert chip.errors == []
    assert bus.state() == STATE_ACTIVE


def test_send_loads_a_buffer_and_requests_transmission() -> None:
    chip, bus = make()
    assert bus.send(0x105, b"\x01\x02\x03\x04\x05\x06\x07\x08", 0)
    assert bus.send(0x1ABCDEF, b"\xaa", FLAG_EXT_ID)
    assert bus.send(0x7FF, b"", FLAG_RTR)
    assert [(s.can_id, s.ext, s.rtr, s.data) for s in chip.sent] == [
        (0x105, False, False, b"\x01\x02\x03\x04\x05\x06\x07\x08"),
        (0x1ABCDEF, True, False, b"\xaa"),
        (0x7FF, False, True, b""),
    ]


def test_full_transmit_buffers_report_false_without_blocking() -> None:
    chip, bus = make()
    chip.hold_tx = True
    for k in range(3):
        assert bus.send(0x100 + k, bytes([k]), 0)
    assert not bus.send(0x103, b"\x03", 0)
    chip.release_tx()
    assert sorted(s.can_id for s in chip.sent) == [0x100, 0x101, 0x102]
    assert bus.send(0x103, b"\x03", 0)


def test_receive_standard_extended_and_remote_frames() -> None:
    chip, bus = make()
    frame = Frame()
    assert not bus.recv(frame)
    assert chip.deliver(0x120, b"\x11\x22\x33\x44\x55\x66\x77\x88")
    assert chip.deliver(0x18FF50E5, b"\x01\x02", ext=True)  # rolls over into RXB1
    assert bus.recv(frame)
    assert (frame.id, frame.flags, frame.dlc) == (0x120, 0, 8)
    assert bytes(frame.data) == b"\x11\x22\x33\x44\x55\x66\x77\x88"
    assert bus.recv(frame)
    assert (frame.id, frame.flags, frame.dlc) == (0x18FF50E5, FLAG_EXT_ID, 2)
    assert bytes(frame.data) == b"\x01\x02" + bytes(6)
    assert not bus.recv(frame)
    chip.deliver(0x321, b"\x00" * 4, rtr=True)
    assert bus.recv(frame)
    assert (frame.id, frame.flags, frame.dlc) == (0x321, FLAG_RTR, 4)


def test_filters_pass_only_the_listed_identifiers() -> None:
    chip, bus = make()
    bus.set_filters(NODE_FILTERS)
    assert chip.errors == []
    assert chip.mode == MODE_NORMAL
    assert not chip.deliver(0x114, bytes(8))  # another node's RelayCommand
    assert not chip.deliver(0x113, bytes(8), ext=True)
    frame = Frame()
    for can_id in (0x113, 0x120, 0x163):
        assert chip.deliver(can_id, bytes(8))
        assert bus.recv(frame)
        assert frame.id == can_id


def test_extended_and_masked_filters() -> None:
    chip, bus = make()
    bus.set_filters([(0x100, 0x700, 0), (0x18FF0000, 0x1FFF0000, FLAG_EXT_ID)])
    assert chip.deliver(0x1F3, bytes(1))
    assert not chip.deliver(0x200, bytes(1))
    assert chip.deliver(0x18FF1234, bytes(1), ext=True)
    assert not chip.deliver(0x18FE1234, bytes(1), ext=True)


def test_too_many_filters_accept_everything() -> None:
    chip, bus = make()
    bus.set_filters([(0x100 + k, 0x7FF, 0) for k in range(7)])
    assert chip.deliver(0x555, bytes(1))


def test_error_states_from_the_error_flags() -> None:
    chip, bus = make()
    chip.regs[EFLG] = 0x01
    assert bus.state() == STATE_WARNING
    chip.regs[EFLG] = 0x10
    assert bus.state() == STATE_PASSIVE
    chip.regs[EFLG] = 0x20
    assert bus.state() == STATE_BUS_OFF


def test_restart_reinitialises_and_keeps_the_filters() -> None:
    chip, bus = make()
    bus.set_filters(NODE_FILTERS)
    chip.regs[EFLG] = 0x20
    assert bus.state() == STATE_BUS_OFF
    bus.restart()
    assert bus.state() == STATE_ACTIVE
    assert not chip.deliver(0x114, bytes(8))
    assert chip.deliver(0x113, bytes(8))


def test_a_chip_that_reset_itself_counts_as_bus_off() -> None:
    chip, bus = make()
    chip.power_on()  # brown-out: back in configuration mode, silently off the bus
    assert bus.state() == STATE_BUS_OFF
    bus.restart()
    assert bus.state() == STATE_ACTIVE


def test_receive_overflow_is_counted_and_cleared() -> None:
    chip, bus = make()
    for _ in range(3):
        chip.deliver(0x120, bytes(8))
    assert chip.regs[EFLG] & 0x40
    assert bus.state() == STATE_ACTIVE
    assert bus.rx_overruns == 1
    assert not chip.regs[EFLG] & 0xC0


def test_missing_chip_raises_at_init() -> None:
    class DeadSpi:
        def write(self, buf: Any) -> None:
            pass

        def write_readinto(self, out: Any, into: bytearray) -> None:
            into[:] = bytes(len(into))

    class Pin:
        def value(self, v: int | None = None) -> int:
            return 1

    with pytest.raises(OSError):
        Mcp2515Bus(DeadSpi(), Pin())


def test_node_runs_on_the_mcp2515(moat_db: Any) -> None:
    chip, bus = make()
    hw = SimHardware(cells=16, temps=4)
    node = Node(load_config({"node_id": 3}), hw, bus)
    assert chip.errors == []
    heartbeat = moat_db.get_message_by_name("GatewayHeartbeat")
    for k in range(40):
        if k % 10 == 0:
            buf = bytearray(heartbeat.encode({"Crc": 0, "Counter": 0, "GatewayState": "Running"}))
            e2e.seal(0x120, buf, k // 10)
            assert chip.deliver(0x120, bytes(buf))
        assert not chip.deliver(0x114, bytes(8))  # filtered in the chip
        node.step(k * 50)
    node_state = moat_db.get_message_by_name("NodeState")
    states = [node_state.decode(s.data) for s in chip.sent if s.can_id == 0x103]
    assert states
    assert states[-1]["GatewayLink"] == "Ok"
    assert node.port.tx_dropped == 0

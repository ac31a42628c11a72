"""The emulators' own protocol rules (what a real BMS does with a bad or foreign request),
checked with requests built by the gateway's protocol modules."""

from __future__ import annotations

from gateway.sim.bms.daly import DalyEmulator
from gateway.sim.bms.jbd import JbdEmulator
from gateway.sim.bms.jk import JkEmulator
from gateway.sim.bms.jk_modbus import JkModbusEmulator
from gateway.sources.packs import daly, jbd, jk, jk_modbus


def corrupt(request: bytes, at: int) -> bytes:
    return request[:at] + bytes((request[at] ^ 1,)) + request[at + 1 :]


def test_a_request_with_a_wrong_checksum_gets_no_answer() -> None:
    assert JbdEmulator().respond(corrupt(jbd.read_request(3), 5)) == b""
    assert JkEmulator().respond(corrupt(jk.read_all_request(), 20)) == b""
    assert JkModbusEmulator().respond(corrupt(jk_modbus.read_request(1, 0x1200, 4), 7)) == b""
    assert DalyEmulator().respond(corrupt(daly.request(0x90), 12)) == b""


def test_another_address_gets_no_answer() -> None:
    assert JkEmulator(terminal=5).respond(jk.read_all_request(terminal=4)) == b""
    assert JkModbusEmulator(address=2).respond(jk_modbus.read_request(1, 0x1200, 4)) == b""
    assert JkModbusEmulator(address=2).respond(jk_modbus.read_request(2, 0x1200, 4)) != b""
    assert DalyEmulator(board=1).respond(daly.request(0x90)) == b""
    assert DalyEmulator(board=1).respond(daly.request(0x90, host=0x41)) != b""


def test_unknown_registers_answer_errors() -> None:
    answer = JbdEmulator().respond(jbd.read_request(0x77))
    assert answer[1:4] == b"\x77\x80\x00"  # register 0x77, status 0x80, no data
    emulator = JkModbusEmulator()
    assert emulator.respond(jk_modbus.read_request(1, 0x1500, 2))[1:3] == b"\x83\x02"
    assert emulator.respond(jk_modbus.write_request(1, 0x1078, bytes(4)))[1:3] == b"\x90\x02"


def test_jk_modbus_reads_without_gaps_from_byte_offsets() -> None:
    emulator = JkModbusEmulator()
    emulator.pack.cells_mv = [3100, 3200, 3300]
    # Two registers from CellVol1 (offset 2): 4 bytes, CellVol1 then CellVol2.
    answer = emulator.respond(jk_modbus.read_request(1, 0x1202, 2))
    assert answer[2] == 4 and answer[3:7] == bytes.fromhex("0C80 0CE4")
    # The settings block: BatChargeEN at 0x1070 reads back what was written.
    emulator.respond(jk_modbus.write_request(1, 0x1070, bytes(4)))
    assert emulator.respond(jk_modbus.read_request(1, 0x1070, 2))[3:7] == bytes(4)


def test_daly_numbers_frames_as_configured() -> None:
    emulator = DalyEmulator(first_frame=1)
    emulator.pack.cells_mv = [3300] * 4
    frames = emulator.respond(daly.request(0x95))
    assert len(frames) == 26 and (frames[4], frames[17]) == (1, 2)

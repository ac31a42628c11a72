"""JK-PB Modbus against its register map ("BMS RS485 Modbus V1.1", syssi/esphome-jk-bms
docs/pb2a16s20p/): the document quotes no frames, so the data block is laid out here, field
by field, from the map's offsets; the CRC is checked against the Modbus specification's."""

from __future__ import annotations

import pytest

from gateway.sources.packs import jk_modbus
from gateway.sources.packs.reading import PackError


def block() -> bytearray:
    data = bytearray(jk_modbus.READ_BYTES)
    for i, mv in enumerate((3401, 3402, 3399, 3400)):
        data[2 * i : 2 * i + 2] = mv.to_bytes(2, "big")  # CellVol0..
    data[64:68] = (0b1111).to_bytes(4, "big")  # CellSta: cells 0..3 present
    data[138:140] = (-52).to_bytes(2, "big", signed=True)  # TempMos -5.2 degC
    data[144:148] = (13602).to_bytes(4, "big")  # BatVol mV
    data[152:156] = (-12345).to_bytes(4, "big", signed=True)  # BatCurrent mA
    data[156:158] = (215).to_bytes(2, "big")  # TempBat1
    data[158:160] = (220).to_bytes(2, "big")  # TempBat2 (absent below)
    data[160:164] = ((1 << 4) | (1 << 19) | (1 << 14)).to_bytes(4, "big")  # Alarms
    data[167] = 64  # SOCStateOfcharge
    data[168:172] = (176000).to_bytes(4, "big")  # SOCCapRemain mAh
    data[172:176] = (280000).to_bytes(4, "big")  # SOCFullChargeCap mAh
    data[176:180] = (37).to_bytes(4, "big")  # SOCCycleCount
    data[192], data[193] = 0, 1  # Charge, Discharge
    data[208] = 0b011  # MOS sensor and battery sensor 1 present
    return data


def test_crc_is_modbus() -> None:
    # Read 10 holding registers from 0 at address 1: CRC C5 CD (Modbus over serial line).
    assert jk_modbus.read_request(1, 0, 10) == bytes.fromhex("01 03 00 00 00 0A C5 CD")


def test_the_data_block_parses() -> None:
    r = jk_modbus.parse(bytes(block()))
    assert r.cells == (3.401, 3.402, 3.399, 3.4)
    assert r.temperatures == (-5.2, 21.5)
    assert r.voltage == pytest.approx(13.602) and r.current == pytest.approx(-12.345)
    assert r.soc == 64 and r.cycles == 37
    assert r.remaining_ah == 176 and r.capacity_ah == 280
    assert (r.charge_on, r.discharge_on) == (False, True)
    # Bit 19 is the password reminder, not a fault.
    assert r.alarms == {"cell over-voltage protection", "discharge short-circuit protection"}


def test_a_read_answer_frames_and_a_poll_takes_it() -> None:
    body = bytes((1, 3, jk_modbus.READ_BYTES)) + bytes(block())
    frame = jk_modbus.with_crc(body)
    framer = jk_modbus.ModbusFramer(1)
    assert framer.feed(b"\x00\x99" + frame[:50]) == []
    assert framer.feed(frame[50:]) == [frame]
    assert framer.skipped == 2
    poll = jk_modbus.JkModbus(1).poll()
    assert (
        poll.request()
        == bytes.fromhex("01 03 12 00 00 69") + jk_modbus.read_request(1, 0x1200, 105)[6:]
    )
    assert poll.take(frame)
    assert poll.request() is None
    assert poll.result().soc == 64


def test_exceptions_and_short_blocks_raise() -> None:
    poll = jk_modbus.JkModbus(1).poll()
    exception = jk_modbus.with_crc(bytes((1, 0x83, 2)))
    assert jk_modbus.ModbusFramer(1).feed(exception) == [exception]
    with pytest.raises(PackError, match="Modbus exception 2 to function 0x03"):
        poll.take(exception)
    with pytest.raises(PackError, match="data block 0x1200: 10 bytes"):
        jk_modbus.parse(bytes(10))


def test_switch_writes_the_enable_settings() -> None:
    poll = jk_modbus.JkModbus(3).switch_poll(charge=False, discharge=True)
    first = poll.request()
    assert first is not None
    assert first[:11] == bytes.fromhex("03 10 10 70 00 02 04 00 00 00 00")
    echo_other = jk_modbus.with_crc(bytes.fromhex("03 10 10 74 00 02"))
    assert not poll.take(echo_other)  # the echo of the other write is not this one's
    assert poll.take(jk_modbus.with_crc(first[:6]))
    second = poll.request()
    assert second is not None and second[2:4] == b"\x10\x74" and second[-3] == 1

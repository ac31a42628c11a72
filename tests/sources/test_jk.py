"""JK RS485 (0x4E 0x57) protocol against the frames quoted with JK's "BMS-RS485
communication protocol" in syssi/esphome-jk-bms docs/protocol-design-uart-ttl-gps-port.md,
and a capture of a JK-B1A8S20P published with Kenura-R-Gunarathna/jkbms-esp32 README.md."""

from __future__ import annotations

import pytest

from gateway.sources.packs import jk
from gateway.sources.packs.reading import PackError

DOC_REQUEST = bytes.fromhex("4E 57 00 13 00 00 00 00 06 03 00 00 00 00 00 00 68 00 00 01 29")
DOC_ANSWER = bytes.fromhex(
    "4E 57 01 1B 00 00 00 00 06 00 01"
    " 79 2A 01 0E ED 02 0E FA 03 0E F7 04 0E EC 05 0E F8 06 0E FA 07 0E F1 08 0E F8 09 0E E3"
    " 0A 0E FA 0B 0E F1 0C 0E FB 0D 0E FB 0E 0E F2"
    " 80 00 1D 81 00 1E 82 00 1C 83 14 EF 84 80 D0 85 0F 86 02 87 00 04 89 00 00 00 00 8A 00 0E"
    " 8B 00 00 8C 00 07 8E 16 26 8F 10 AE 90 0F D2 91 0F A0 92 00 05 93 0B EA 94 0C 1C 95 00 05"
    " 96 01 2C 97 00 07 98 00 03 99 00 05 9A 00 05 9B 0C E4 9C 00 08 9D 01 9E 00 5A 9F 00 46"
    " A0 00 64 A1 00 64 A2 00 14 A3 00 46 A4 00 46 A5 FF EC A6 FF F6 A7 FF EC A8 FF F6 A9 0E"
    " AA 00 00 00 0E AB 01 AC 01 AD 04 11 AE 01 AF 01 B0 00 0A B1 14"
    " B2 31 32 33 34 35 36 00 00 00 00 B3 00 B4 49 6E 70 75 74 20 55 73 B5 32 31 30 31"
    " B6 00 00 E2 00 B7 48 36 2E 58 5F 5F 53 36 2E 31 2E 33 53 5F 5F B8 00 B9 00 00 00 00"
    " BA 42 54 33 30 37 32 30 32 30 31 32 30 30 30 30 32 30 30 35 32 31 30 30 31 C0 01"
    " 00 00 00 00 68 00 00 54 D1"
)
CAPTURE = bytes.fromhex(
    "4E 57 01 06 00 00 00 00 06 00 01 79 15 01 0E D2 02 0E D2 03 0E D2 04 0E D2 05 0E DB 06 0E"
    " DB 07 0E DB 80 00 1C 81 00 1C 82 00 1C 83 0A 62 84 00 00 85 5A 86 02 87 00 00 89 00 00 00"
    " 05 8A 00 07 8B 00 00 8C 00 03 8E 0B 7C 8F 07 B6 90 10 68 91 10 54 92 00 03 93 0B 04 94 0B"
    " 22 95 00 03 96 01 2C 97 00 C8 98 01 2C 99 00 19 9A 00 1E 9B 0B B8 9C 00 0A 9D 01 9E 00 64"
    " 9F 00 50 A0 00 46 A1 00 3C A2 00 14 A3 00 46 A4 00 46 A5 FF EC A6 FF F6 A7 FF EC A8 FF F6"
    " A9 07 AA 00 00 00 75 AB 01 AC 01 AD 03 CC AE 01 AF 01 B0 00 0A B1 14 B2 31 32 33 34 35 36"
    " 00 00 00 00 B3 00 B4 49 6E 70 75 74 20 55 73 B5 32 34 30 37 B6 00 00 08 19 B7 31 31 2E 58"
    " 41 5F 53 31 31 2E 35 31 5F 5F 5F B8 00 B9 00 00 00 75 BA 49 6E 70 75 74 20 55 73 65 72 64"
    " 61 4A 4B 5F 42 31 41 38 53 32 30 50 00 C0 01 00 00 00 00 68 00 00 4D 89"
)


def test_the_read_all_request_is_the_documents() -> None:
    assert jk.read_all_request() == DOC_REQUEST


def test_the_documents_answer_frames_and_parses() -> None:
    framer = jk.JkFramer()
    assert framer.feed(DOC_ANSWER[:100]) == []
    assert framer.feed(DOC_ANSWER[100:]) == [DOC_ANSWER]
    r = jk.parse(jk.info_of(DOC_ANSWER))
    assert len(r.cells) == 14 and r.cells[0] == pytest.approx(3.821)
    assert r.voltage == pytest.approx(53.59)
    assert r.current == pytest.approx(2.08)  # 0xC0 = 1: top bit = charging, 0xD0 x 10 mA
    assert r.temperatures == (29.0, 30.0, 28.0)
    assert r.soc == 15 and r.cycles == 4
    assert (r.charge_on, r.discharge_on) == (True, True)  # 0x8C = 0x0007
    assert r.capacity_ah == 14  # 0xB9 actual capacity 0: the 0xAA setting
    assert r.alarms == frozenset()


def test_the_published_capture_parses() -> None:
    assert jk.JkFramer().feed(CAPTURE) == [CAPTURE]
    r = jk.parse(jk.info_of(CAPTURE))
    assert len(r.cells) == 7 and r.voltage == pytest.approx(26.58)
    assert r.soc == 90 and r.capacity_ah == 117
    assert (r.charge_on, r.discharge_on) == (True, True)


def test_old_current_encoding_temperatures_below_zero_and_warnings() -> None:
    info = bytearray(jk.info_of(DOC_ANSWER))
    fields = jk.fields(bytes(info))
    assert fields[0xC0] == b"\x01"
    # Protocol version 0: current = (10000 - value) x 10 mA; 11000 = 10 A discharging.
    patched = bytes(info).replace(b"\x84\x80\xd0", b"\x84" + (11000).to_bytes(2, "big"))
    patched = patched.replace(b"\xc0\x01", b"\xc0\x00")
    patched = patched.replace(b"\x80\x00\x1d", b"\x80\x00\x65")  # 101 = -1 degC
    patched = patched.replace(b"\x8b\x00\x00", b"\x8b\x04\x04")  # bits 2 and 10
    r = jk.parse(patched)
    assert r.current == pytest.approx(-10.0)
    assert r.temperatures[0] == -1.0
    assert r.alarms == {"charging over-voltage", "cell over-voltage"}


def test_write_requests() -> None:
    request = jk.switch_request(jk.CHARGE_SWITCH, False)
    assert request[8] == jk.WRITE and request[11:13] == b"\xab\x00"
    assert jk.JkFramer().feed(request) == [request]  # well formed: length, end, checksum


def test_bad_data_raises_naming_what() -> None:
    with pytest.raises(PackError, match="unknown identifier 0x88"):
        jk.fields(b"\x88\x00\x00")
    with pytest.raises(PackError, match="0x83 cut short"):
        jk.fields(b"\x83\x14")
    with pytest.raises(PackError, match="lacks identifier 0x83"):
        jk.parse(b"\x79\x03\x01\x0e\xed\x84\x00\x00\x8c\x00\x03")

"""JBD 0xDD protocol against the frames quoted in Jiabaida's "Software board general protocol
V4" (syssi/esphome-jk-bms docs/JK-Jiabaida_communication_protocol_v4.0.pdf)."""

from __future__ import annotations

import pytest

from gateway.sources.packs import jbd
from gateway.sources.packs.reading import PackError

# Section 3 examples, as printed in the document.
DOC_BASIC = bytes.fromhex(
    "DD 03 00 1B 17 00 00 00 02 D0 03 E8 00 00 20 78 00 00 00 00 00 00 10 48 03 0F 02 0B 76"
    " 0B 82 FB FF 77"
)
DOC_CELLS = bytes.fromhex(
    "DD 04 00 1E 0F 66 0F 63 0F 63 0F 64 0F 3E 0F 63 0F 37 0F 5B 0F 65 0F 3B 0F 63 0F 63 0F 3C"
    " 0F 66 0F 3D F9 F9 77"
)
# Section 5, "protocol data interpretation": the 17-cell answers, byte by byte.
DOC_CELLS_17 = bytes.fromhex(
    "DD 04 00 22 0EC8 0EC8 0ECB 0ECF 0ECA 0EC7 0ECA 0ECD 0EC9 0ECA 0ECB 0ECB 0EC8 0ECC 0EC8"
    " 0EC9 0EC9 F187 77"
)
DOC_BASIC_17 = bytes.fromhex(
    "DD 03 00 1F 19DF F824 0DA5 0FA0 0002 2491 0000 0000 0000 12 57 03 11 04 0B98 0BA9 0B96"
    " 0B97 F89A 77"
)


def test_requests_are_the_documents() -> None:
    assert jbd.read_request(0x03) == bytes.fromhex("DD A5 03 00 FF FD 77")
    assert jbd.read_request(0x04) == bytes.fromhex("DD A5 04 00 FF FC 77")
    # "DD 5A E1 02 00 02 FF 1B 77 ... means software shutdown discharging MOS"
    assert jbd.mos_request(charge=True, discharge=False) == bytes.fromhex(
        "DD 5A E1 02 00 02 FF 1B 77"
    )
    assert jbd.mos_request(True, True)[4:6] == b"\x00\x00"
    assert jbd.mos_request(False, False)[4:6] == b"\x00\x03"


def test_the_documents_answers_frame_and_parse() -> None:
    framer = jbd.JbdFramer()
    assert framer.feed(DOC_BASIC + DOC_CELLS) == [DOC_BASIC, DOC_CELLS]
    r = jbd.parse(jbd.payload(DOC_BASIC, 0x03), jbd.payload(DOC_CELLS, 0x04))
    assert r.voltage == pytest.approx(58.88)
    assert r.current == 0
    assert r.remaining_ah == pytest.approx(7.2) and r.capacity_ah == pytest.approx(10.0)
    assert r.soc == 72 and r.cycles == 0
    assert (r.charge_on, r.discharge_on) == (True, True)
    assert r.temperatures == (20.3, 21.5)
    assert len(r.cells) == 15 and r.cells[0] == pytest.approx(3.942)
    assert r.alarms == frozenset()


def test_the_documents_interpretation_example() -> None:
    framer = jbd.JbdFramer()
    assert framer.feed(DOC_BASIC_17 + DOC_CELLS_17) == [DOC_BASIC_17, DOC_CELLS_17]
    r = jbd.parse(jbd.payload(DOC_BASIC_17, 0x03), jbd.payload(DOC_CELLS_17, 0x04))
    assert r.voltage == pytest.approx(66.23)
    assert r.current == pytest.approx(-20.12)  # "the final current is -20.12A"
    assert r.remaining_ah == pytest.approx(34.93) and r.capacity_ah == pytest.approx(40.0)
    assert r.cycles == 2 and r.soc == 87
    # 0x0B98 = 2968, 2968 - 2731 = 237 (the document's "= 247 ... 24.7" is a slip: its own
    # rule, 2731 + 10 x degC, gives 23.7).
    assert r.temperatures[0] == pytest.approx(23.7)
    assert len(r.cells) == 17 and r.cells[0] == pytest.approx(3.784)


def test_protection_bits_are_named_and_the_software_lock_is_not_an_alarm() -> None:
    basic = bytearray(jbd.payload(DOC_BASIC, 0x03))
    basic[16:18] = ((1 << 0) | (1 << 10) | (1 << 12)).to_bytes(2, "big")
    r = jbd.parse(bytes(basic), jbd.payload(DOC_CELLS, 0x04))
    assert r.alarms == {"cell block over-voltage", "short circuit"}


def test_bad_answers_raise_naming_what() -> None:
    error = bytes.fromhex("DD 03 80 00") + jbd.checksum(b"\x80\x00").to_bytes(2, "big") + b"\x77"
    with pytest.raises(PackError, match="error status 0x80"):
        jbd.payload(error, 0x03)
    with pytest.raises(PackError, match="cell voltages 0x04: 30 bytes for 14 cells"):
        basic = bytearray(jbd.payload(DOC_BASIC, 0x03))
        basic[21] = 14
        jbd.parse(bytes(basic), jbd.payload(DOC_CELLS, 0x04))
    with pytest.raises(PackError, match="basic information 0x03"):
        jbd.parse(b"\x00" * 10, b"")

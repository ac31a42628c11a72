"""Daly 0xA5 protocol against its document (Daly "UART/485 Communications Protocol V1.2",
maland16/daly-bms-uart docs/): it quotes no frames, so the answers are laid out here byte by
byte from its table; the request is the 13-byte frame of its section 2.3.1."""

from __future__ import annotations

import pytest

from gateway.sources.packs import daly
from gateway.sources.packs.reading import PackError


def answer(data_id: int, data: bytes) -> bytes:
    body = bytes((0xA5, 0x01, data_id, 8)) + data.ljust(8, b"\x00")
    return body + bytes((sum(body) & 0xFF,))


ANSWERS = [
    # 0x90: 52.9 V cumulative and gathered, 30000 - 125 = 12.5 A discharging, 71.3 %
    answer(0x90, bytes.fromhex("0211 0211 74B3 02C9")),
    # 0x93: discharging, charge MOS off, discharge MOS on, life 7, 71300 mAh
    answer(0x93, bytes.fromhex("02 00 01 07 00011684")),
    # 0x94: 4 cells, 2 sensors
    answer(0x94, bytes.fromhex("04 02 00 01 00")),
    # 0x95: frames 1 and 2 (numbered from 1, as BMSes in the field do)
    answer(0x95, bytes.fromhex("01 0D05 0D06 0D07")),
    answer(0x95, bytes.fromhex("02 0D08")),
    # 0x96: one frame, 25 and -3 degC (+40)
    answer(0x96, bytes.fromhex("01 41 25")),
    # 0x98: byte 0 bit 1 (cell volt high level 2), byte 6 bit 2 (short circuit)
    answer(0x98, bytes.fromhex("02 00 00 00 00 00 04 00")),
]


def test_the_request_is_the_documents_frame() -> None:
    # A5, upper computer 0x40, data ID, length 8, 8 reserved bytes, sum of all (low byte).
    assert daly.request(0x90) == bytes.fromhex("A5 40 90 08 00 00 00 00 00 00 00 00 7D")


def test_a_complete_poll_parses() -> None:
    poll = daly.Daly().poll()
    framer = daly.DalyFramer()
    frames = framer.feed(b"".join(ANSWERS))
    asked = []
    for frame in frames:
        request = poll.request()
        assert request is not None
        asked.append(request[2])
        assert poll.take(frame)
    assert poll.request() is None
    assert asked == [0x90, 0x93, 0x94, 0x95, 0x95, 0x96, 0x98]
    r = poll.result()
    assert r.voltage == pytest.approx(52.9) and r.current == pytest.approx(-12.5)
    assert r.soc == pytest.approx(71.3) and r.remaining_ah == pytest.approx(71.3)
    assert r.cells == (3.333, 3.334, 3.335, 3.336)
    assert r.temperatures == (25.0, -3.0)
    assert (r.charge_on, r.discharge_on) == (False, True)
    assert r.alarms == {"cell volt high level 2", "short circuit protect fault"}
    assert r.capacity_ah is None and r.cycles is None


def test_frames_numbered_from_zero_as_the_document_says() -> None:
    frames = [answer(0x95, bytes.fromhex("00 0D05 0D06 0D07")), answer(0x95, b"\x01\x0d\x08")]
    cells = daly.numbered(frames, 4, 3, "cells")
    assert cells == [b"\x0d\x05", b"\x0d\x06", b"\x0d\x07", b"\x0d\x08"]


def test_a_missing_frame_raises() -> None:
    with pytest.raises(PackError, match=r"cells: frames \[1, 3\], expected 2"):
        daly.numbered([answer(0x95, b"\x01\x0d\x05"), answer(0x95, b"\x03\x0d\x08")], 4, 3, "cells")


def test_our_echo_or_an_answer_for_another_id_is_not_taken() -> None:
    poll = daly.Daly(board=2).poll()
    request = poll.request()
    assert request == daly.request(0x90, host=0x42)
    assert not poll.take(answer(0x93, bytes(8)))
    assert not poll.take(request)  # heard back on an adapter with echo
    assert poll.take(ANSWERS[0])


def test_no_mosfet_command() -> None:
    assert not daly.Daly.can_switch
    with pytest.raises(PackError, match="no MOSFET command"):
        daly.Daly().switch_poll(True, True)

"""CRC-8/SAE-J1850 and alive-counter reference implementation (bms.e2e)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bms import e2e

# Known-answer vectors of CRC-8/SAE-J1850 (poly 0x1D, init 0xFF, xorout 0xFF): the catalogue
# check value and the AUTOSAR CRC library's published test vectors.
VECTORS = [
    (b"123456789", 0x4B),
    (bytes([0x00, 0x00, 0x00, 0x00]), 0x59),
    (bytes([0xF2, 0x01, 0x83]), 0x37),
    (bytes([0x0F, 0xAA, 0x00, 0x55]), 0x79),
    (bytes([0x00, 0xFF, 0x55, 0x11]), 0xB8),
    (bytes([0x33, 0x22, 0x55, 0xAA, 0xBB, 0xCC, 0xDD, 0xEE, 0xFF]), 0xCB),
    (bytes([0x92, 0x6B, 0x55]), 0x8C),
    (bytes([0xFF, 0xFF, 0xFF, 0xFF]), 0x74),
]


@pytest.mark.parametrize(("data", "crc"), VECTORS)
def test_known_answer_vectors(data: bytes, crc: int) -> None:
    assert e2e.crc8(data) == crc


def bitwise_crc8(data: bytes) -> int:
    """Independent bit-at-a-time implementation, straight from the definition."""
    crc = 0xFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1D) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc ^ 0xFF


@given(st.binary(max_size=16))
def test_table_driven_crc_matches_the_definition(data: bytes) -> None:
    assert e2e.crc8(data) == bitwise_crc8(data)


def test_frame_crc_covers_the_identifier_little_endian_then_bytes_1_to_7() -> None:
    data = bytearray(b"\x00\x25\x00\x00\x00\x00\x00\x00")
    expected = bitwise_crc8(bytes([0x13, 0x01]) + bytes(data[1:]))
    assert e2e.frame_crc(0x113, data) == expected


def test_seal_then_check_and_every_single_bit_flip_is_caught() -> None:
    buf = bytearray(8)
    buf[1] = 0x20  # request Close in the high nibble
    e2e.seal(0x113, buf, counter=7)
    assert buf[1] == 0x27
    assert e2e.crc_ok(0x113, bytes(buf))
    for byte in range(8):
        for bit in range(8):
            bad = bytearray(buf)
            bad[byte] ^= 1 << bit
            assert not e2e.crc_ok(0x113, bytes(bad)), (byte, bit)


def test_same_payload_on_another_nodes_identifier_fails() -> None:
    buf = bytearray(8)
    e2e.seal(0x113, buf, counter=1)
    assert not e2e.crc_ok(0x114, bytes(buf))
    assert not e2e.crc_ok(0x120, bytes(buf))  # nor as a heartbeat


def test_short_frame_is_not_ok() -> None:
    assert not e2e.crc_ok(0x113, b"\x00")


def test_alive_check_accepts_advancing_counters_and_wraps() -> None:
    check = e2e.AliveCheck()
    results = [check.check(c % 16) for c in range(5, 40)]
    assert results == [e2e.ACCEPT] * len(results)


def test_alive_check_rejects_a_repeated_counter() -> None:
    check = e2e.AliveCheck()
    assert check.check(3) == e2e.ACCEPT
    assert check.check(3) == e2e.REPEATED
    assert check.check(3) == e2e.REPEATED
    assert check.check(4) == e2e.ACCEPT


def test_alive_check_tolerates_one_lost_frame_but_not_a_jump() -> None:
    check = e2e.AliveCheck(max_delta=2)
    assert check.check(0) == e2e.ACCEPT
    assert check.check(2) == e2e.ACCEPT  # one lost
    assert check.check(9) == e2e.JUMPED


def test_alive_check_resyncs_after_two_consecutive_counters() -> None:
    # A restarted gateway starts again at 0: the first frame is rejected, the second
    # (counter +1) is accepted and the stream continues.
    check = e2e.AliveCheck()
    for c in range(8, 12):
        assert check.check(c) == e2e.ACCEPT
    assert check.check(0) == e2e.JUMPED
    assert check.check(1) == e2e.ACCEPT
    assert check.check(2) == e2e.ACCEPT


def test_alive_check_does_not_resync_on_a_stuck_value_after_a_jump() -> None:
    check = e2e.AliveCheck()
    check.check(5)
    assert check.check(12) == e2e.JUMPED
    assert check.check(12) == e2e.JUMPED
    assert check.check(5) == e2e.REPEATED

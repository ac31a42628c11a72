"""bms.auth against CPython's own hmac (an independent implementation of RFC 2104)."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from bms.auth import command_mac, hmac_sha256, newer, parse_key


@pytest.mark.parametrize("key_len", [1, 16, 32, 64, 65, 100])
def test_hmac_matches_the_standard_library(key_len: int) -> None:
    key = bytes(range(key_len))
    for message in (b"", b"abc", bytes(range(200))):
        assert hmac_sha256(key, message) == hmac.new(key, message, hashlib.sha256).digest()


def test_rfc_4231_test_case_2() -> None:
    digest = hmac_sha256(b"Jefe", b"what do ya want for nothing?")
    assert digest.hex() == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"


def test_command_mac_covers_the_id_and_bytes_1_to_4() -> None:
    key = bytes(16)
    data = bytes([0xAA, 1, 2, 3, 4, 9, 9, 9])
    expected = hmac.new(key, bytes([0x13, 0x01, 1, 2, 3, 4]), hashlib.sha256).digest()[:3]
    assert command_mac(key, 0x113, data) == int.from_bytes(expected, "big")
    assert command_mac(key, 0x114, data) != command_mac(key, 0x113, data)


def test_freshness_is_newer_within_half_the_range() -> None:
    assert newer(5, 4) and not newer(4, 4) and not newer(3, 4)
    assert newer(2, 0xFFFFFE)  # across the wrap
    assert not newer(0x800004, 4)


def test_key_parsing() -> None:
    assert parse_key("") is None
    assert parse_key("00" * 16) == bytes(16)
    with pytest.raises(ValueError, match="command_key"):
        parse_key("abc")

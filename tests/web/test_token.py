"""The API token file: created 0600 at the first start, reused after, checked in constant time."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from gateway.web.auth import TokenError, authorized, load_or_create


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_created_once_with_mode_0600_whatever_the_umask(tmp_path: Path) -> None:
    path = tmp_path / "state" / "moat-bms-token"
    old = os.umask(0)
    try:
        token, created = load_or_create(path)
    finally:
        os.umask(old)
    assert created
    assert mode(path) == 0o600
    assert len(token) >= 40
    assert path.read_text() == token + "\n"
    again, created_again = load_or_create(path)
    assert (again, created_again) == (token, False)
    other, _ = load_or_create(tmp_path / "other-token")
    assert other != token


def test_a_file_readable_by_others_is_narrowed(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text("a-token-written-by-hand-1234\n")
    path.chmod(0o644)
    token, created = load_or_create(path)
    assert (token, created) == ("a-token-written-by-hand-1234", False)
    assert mode(path) == 0o600


@pytest.mark.parametrize("content", [b"short\n", b"two words in a token file\n", b"\xff" * 40])
def test_an_unusable_token_file_is_refused(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "token"
    path.write_bytes(content)
    path.chmod(0o600)
    with pytest.raises(TokenError):
        load_or_create(path)
    assert path.read_bytes() == content  # never overwritten


def test_authorized() -> None:
    token = "0123456789abcdef0123"
    assert authorized(f"Bearer {token}", token)
    assert authorized(f"bearer {token}", token)
    assert not authorized(f"Bearer {token[:-1]}", token)
    assert not authorized(f"Bearer {token}x", token)
    assert not authorized(f"Basic {token}", token)
    assert not authorized(token, token)
    assert not authorized(None, token)
    assert not authorized(f"Bearer {token}", None)
    assert not authorized("Bearer ünïcode", token)

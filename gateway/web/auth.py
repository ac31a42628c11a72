"""The API token: one random secret in a file of mode 0600, created at the first start.

Reading is open to everyone who can reach the page; every action and configuration edit
needs `Authorization: Bearer TOKEN`. The token is compared in constant time.
"""

from __future__ import annotations

import hmac
import logging
import os
import secrets
import stat
from pathlib import Path

log = logging.getLogger(__name__)

TOKEN_BYTES = 32  # 256 bits: not guessable, whatever the number of attempts
MIN_TOKEN_LENGTH = 16  # a hand-written token shorter than this is refused
FILE_MODE = 0o600


class TokenError(Exception):
    """The token file exists but cannot be used (unreadable, too short, not text)."""


def load_or_create(path: Path) -> tuple[str, bool]:
    """The token in `path`, creating the file (mode 0600) with a new one if it is missing.

    Returns (token, created). A file readable by others is narrowed to 0600 with a
    warning. Raises TokenError when the file is unusable and OSError when it cannot be made.
    """
    try:
        return _read(path), False
    except FileNotFoundError:
        pass
    token = secrets.token_urlsafe(TOKEN_BYTES)
    path.parent.mkdir(parents=True, exist_ok=True)
    # O_EXCL: never follow or reuse a file someone else created in the meantime.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)  # whatever the umask
        os.write(fd, (token + "\n").encode("ascii"))
        os.fsync(fd)
    finally:
        os.close(fd)
    return token, True


def _read(path: Path) -> str:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        log.warning("token file %s was mode %04o: narrowing it to %04o", path, mode, FILE_MODE)
        path.chmod(FILE_MODE)
    try:
        token = path.read_text(encoding="ascii").strip()
    except (UnicodeDecodeError, ValueError) as exc:
        raise TokenError(f"{path}: not an ASCII token ({exc})") from None
    if len(token) < MIN_TOKEN_LENGTH or any(c.isspace() for c in token):
        raise TokenError(
            f"{path}: the token must be one word of at least {MIN_TOKEN_LENGTH} characters "
            "(delete the file to have a new one generated)"
        )
    return token


def authorized(header: str | None, token: str | None) -> bool:
    """True when the Authorization header carries the token (constant-time comparison)."""
    if token is None or header is None:
        return False
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode(), token.encode())

"""The names inverters read byte for byte (0x35E manufacturer, 0x370/0x371 BMS name)."""

from __future__ import annotations

import functools

MANUFACTURER_LENGTH = 8  # 0x35E carries eight ASCII characters
BMS_NAME_LENGTH = 16  # 0x370 and 0x371 carry eight each


# Every InverterReport checks its names: the same few, every tick.
@functools.lru_cache(maxsize=64)
def check_name(name: str, max_length: int, what: str) -> str:
    """Return `name` if it is printable ASCII of at most `max_length` characters.

    Raises ValueError otherwise: inverters compare these names byte for byte.
    """
    if not name.isascii() or not name.isprintable():
        raise ValueError(f"{what} must be printable ASCII, got {name!r}")
    if len(name) > max_length:
        raise ValueError(f"{what} is at most {max_length} characters, got {name!r}")
    return name

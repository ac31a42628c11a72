"""MicroPython's tick arithmetic on CPython, for tests that run the node past a tick wrap.

MicroPython's time.ticks_ms() wraps with a period of 2**30 ms (12.4 days) on every port,
and ticks_diff(end, start) is only meaningful while the two lie within 2**29 ms of each
other (docs.micropython.org, time.ticks_diff). bms.compat falls back to plain integers on
CPython; micropython_ticks() replaces the functions in every firmware module that imported
them, so the node compares its timestamps exactly as it does on a board.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

PERIOD = 1 << 30
MASK = PERIOD - 1
HALF = PERIOD >> 1


def ticks_add(ticks: int, delta: int) -> int:
    """MicroPython's time.ticks_add: (ticks + delta) modulo the period."""
    return (ticks + delta) & MASK


def ticks_diff(end: int, start: int) -> int:
    """MicroPython's time.ticks_diff: the signed difference, wrapped into -2**29 .. 2**29."""
    return ((end - start + HALF) & MASK) - HALF


@contextmanager
def micropython_ticks(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every loaded bms module compares and advances ticks the MicroPython way."""
    for name, module in list(sys.modules.items()):
        if name == "bms" or name.startswith("bms."):
            if hasattr(module, "ticks_diff"):
                monkeypatch.setattr(module, "ticks_diff", ticks_diff)
            if hasattr(module, "ticks_add"):
                monkeypatch.setattr(module, "ticks_add", ticks_add)
    yield

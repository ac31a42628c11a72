"""Prints how many frames the fuzzers fed in (tests/fuzz/profile.py)."""

from __future__ import annotations

from typing import Any

from tests.fuzz.profile import FRAMES, LONG


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if FRAMES:
        run = "long" if LONG else "quick"
        parts = ", ".join(f"{n} into {target}" for target, n in sorted(FRAMES.items()))
        terminalreporter.write_line(f"fuzz ({run}): {sum(FRAMES.values())} frames: {parts}")

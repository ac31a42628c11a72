"""Behaviour kept: fixed scenarios with a fixed seed give, frame for frame and byte for byte,
the candump logs recorded in tests/files/golden (tools/record_golden.py). A change meant to
alter frames re-records them with `make golden` and says why."""

from __future__ import annotations

from pathlib import Path

import pytest

from tools.record_golden import RUNS, load, record

OUT = Path(__file__).resolve().parents[2] / "test-output"


@pytest.mark.parametrize("name", RUNS)
def test_a_scenario_sends_the_recorded_frames_byte_for_byte(name: str) -> None:
    expected = load(name)
    got = record(name)
    if got != expected:
        OUT.mkdir(exist_ok=True)
        (OUT / f"{name}.log").write_text(got, encoding="ascii")
        old, new = expected.splitlines(), got.splitlines()
        first = next(
            (i for i, (a, b) in enumerate(zip(old, new, strict=False)) if a != b),
            min(len(old), len(new)),
        )
        pytest.fail(
            f"{name}: the frames differ from tests/files/golden/{name}.log.gz from line "
            f"{first + 1} ({len(old)} recorded, {len(new)} now): "
            f"recorded {old[first] if first < len(old) else 'nothing'!r}, "
            f"now {new[first] if first < len(new) else 'nothing'!r}; "
            f"this run is in test-output/{name}.log"
        )
    assert got.count("\n") > 10_000  # both buses, the whole scenario

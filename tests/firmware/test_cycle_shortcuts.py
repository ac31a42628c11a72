"""The node cycle's shortcuts (issue 21) give what the long way gives.

The summary takes the extremes with built-ins when every reading is usable, a ring copies an
8-byte frame in one piece, the report scheduler advances its streams in one pass, the
protection compares one bound per measure: each checked here against the rule it stands
for, on the cases where the short and the long way part (ties, unusable readings, short
frames, a stalled schedule, a table the bound cannot serve).
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import pairwise

import pytest

from bms import protect
from bms.can import Frame, FrameRing
from bms.config import load_config
from bms.hw import NOT_AVAILABLE
from bms.hw.sim import SimHardware
from bms.measure import CELL_MV_MAX, CELL_MV_MIN, TEMP_DC_MAX, TEMP_DC_MIN, Summary
from tests.firmware.harness import Bench


def extremes(values: list[int], usable: list[bool]) -> tuple[int, int, int, int, int, int]:
    """(min, its 1-based number, max, its number, sum, unusable count) over the usable
    readings, the first of equal extremes; zeros when none is usable (bms.measure)."""
    good = [(v, i + 1) for i, v in enumerate(values) if usable[i]]
    if not good:
        return 0, 0, 0, 0, 0, len(values)
    lo = min(v for v, _ in good)
    hi = max(v for v, _ in good)
    lo_no = next(n for v, n in good if v == lo)
    hi_no = next(n for v, n in good if v == hi)
    return lo, lo_no, hi, hi_no, sum(v for v, _ in good), len(values) - len(good)


CELL_CASES = {
    "all usable": ([3400] * 16, 0),
    "ties at both extremes": ([3401, 3399, 3405, 3399, 3405] + [3400] * 11, 0),
    "one below the range": ([3400] * 7 + [CELL_MV_MIN - 1] + [3300] * 8, 0),
    "one above the range": ([CELL_MV_MAX + 1] + [3400] * 15, 0),
    "not available": ([3400] * 15 + [NOT_AVAILABLE], 0),
    "open wire on the lowest": ([3400, 3100] + [3400] * 14, 0b10),
    "none usable": ([NOT_AVAILABLE] * 16, 0),
    "64 cells, a tie at the end": ([3500] * 63 + [3300], 0),
}


@pytest.mark.parametrize("case", list(CELL_CASES))
def test_cell_extremes_are_those_of_the_usable_cells(case: str) -> None:
    cells, open_wire = CELL_CASES[case]
    hw = SimHardware(cells=len(cells), temps=4)
    hw.cell_mv[:] = cells
    hw.open_wire = open_wire
    summary = Summary()
    summary.update(hw)
    usable = [
        CELL_MV_MIN <= mv <= CELL_MV_MAX and not (open_wire >> i) & 1 for i, mv in enumerate(cells)
    ]
    lo, lo_no, hi, hi_no, total, bad = extremes(cells, usable)
    good = len(cells) - bad
    assert (
        summary.cell_min_mv,
        summary.cell_min_no,
        summary.cell_max_mv,
        summary.cell_max_no,
        summary.cell_sum_mv,
        summary.cells_bad,
        summary.cell_mean_mv,
    ) == (lo, lo_no, hi, hi_no, total, bad, total // good if good else 0)


@pytest.mark.parametrize(
    "temps",
    [
        [250, 250, 250, 250],
        [250, 240, 260, 240],
        [250, NOT_AVAILABLE, 260, 240],
        [TEMP_DC_MIN - 1, 250, TEMP_DC_MAX + 1, 250],
        [NOT_AVAILABLE] * 4,
    ],
)
def test_temperature_extremes_are_those_of_the_usable_sensors(temps: list[int]) -> None:
    hw = SimHardware(cells=16, temps=len(temps))
    hw.temp_dc[:] = temps
    summary = Summary()
    summary.update(hw)
    lo, lo_no, hi, hi_no, _, bad = extremes(temps, [TEMP_DC_MIN <= t <= TEMP_DC_MAX for t in temps])
    assert (
        summary.temp_min_dc,
        summary.temp_min_no,
        summary.temp_max_dc,
        summary.temp_max_no,
        summary.temps_bad,
    ) == (lo, lo_no, hi, hi_no, bad)


@pytest.mark.parametrize(
    ("data", "dlc"),
    [
        (bytes(range(1, 9)), 8),  # a protocol frame: copied in one piece
        (bytes([7, 8, 9]), 3),  # a short frame: the rest of the entry is zero
        (bytearray(b"\x01\x02\x03\x04\x05\x06\x07\x08"), 2),  # a driver's 8-byte buffer
    ],
)
def test_a_ring_entry_holds_its_frame_and_zeros_after_it(data: bytes, dlc: int) -> None:
    ring = FrameRing(2)
    assert ring.put(0x123, bytes([0xEE] * 8), 8, 0)  # leaves stale bytes in the other entry
    out = Frame()
    assert ring.get(out)
    assert ring.put(0x456, data, dlc, 4)
    assert ring.put(0x457, data, dlc, 4)  # the entry that held the stale bytes
    for can_id in (0x456, 0x457):
        assert ring.get(out)
        assert (out.id, out.dlc, out.flags) == (can_id, dlc, 4)
        assert bytes(out.data) == bytes(data[:dlc]) + bytes(8 - dlc)
    assert not ring.get(out)


def test_after_a_stall_every_stream_sends_once_and_keeps_its_period(
    bench: Callable[..., Bench],
) -> None:
    """A cycle 3 s late (longer than every period but NodeInfo's): each stream that was due
    sends one frame, not the ones it missed, and its period runs on from there."""
    b = bench(request="Close")
    b.settle()
    b.run(6000)
    b.now += 3000  # the node was not run: a stalled main loop
    stalled = b.now
    b.step()
    periodic = {
        "PackStatus": 100,
        "CellExtremes": 200,
        "TemperatureExtremes": 1000,
        "BalanceState": 1000,
    }
    for name in periodic:
        assert [t for t, _ in b.decoded(name, stalled)] == [stalled], name
    voltages = b.decoded("CellVoltages", stalled)
    assert len(voltages) == 1  # one group, not the twelve it missed
    b.run(3000)
    for name, period in periodic.items():
        times = [t for t, _ in b.decoded(name, stalled)]
        assert {later - earlier for earlier, later in pairwise(times)} == {period}, name
    groups = [s["CellGroup"] for _, s in b.decoded("CellVoltages", stalled)]
    assert len(groups) == 13  # one group every 250 ms after the first
    assert set(groups[1:5]) == {0, 1, 2, 3}  # the groups in turn


def test_a_table_with_upper_and_lower_limits_on_one_measure_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One bound per measure serves only rows of one kind of limit: a table that mixes them
    on a measure would let a value beyond the other kind pass unchecked, so it is refused."""
    config = load_config({"cells": 16})
    assert protect.Protection(config).rows == 42
    mixed = (
        protect.CELL_UNDER_VOLTAGE, (protect.FAULT,), protect.M_CELL_MAX, protect.M_CELL_MAX,
        protect.BELOW, "cell_under_mv", "hysteresis_cell_mv", "debounce_voltage_ms", None,
    )  # fmt: skip
    monkeypatch.setattr(protect, "TABLE", (*protect.TABLE, mixed))
    with pytest.raises(ValueError, match="upper and lower limits on one measure"):
        protect.Protection(config)

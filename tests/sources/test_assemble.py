"""The cell extremes the snapshot takes from each member's cells: the lowest and the highest
known voltage and the first cell holding each, whatever NaN, ties and signed zeros it gets."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from gateway.sources.assemble import cell_extremes

# A few values, so that ties and NaN are common; -0.0 beside 0.0 checks the "first" rule
# where two values compare equal but differ.
VOLTS = st.sampled_from([3.3, 3.31, 3.29, 3.3, math.nan, 0.0, -0.0, 3.65, 2.5])


def one_cell_at_a_time(volts: tuple[float, ...]) -> tuple[float, int, float, int] | None:
    """The extremes as a cell-by-cell scan finds them: a later cell replaces only a
    strictly lower (higher) one, NaN is skipped."""
    found = None
    for index, v in enumerate(volts):
        if math.isnan(v):
            continue
        if found is None:
            found = (v, index, v, index)
        low, low_at, high, high_at = found
        if v < low:
            low, low_at = v, index
        if v > high:
            high, high_at = v, index
        found = (low, low_at, high, high_at)
    return found


def same(a: object, b: object) -> bool:
    """Equal, and the same sign for zeros (0.0 == -0.0, but either may be sent)."""
    if isinstance(a, float) and isinstance(b, float):
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    return a == b


@given(st.lists(VOLTS, max_size=20).map(tuple))
def test_the_extremes_are_the_first_cells_holding_the_lowest_and_highest_voltage(
    volts: tuple[float, ...],
) -> None:
    got, want = cell_extremes(volts), one_cell_at_a_time(volts)
    if want is None:
        assert got is None
    else:
        assert got is not None and all(same(g, w) for g, w in zip(got, want, strict=True))


def test_no_known_cell_gives_none() -> None:
    assert cell_extremes(()) is None
    assert cell_extremes((math.nan,) * 16) is None


def test_a_nan_cell_does_not_hide_a_high_one() -> None:
    # max() alone would keep the NaN it starts with; the extremes skip it.
    assert cell_extremes((math.nan, 3.65, 3.3)) == (3.3, 2, 3.65, 1)

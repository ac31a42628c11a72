"""contracts.evolve: what dataclasses.replace gives, for the records the stages pass on."""

from __future__ import annotations

import dataclasses
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.contracts.chemistry import Curve
from gateway.contracts.evolve import evolve
from gateway.soc.state import SocSource, SocState


@dataclasses.dataclass(frozen=True, slots=True)
class _Derived:
    """A record with a field its __init__ does not take."""

    value: float
    twice: float = dataclasses.field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "twice", 2 * self.value)


CHANGES = st.fixed_dictionaries(
    {},
    optional={
        "soc": st.floats(0, 100),
        "source": st.sampled_from(list(SocSource)),
        "strings": st.lists(st.floats(0, 100), max_size=3).map(tuple),
        "anchor_soc": st.none() | st.floats(0, 100),
        "learned": st.integers(0, 10),
        "last_full": st.none() | st.floats(0, 1e9),
    },
)


@given(CHANGES)
def test_evolve_is_dataclasses_replace(changes: dict[str, object]) -> None:
    base = SocState(soc=42.0, strings=(40.0, 44.0), offsets=(0.1, -0.2), cycles=3.5)
    got = evolve(base, **changes)
    assert got == dataclasses.replace(base, **changes)  # type: ignore[arg-type]
    assert type(got) is SocState
    assert base == SocState(soc=42.0, strings=(40.0, 44.0), offsets=(0.1, -0.2), cycles=3.5)


def test_evolve_runs_the_records_checks() -> None:
    curve = Curve.of((0, 0), (1, 1))
    assert evolve(curve, points=((0.0, 1.0), (2.0, 3.0))).at(1.0) == 2.0
    with pytest.raises(ValueError, match="at least two points"):
        evolve(curve, points=((0.0, 1.0),))


def test_evolve_refuses_what_the_record_has_not() -> None:
    with pytest.raises(TypeError):
        evolve(SocState(), charge=math.nan)
    # A field made by __post_init__ is made again, never copied or set.
    assert evolve(_Derived(1.5), value=4.0).twice == 8.0
    with pytest.raises(TypeError):
        evolve(_Derived(1.5), twice=1.0)

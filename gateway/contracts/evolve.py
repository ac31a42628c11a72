"""`evolve(record, **changes)`: dataclasses.replace for the frozen records the stages pass
on every tick, at a fraction of its cost.

dataclasses.replace walks the class's fields in Python on every call (the field's kind, its
init flag, a getattr), some 30 bytecodes a field: a 14-field SocState replaced twice a
tick cost 3 % of the simulated week. Here the field names are read once per class, and a
call reads every value with one attrgetter and builds the keyword arguments in C: the
record's own __init__ is the only Python that runs (its __post_init__ too, as with
replace). Fields with init=False cannot be changed, as with replace (a TypeError here).
"""

from __future__ import annotations

from dataclasses import fields
from operator import attrgetter
from typing import Any, TypeVar

T = TypeVar("T")

# class -> (its init fields' names, a getter of their values as one tuple)
_FIELDS: dict[type, tuple[tuple[str, ...], Any]] = {}


def evolve(record: T, /, **changes: Any) -> T:
    """A copy of the dataclass instance `record` with `changes` applied (as
    dataclasses.replace(record, **changes))."""
    cls = type(record)
    known = _FIELDS.get(cls)
    if known is None:
        names = tuple(f.name for f in fields(cls) if f.init)  # type: ignore[arg-type]
        # attrgetter of one name gives the value itself, of several a tuple.
        getter = attrgetter(*names) if len(names) > 1 else lambda r: (getattr(r, names[0]),)
        known = _FIELDS[cls] = (names, getter)
    names, getter = known
    values = dict(zip(names, getter(record), strict=True))
    values.update(changes)
    return cls(**values)

"""Helpers for the chip driver tests, which run unchanged on CPython (pytest) and on
MicroPython (tests/mpy/chips.py): so no pytest, no __future__, no CPython-only module here.
"""

import gc


def allocated(fn, times: int = 200) -> int | None:
    """Bytes fn() allocates over `times` calls on MicroPython; None on CPython (no figure).

    fn runs once before the measurement (buffers built on first use do not count).
    """
    fn()
    if not hasattr(gc, "mem_alloc"):
        return None
    gc.collect()
    gc.disable()
    try:
        start = gc.mem_alloc()
        for _ in range(times):
            fn()
        return gc.mem_alloc() - start
    finally:
        gc.enable()


FIGURES: dict[str, int] = {}


def assert_no_allocation(name: str, fn, times: int = 200) -> None:
    """Allocation-free per call where measurable; the figure goes into the suite's report."""
    n = allocated(fn, times)
    if n is not None:
        FIGURES[name] = n
        assert n == 0, name + ": " + str(n) + " bytes in " + str(times) + " calls"


def raises(exc_type, fn, *args) -> str:
    """The message of the exc_type that fn(*args) raises (fails when it raises none)."""
    try:
        fn(*args)
    except exc_type as exc:
        return str(exc)
    raise AssertionError("no " + exc_type.__name__ + " raised")

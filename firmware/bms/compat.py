"""The few MicroPython built-ins the node needs, with CPython fallbacks.

The node runs unchanged on MicroPython (boards, the WebAssembly test port) and on CPython
(tests, the system simulator). Time is always a plain int of milliseconds passed in by the
caller; compare and advance it only with ticks_diff / ticks_add, which handle the wrap-around
of MicroPython's tick counter. On CPython the ticks never wrap.
"""

try:
    from micropython import const
except ImportError:  # CPython

    def const(x):
        return x


try:
    from time import sleep_ms, ticks_add, ticks_diff, ticks_ms
except ImportError:  # CPython
    import time

    def ticks_ms():
        """Milliseconds from a monotonic clock."""
        return time.monotonic_ns() // 1000000

    # ticks_diff(end, start) = end - start and ticks_add(ticks, delta) = ticks + delta, in
    # milliseconds: built-ins as on MicroPython, so a call costs no Python frame (the node
    # calls them a dozen times a cycle, and the simulator runs many nodes).
    from operator import add as ticks_add
    from operator import sub as ticks_diff

    def sleep_ms(ms):
        """Block for ms milliseconds (start-up only: never in a cycle)."""
        time.sleep(ms / 1000)


__all__ = ["const", "sleep_ms", "ticks_add", "ticks_diff", "ticks_ms"]

"""Drive a Node on a board with asyncio: one cycle every config.cycle_ms.

    import asyncio
    from bms.runner import run
    asyncio.run(run(node, watchdog))

Cycles follow a fixed grid (each one cycle_ms after the previous one was due), so the
period does not drift with the time a cycle takes. After an overrun the grid moves instead
of bursting to catch up; the node itself reports a late cycle as the Internal warning. A
watchdog (machine.WDT), when given, is fed after every cycle: a hung loop resets the board,
and a reset board leaves the relay pin undriven, so the relay opens. gc.collect() runs once
a second at this known point so that the collector never interrupts a cycle for long.

The core is synchronous (Node.step); this runner is the only asyncio in the firmware, so
other tasks (a console, a display) can share the board's event loop.
"""

import asyncio
import gc

from bms.compat import ticks_add, ticks_diff, ticks_ms

GC_INTERVAL_MS = 1000


async def _sleep_seconds(ms):
    await asyncio.sleep(ms / 1000)


# MicroPython's own sleep_ms is awaited directly: it returns a preallocated singleton, while
# a wrapper coroutine would allocate a new generator (48 bytes) every cycle.
_sleep_ms = getattr(asyncio, "sleep_ms", None) or _sleep_seconds


async def run(node, watchdog=None, cycles=None, clock=ticks_ms, sleep_ms=_sleep_ms):
    """Step node every node.config.cycle_ms until cycles have run (None: forever)."""
    period = node.config.cycle_ms
    due = clock()
    collected = due
    count = 0
    while cycles is None or count < cycles:
        now = clock()
        node.step(now)
        if watchdog is not None:
            watchdog.feed()
        if ticks_diff(now, collected) >= GC_INTERVAL_MS:
            gc.collect()
            collected = now
        if cycles is not None:  # counted only when bounded: forever would become a long int
            count += 1
        due = ticks_add(due, period)
        delay = ticks_diff(due, clock())
        if delay < 0:  # overrun: start a new grid now
            due = clock()
            delay = 0
        await sleep_ms(delay)

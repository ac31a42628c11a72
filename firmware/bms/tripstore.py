"""A latched deep-discharge or over-charge trip that survives a reboot.

foxBMS keeps its deep-discharge flag in non-volatile memory: a cell driven below its
under-voltage fault level may be damaged (copper dissolution, lithium plating on recharge)
and must not be charged again just because the board restarted. The node stores the kinds of
such a trip (bit mask of bms.protect kinds) in a small file on the board's flash:

    store = FileTripStore("/bms_trip")
    node = Node(config, hw, can_backend, trip_store=store)

The file is written once when such a trip happens and once when a reset clears it, never per
cycle (flash wears out). At start a stored trip puts the node straight into Tripped; it
leaves only by a ResetFault command, never by auto-reclose. A store that cannot be read is
treated as "tripped" (every kind it guards): unknown means unsafe.
"""

import os

from bms.compat import const

# CellOverVoltage | CellUnderVoltage | PackOverVoltage | PackUnderVoltage (bms.protect's
# bits; const() needs a literal, a test checks it against them).
PERSISTENT_KINDS = const(0x000F)
ENOENT = const(2)  # errno's "no such file", the same on MicroPython and CPython


class FileTripStore:
    """The stored trip as the decimal kind mask in one file (absent file: no trip)."""

    def __init__(self, path="/bms_trip"):
        self.path = path
        self.writes = 0

    def load(self):
        """The stored kinds; 0 when none; every persistent kind when unreadable."""
        try:
            with open(self.path) as f:
                text = f.read().strip()
        except OSError as exc:
            if exc.args and exc.args[0] == ENOENT:
                return 0  # no file: never tripped (or cleared)
            return PERSISTENT_KINDS  # a flash read error: unknown means unsafe
        try:
            return int(text) & PERSISTENT_KINDS
        except ValueError:
            return PERSISTENT_KINDS

    def save(self, kinds):
        """Store kinds (0 removes the file); a temporary file and a rename, so a power cut
        leaves the old or the new state."""
        self.writes += 1
        if not kinds:
            try:  # noqa: SIM105 (MicroPython has no contextlib built in)
                os.remove(self.path)
            except OSError:  # already gone
                pass
            return
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            f.write(str(kinds))
        os.rename(tmp, self.path)


class MemoryTripStore:
    """The same interface in RAM: the simulator and tests (a reboot keeps the object)."""

    def __init__(self, kinds=0):
        self.kinds = kinds
        self.writes = 0

    def load(self):
        return self.kinds

    def save(self, kinds):
        self.writes += 1
        self.kinds = kinds

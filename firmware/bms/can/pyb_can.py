"""CAN backend for pyb.CAN (STM32 boards with the older pyb module, MicroPython >= 1.20).

    from pyb import CAN
    bus = PybCanBus(CAN(1, CAN.NORMAL, baudrate=500_000, auto_restart=False))

pyb.CAN.send(data, id, timeout=0, extframe=...) raises OSError when all three transmit
mailboxes are busy, and raising allocates (about 200 bytes) every cycle while the bus has no
other node to acknowledge; so send() first asks CAN.info(list) (a preallocated list: no
allocation) how many frames are pending and returns False without calling send when all
three mailboxes are taken. The same call gives the error counters tec and rec.
recv(fifo, list) fills a preallocated list [id, is_ext, is_rtr, fmi, memoryview].

Filters use 16-bit mask banks on bxCAN (two id/mask pairs per bank) and one id/mask per bank
on FDCAN controllers. Banks alternate between FIFO 0 and FIFO 1: each FIFO holds three
frames and overwrites the newest when full, so the gateway's burst to a node (heartbeat,
relay command, two balance groups) must not land in one FIFO.
"""

from bms.can import (
    FLAG_EXT_ID,
    FLAG_RTR,
    STATE_ACTIVE,
    STATE_BUS_OFF,
    STATE_PASSIVE,
    STATE_STOPPED,
    STATE_WARNING,
)
from bms.compat import const

MAILBOXES = const(3)


class PybCanBus:
    """pyb.CAN backend (see bms.can for the interface); receives from FIFO 0 and 1."""

    def __init__(self, can):
        self.can = can
        cls = type(can)
        self._cls = cls
        self._states = {
            cls.STOPPED: STATE_STOPPED,
            cls.ERROR_ACTIVE: STATE_ACTIVE,
            cls.ERROR_WARNING: STATE_WARNING,
            cls.ERROR_PASSIVE: STATE_PASSIVE,
            cls.BUS_OFF: STATE_BUS_OFF,
        }
        self._rx = [0, False, False, 0, memoryview(bytearray(8))]
        self._info = [0] * 8  # CAN.info(): tec, rec, warnings, passives, bus-offs, pending tx,
        # frames in FIFO 0, frames in FIFO 1
        self.tec = 0
        self.rec = 0

    def send(self, can_id, data, flags):
        """Put a frame into a free mailbox; False when all three are busy (no exception)."""
        info = self._info
        self.can.info(info)
        if info[5] >= MAILBOXES:
            return False
        try:
            self.can.send(data, can_id, timeout=0, extframe=bool(flags & FLAG_EXT_ID))
        except OSError:
            return False
        return True

    def recv(self, frame):
        """Copy the next frame from FIFO 0 (or else FIFO 1) into frame."""
        can = self.can
        if can.any(0):
            fifo = 0
        elif can.any(1):
            fifo = 1
        else:
            return False
        rx = can.recv(fifo, self._rx, timeout=0)
        flags = 0
        if rx[1]:
            flags |= FLAG_EXT_ID
        if rx[2]:
            flags |= FLAG_RTR
        data = rx[4]
        dlc = len(data)
        dlc = min(dlc, 8)
        frame.set(rx[0], data, dlc, flags)
        return True

    def set_filters(self, filters):
        """Program filter banks, alternating FIFO 0 and 1; None accepts every frame."""
        can = self.can
        cls = self._cls
        if filters is None:
            filters = [(0, 0, 0), (0, 0, FLAG_EXT_ID)]
        if hasattr(cls, "MASK16"):  # bxCAN: two 16-bit id/mask pairs per bank, per frame type
            bank = 0
            for ext in (0, FLAG_EXT_ID):
                pairs = [(fid, mask) for fid, mask, flags in filters if flags & FLAG_EXT_ID == ext]
                for i in range(0, len(pairs), 2):
                    first = pairs[i]
                    second = pairs[i + 1] if i + 1 < len(pairs) else first
                    params = (first[0], first[1], second[0], second[1])
                    can.setfilter(bank, cls.MASK16, bank & 1, params, extframe=bool(ext))
                    bank += 1
        else:  # FDCAN: one id/mask per filter index
            for bank in range(len(filters)):
                fid, mask, flags = filters[bank]
                ext = bool(flags & FLAG_EXT_ID)
                can.setfilter(bank, cls.MASK, bank & 1, (fid, mask), extframe=ext)

    def state(self):
        """The controller state mapped onto the shim's STATE_*; refreshes tec and rec."""
        info = self._info
        self.can.info(info)
        self.tec = info[0]
        self.rec = info[1]
        return self._states.get(self.can.state(), STATE_STOPPED)

    def restart(self):
        """Leave bus-off."""
        self.can.restart()

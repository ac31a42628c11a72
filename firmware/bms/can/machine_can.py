"""CAN backend for machine.CAN (MicroPython >= 1.28: STM32 bxCAN/FDCAN, MIMXRT, Alif).

    from machine import CAN
    bus = MachineCanBus(CAN(1, 500_000))

machine.CAN already has the shape of the shim: send() returns None when the transmit queue
is full and raises OSError while bus-off, recv(list) fills a caller-owned list, state() and
restart() exist. This adapter maps its state and flag constants onto the shim's and receives
into one preallocated list, so nothing allocates.
"""

from bms.can import (
    FLAG_EXT_ID,
    FLAG_RTR,
    FLAG_UNORDERED,
    STATE_ACTIVE,
    STATE_BUS_OFF,
    STATE_PASSIVE,
    STATE_STOPPED,
    STATE_WARNING,
)


class MachineCanBus:
    """machine.CAN backend (see bms.can for the interface)."""

    def __init__(self, can):
        self.can = can
        cls = type(can)
        # The controller's own flag and state values, looked up once.
        self._ext = cls.FLAG_EXT_ID
        self._rtr = cls.FLAG_RTR
        self._unordered = getattr(cls, "FLAG_UNORDERED", 0)
        self._states = {
            cls.STATE_STOPPED: STATE_STOPPED,
            cls.STATE_ACTIVE: STATE_ACTIVE,
            cls.STATE_WARNING: STATE_WARNING,
            cls.STATE_PASSIVE: STATE_PASSIVE,
            cls.STATE_BUS_OFF: STATE_BUS_OFF,
        }
        self._rx = [0, memoryview(bytearray(8)), 0, 0]
        self.rx_errors = 0  # receive error flags seen (FIFO full or overrun)

    def send(self, can_id, data, flags):
        """Queue a frame; False when the transmit queue is full."""
        hw_flags = 0
        if flags & FLAG_EXT_ID:
            hw_flags |= self._ext
        if flags & FLAG_RTR:
            hw_flags |= self._rtr
        if flags & FLAG_UNORDERED:
            hw_flags |= self._unordered
        return self.can.send(can_id, data, hw_flags) is not None

    def recv(self, frame):
        """Copy the next received frame into frame."""
        rx = self.can.recv(self._rx)
        if rx is None:
            return False
        hw_flags = rx[2]
        flags = 0
        if hw_flags & self._ext:
            flags |= FLAG_EXT_ID
        if hw_flags & self._rtr:
            flags |= FLAG_RTR
        if rx[3]:
            self.rx_errors += 1
        data = rx[1]
        dlc = len(data)
        dlc = min(dlc, 8)
        frame.set(rx[0], data, dlc, flags)
        return True

    def set_filters(self, filters):
        """Acceptance filters: the shim's (id, mask, flags) tuples with the controller's flags."""
        if filters is None:
            self.can.set_filters(None)
            return
        self.can.set_filters(
            [(fid, mask, self._ext if flags & FLAG_EXT_ID else 0) for fid, mask, flags in filters]
        )

    def state(self):
        """The controller state mapped onto the shim's STATE_*."""
        return self._states.get(self.can.state(), STATE_STOPPED)

    def restart(self):
        """Leave bus-off (machine.CAN drops queued frames)."""
        self.can.restart()

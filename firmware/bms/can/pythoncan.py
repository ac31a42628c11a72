"""CAN backend for CPython: wraps any python-can bus (virtual, socketcan vcan0, ...).

    import can
    bus = PythonCanBus(can.Bus(interface="virtual", channel="bms"))

Used by the system simulator and for bench tests of the node code on a PC. python-can
allocates a Message per frame; that is fine on CPython and this module is never imported on
a board. python-can has no restart call: SocketCAN restarts a bus-off interface in the
kernel (`ip link set can0 type can restart-ms 100`), so restart() only drops the frames
waiting for transmission.
"""

import can

from bms.can import (
    FLAG_EXT_ID,
    FLAG_RTR,
    STATE_ACTIVE,
    STATE_BUS_OFF,
    STATE_PASSIVE,
    matches,
)


class PythonCanBus:
    """python-can backend (see bms.can for the interface)."""

    def __init__(self, bus):
        self.bus = bus
        self.filters = None

    def send(self, can_id, data, flags):
        """Send without waiting; False when the interface's queue is full."""
        msg = can.Message(
            arbitration_id=can_id,
            data=bytes(data),
            is_extended_id=bool(flags & FLAG_EXT_ID),
            is_remote_frame=bool(flags & FLAG_RTR),
            dlc=len(data),
        )
        try:
            self.bus.send(msg, timeout=0)
        except can.CanOperationError:
            return False
        return True

    def recv(self, frame):
        """Copy the next received frame that passes the filters into frame (never waits).

        The filtering is done here rather than by python-can: with timeout=0, python-can's
        software filtering returns None after one non-matching frame, which looks like an
        empty queue and lets the frames behind it pile up."""
        filters = self.filters
        while True:
            msg = self.bus.recv(timeout=0)
            if msg is None:
                return False
            flags = 0
            if msg.is_extended_id:
                flags |= FLAG_EXT_ID
            if msg.is_remote_frame:
                flags |= FLAG_RTR
            if filters is None or matches(filters, msg.arbitration_id, flags):
                break
        dlc = min(len(msg.data), 8)
        frame.set(msg.arbitration_id, msg.data, dlc, flags)
        return True

    def set_filters(self, filters):
        """Accept only frames matching filters (None: every frame)."""
        self.filters = None if filters is None else list(filters)

    def state(self):
        """python-can's BusState mapped onto the shim (ERROR counts as bus-off)."""
        state = self.bus.state
        if state == can.BusState.ERROR:
            return STATE_BUS_OFF
        if state == can.BusState.PASSIVE:
            return STATE_PASSIVE
        return STATE_ACTIVE

    def restart(self):
        """Drop queued frames; the interface itself recovers (see the module docstring)."""
        try:  # noqa: SIM105 (same style as the MicroPython modules)
            self.bus.flush_tx_buffer()
        except NotImplementedError:  # interfaces without a transmit queue of their own
            pass

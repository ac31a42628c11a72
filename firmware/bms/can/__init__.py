"""CAN shim: one small interface for every CAN controller the node can use.

A backend is any object with these five methods (one module per backend in this package):

    send(can_id, data, flags) -> bool
        Queue one frame for transmission without blocking: data is a bytes-like object whose
        length is the DLC (0..8), flags a mask of FLAG_*. Returns False when the controller
        has no free transmit buffer (the frame is not sent). May raise OSError when the
        controller is bus-off or broken; NodeCanPort turns that into a dropped frame.
    recv(frame) -> bool
        Copy the oldest received frame into the reusable Frame and return True, or return
        False at once when nothing is waiting. Must not allocate.
    set_filters(filters) -> None
        Accept only frames matching one of filters, a list of (id, mask, flags) tuples
        (a frame matches when frame_id & mask == id & mask and its FLAG_EXT_ID agrees), or
        every frame when filters is None. Called once at start-up. A backend whose hardware
        cannot express the list accepts more; the node checks every identifier anyway.
    state() -> int
        Controller error state: STATE_STOPPED, STATE_ACTIVE, STATE_WARNING, STATE_PASSIVE or
        STATE_BUS_OFF.
    restart() -> None
        Leave bus-off (and drop whatever waits for transmission).

Backends: machine_can.MachineCanBus (machine.CAN, MicroPython >= 1.28), pyb_can.PybCanBus
(pyb.CAN on STM32), mcp2515.Mcp2515Bus (an MCP2515 on SPI, e.g. for the RP2040),
pythoncan.PythonCanBus (any python-can bus on CPython) and loopback.LoopbackBus (in memory,
for tests and the simulator). The node talks to its backend only through port.NodeCanPort, which
counts dropped frames and restarts a bus-off controller with back-off.
"""

from bms.compat import const

# Controller states, as returned by state().
STATE_STOPPED = const(0)
STATE_ACTIVE = const(1)
STATE_WARNING = const(2)
STATE_PASSIVE = const(3)
STATE_BUS_OFF = const(4)

# Frame flags (the same bit values as machine.CAN).
FLAG_RTR = const(1)
FLAG_EXT_ID = const(2)
# The frame may leave in any order relative to queued frames with the same identifier (used
# for multiplexed frames, which carry their group in the payload).
FLAG_UNORDERED = const(4)


class Frame:
    """A reusable received frame: identifier, flags, length and an 8-byte data buffer."""

    def __init__(self):
        self.id = 0
        self.flags = 0
        self.dlc = 0
        self.data = bytearray(8)

    def set(self, can_id, data, dlc, flags):
        """Copy dlc bytes of data (and the header) into this frame."""
        self.id = can_id
        self.flags = flags
        self.dlc = dlc
        buf = self.data
        if dlc == 8 and len(data) == 8:
            # Every frame of the protocol: one slice assignment, as FrameRing.put does.
            buf[0:8] = data
            return
        for i in range(dlc):
            buf[i] = data[i]
        for i in range(dlc, 8):
            buf[i] = 0


def matches(filters, can_id, flags):
    """True when a frame passes filters ((id, mask, flags) tuples, None = all)."""
    if filters is None:
        return True
    ext = flags & FLAG_EXT_ID
    for fid, mask, fflags in filters:
        if (fflags & FLAG_EXT_ID) == ext and (can_id & mask) == (fid & mask):
            return True
    return False


class FrameRing:
    """Fixed-capacity FIFO of CAN frames (id, flags, dlc, 8 data bytes), allocation-free."""

    def __init__(self, capacity):
        self.capacity = capacity
        self.ids = [0] * capacity
        self.flags = [0] * capacity
        self.dlcs = [0] * capacity
        self.data = bytearray(8 * capacity)
        self.head = 0  # oldest entry
        self.count = 0

    def put(self, can_id, data, dlc, flags):
        """Append a copy of a frame; False when full."""
        if self.count == self.capacity:
            return False
        i = (self.head + self.count) % self.capacity
        self.ids[i] = can_id
        self.flags[i] = flags
        self.dlcs[i] = dlc
        base = 8 * i
        buf = self.data
        if dlc == 8 and len(data) == 8:
            # Every frame of the protocol: one slice assignment (no allocation on MicroPython,
            # and none of the per-byte bytecodes of the loop below).
            buf[base : base + 8] = data
        else:
            for k in range(dlc):
                buf[base + k] = data[k]
            for k in range(dlc, 8):
                buf[base + k] = 0
        self.count += 1
        return True

    def peek(self, frame):
        """Copy the oldest frame into frame, leaving it queued; False when empty."""
        if self.count == 0:
            return False
        i = self.head
        frame.id = self.ids[i]
        frame.flags = self.flags[i]
        frame.dlc = self.dlcs[i]
        base = 8 * i
        src = self.data
        dst = frame.data
        for k in range(8):
            dst[k] = src[base + k]
        return True

    def pop(self):
        """Drop the oldest frame."""
        if self.count:
            self.head = (self.head + 1) % self.capacity
            self.count -= 1

    def get(self, frame):
        """Move the oldest frame into frame; False when empty."""
        if self.count == 0:
            return False  # the usual answer to a poll: no call further
        # peek() and pop() written out: a call fewer for every frame received.
        i = self.head
        frame.id = self.ids[i]
        frame.flags = self.flags[i]
        frame.dlc = self.dlcs[i]
        base = 8 * i
        src = self.data
        dst = frame.data
        for k in range(8):
            dst[k] = src[base + k]
        self.head = (i + 1) % self.capacity
        self.count -= 1
        return True

    def clear(self):
        """Drop every frame."""
        self.head = 0
        self.count = 0

"""In-memory CAN backend: the node's end of a bus whose other end is a test or the simulator.

    bus = LoopbackBus()
    node = Node(config, hw, bus)
    bus.inject(0x120, heartbeat_bytes)      # a frame from the gateway to the node
    frame = Frame()
    while bus.take(frame): ...              # frames the node sent, oldest first

Both directions are fixed-size rings allocated at construction, so neither the node nor a
harness that uses inject()/take() allocates in steady state (the MicroPython suite measures
this). Failure modes for tests: tx_full makes send() report a full transmit queue,
bus_state = STATE_BUS_OFF makes send() raise OSError as machine.CAN does until restart(),
and stuck_bus_off keeps the bus off through restarts. When honour_filters is true, inject()
drops frames that do not pass the node's filters, like a controller's acceptance filters.
"""

from bms.can import STATE_ACTIVE, STATE_BUS_OFF, Frame, matches


class _Ring:
    """Fixed-capacity FIFO of CAN frames (id, flags, dlc, 8 data bytes)."""

    def __init__(self, capacity):
        self.capacity = capacity
        self.ids = [0] * capacity
        self.flags = [0] * capacity
        self.dlcs = [0] * capacity
        self.data = bytearray(8 * capacity)
        self.head = 0  # oldest entry
        self.count = 0

    def put(self, can_id, data, dlc, flags):
        if self.count == self.capacity:
            return False
        i = (self.head + self.count) % self.capacity
        self.ids[i] = can_id
        self.flags[i] = flags
        self.dlcs[i] = dlc
        base = 8 * i
        buf = self.data
        for k in range(dlc):
            buf[base + k] = data[k]
        for k in range(dlc, 8):
            buf[base + k] = 0
        self.count += 1
        return True

    def get(self, frame):
        if self.count == 0:
            return False
        i = self.head
        frame.id = self.ids[i]
        frame.flags = self.flags[i]
        dlc = self.dlcs[i]
        frame.dlc = dlc
        base = 8 * i
        src = self.data
        dst = frame.data
        for k in range(8):
            dst[k] = src[base + k]
        self.head = (i + 1) % self.capacity
        self.count -= 1
        return True

    def clear(self):
        self.head = 0
        self.count = 0


class LoopbackBus:
    """CAN backend in memory; see the module docstring."""

    def __init__(self, tx_capacity=64, rx_capacity=64, honour_filters=True):
        self._tx = _Ring(tx_capacity)
        self._rx = _Ring(rx_capacity)
        self.honour_filters = honour_filters
        self.filters = None
        self.bus_state = STATE_ACTIVE
        self.tx_full = False
        self.stuck_bus_off = False
        self.restarts = 0
        self.rx_overruns = 0

    # ---- backend interface (used by the node through CanPort) ----

    def send(self, can_id, data, flags):
        """Queue a frame; False when the queue is full; OSError while bus-off."""
        if self.bus_state == STATE_BUS_OFF:
            raise OSError(5)  # EIO, as machine.CAN raises while bus-off
        if self.tx_full:
            return False
        return self._tx.put(can_id, data, len(data), flags)

    def recv(self, frame):
        """Pop the oldest injected frame into frame."""
        return self._rx.get(frame)

    def set_filters(self, filters):
        """Remember the acceptance filters (applied by inject when honour_filters)."""
        self.filters = filters

    def state(self):
        """Current bus state (settable through bus_state)."""
        return self.bus_state

    def restart(self):
        """Leave bus-off unless stuck_bus_off; pending transmissions are dropped."""
        self.restarts += 1
        self._tx.clear()
        if not self.stuck_bus_off:
            self.bus_state = STATE_ACTIVE

    # ---- the other end of the bus ----

    def inject(self, can_id, data, flags=0):
        """Deliver a frame to the node. False when filtered out or the receive ring is full."""
        if self.honour_filters and not matches(self.filters, can_id, flags):
            return False
        if not self._rx.put(can_id, data, len(data), flags):
            self.rx_overruns += 1
            return False
        return True

    def take(self, frame):
        """Pop the oldest frame the node sent into frame; False when there is none."""
        return self._tx.get(frame)

    def pending(self):
        """Number of frames the node sent that have not been taken."""
        return self._tx.count

    def sent(self):
        """Take every frame the node sent as a list of (id, bytes) (allocates; for tests)."""
        frame = Frame()
        out = []
        while self._tx.get(frame):
            out.append((frame.id, bytes(frame.data[: frame.dlc])))
        return out

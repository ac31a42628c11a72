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

from bms.can import STATE_ACTIVE, STATE_BUS_OFF, FrameRing, matches


class LoopbackBus:
    """CAN backend in memory; see the module docstring."""

    def __init__(self, tx_capacity=64, rx_capacity=64, honour_filters=True):
        self._tx = FrameRing(tx_capacity)
        self._rx = FrameRing(rx_capacity)
        self.honour_filters = honour_filters
        self.filters = None
        self.bus_state = STATE_ACTIVE
        self.tx_full = False
        self.stuck_bus_off = False
        self.restarts = 0
        self.rx_overruns = 0

    # ---- backend interface (used by the node through NodeCanPort) ----

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

"""The node's side of the CAN shim: never blocks, never raises into the protection loop.

NodeCanPort wraps a backend (see bms.can). Controllers have few transmit buffers (three on bxCAN
and the MCP2515) while a cycle may produce a burst of frames, so a frame the controller
cannot take at once waits in a small software queue (tx_queue frames, sent in order as soon
as the controller has room, before any newer frame). When that queue is full too, or the
controller is bus-off or its driver fails, the frame is dropped and counted; the protection
loop carries on. A bus-off controller is restarted after a back-off delay that starts at
backoff_min_ms and doubles with every further bus-off up to backoff_max_ms; once the bus has
stayed healthy for backoff_max_ms the delay starts again from backoff_min_ms. Entering
bus-off drops the queued frames (they would be stale by the time the bus is back).
"""

from bms.can import STATE_BUS_OFF, Frame, FrameRing
from bms.compat import const, ticks_add, ticks_diff

BACKOFF_MIN_MS = const(100)
BACKOFF_MAX_MS = const(5000)
TX_QUEUE = const(16)
# Counters wrap at 2**30 (about a year of frames at 30 a second): beyond that an int is no
# longer a small int on MicroPython, and every increment would allocate.
COUNTER_MASK = const(0x3FFFFFFF)


class NodeCanPort:
    """Counting, non-blocking access to one CAN backend.

    Counters: tx_frames (taken by the controller), tx_deferred (had to wait in the queue),
    tx_dropped (lost: queue full, bus-off or error), rx_frames, errors (OSError from the
    driver), bus_off_count (entries into bus-off), restarts (restart() calls); tec and rec
    the controller's error counters when its backend reports them. Each wraps to
    0 after 2**30 - 1, so it stays a small int (no allocation).
    """

    def __init__(
        self,
        backend,
        backoff_min_ms=BACKOFF_MIN_MS,
        backoff_max_ms=BACKOFF_MAX_MS,
        tx_queue=TX_QUEUE,
    ):
        self.backend = backend
        self.backoff_min_ms = backoff_min_ms
        self.backoff_max_ms = backoff_max_ms
        self.frame = Frame()  # the one receive buffer, reused for every frame
        self.queue = FrameRing(tx_queue)
        self._out = Frame()  # a queued frame on its way to the controller
        # The scratch buffer's data as bytes-like objects of every length 0..8, made once so
        # that sending a queued frame of any DLC does not allocate.
        self._views = [memoryview(self._out.data)[:n] for n in range(9)]
        self.tx_frames = 0
        self.tx_deferred = 0
        self.tx_dropped = 0
        self.rx_frames = 0
        self.errors = 0
        self.bus_off_count = 0
        self.restarts = 0
        self.bus_off = False
        self._delay_ms = backoff_min_ms
        self._restart_at = 0
        self._healthy_since = 0
        # Transmit and receive error counters of controllers that report them (MCP2515).
        self.tec = 0
        self.rec = 0
        self._error_counters = hasattr(backend, "tec")

    def set_filters(self, filters):
        """Install receive filters; a driver error only means more frames reach the node."""
        try:
            self.backend.set_filters(filters)
        except (OSError, ValueError):
            self.errors = (self.errors + 1) & COUNTER_MASK

    def poll(self, now_ms):
        """Check the controller state and restart it from bus-off when its back-off is over."""
        try:
            bus_off = self.backend.state() == STATE_BUS_OFF
        except OSError:
            self.errors = (self.errors + 1) & COUNTER_MASK
            bus_off = True
        if self._error_counters:
            self.tec = self.backend.tec
            self.rec = self.backend.rec
        if bus_off:
            if not self.bus_off:
                self.bus_off = True
                self.bus_off_count = (self.bus_off_count + 1) & COUNTER_MASK
                self.tx_dropped = (self.tx_dropped + self.queue.count) & COUNTER_MASK
                self.queue.clear()
                self._restart_at = ticks_add(now_ms, self._delay_ms)
            elif ticks_diff(now_ms, self._restart_at) >= 0:
                self.restarts = (self.restarts + 1) & COUNTER_MASK
                try:
                    self.backend.restart()
                except OSError:
                    self.errors = (self.errors + 1) & COUNTER_MASK
                # Each restart that does not cure the bus doubles the wait before the next.
                self._delay_ms = min(self._delay_ms * 2, self.backoff_max_ms)
                self._restart_at = ticks_add(now_ms, self._delay_ms)
        elif self.bus_off:
            # Recovered. The doubled delay stays until the bus has been healthy for a while,
            # so a bus that keeps falling off is restarted less and less often.
            self.bus_off = False
            self._healthy_since = now_ms
        elif self._delay_ms != self.backoff_min_ms and (
            ticks_diff(now_ms, self._healthy_since) >= self.backoff_max_ms
        ):
            self._delay_ms = self.backoff_min_ms
        if not self.bus_off and self.queue.count:
            self._flush()

    def _transmit(self, can_id, data, flags):
        try:
            ok = self.backend.send(can_id, data, flags)
        except OSError:
            self.errors = (self.errors + 1) & COUNTER_MASK
            ok = False
        if ok:
            self.tx_frames = (self.tx_frames + 1) & COUNTER_MASK
        return ok

    def _flush(self):
        """Hand queued frames to the controller in order; True when the queue is empty."""
        queue = self.queue
        out = self._out
        while queue.peek(out):
            if not self._transmit(out.id, self._views[out.dlc], out.flags):
                return False
            queue.pop()
        return True

    def send(self, can_id, data, flags=0):
        """Send or queue a frame (True); False when it had to be dropped (and counted)."""
        if self.bus_off:
            self.tx_dropped = (self.tx_dropped + 1) & COUNTER_MASK
            return False
        if not self.queue.count or self._flush():
            # _transmit written out: every frame the node sends passes here.
            try:
                ok = self.backend.send(can_id, data, flags)
            except OSError:
                self.errors = (self.errors + 1) & COUNTER_MASK
                ok = False
            if ok:
                self.tx_frames = (self.tx_frames + 1) & COUNTER_MASK
                return True
        if self.queue.put(can_id, data, len(data), flags):
            self.tx_deferred = (self.tx_deferred + 1) & COUNTER_MASK
            return True
        self.tx_dropped = (self.tx_dropped + 1) & COUNTER_MASK
        return False

    def recv(self):
        """The next received frame (the shared Frame, valid until the next call) or None."""
        try:
            if self.backend.recv(self.frame):
                self.rx_frames = (self.rx_frames + 1) & COUNTER_MASK
                return self.frame
        except OSError:
            self.errors = (self.errors + 1) & COUNTER_MASK
        return None

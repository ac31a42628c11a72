"""The node's side of the CAN shim: never blocks, never raises into the protection loop.

CanPort wraps a backend (see bms.can). A frame the controller cannot take (transmit queue
full, bus-off, driver error) is dropped and counted; the protection loop carries on. A
bus-off controller is restarted after a back-off delay that starts at backoff_min_ms and
doubles with every further bus-off up to backoff_max_ms; once the bus has stayed healthy for
backoff_max_ms the delay starts again from backoff_min_ms.
"""

from bms.can import STATE_BUS_OFF, Frame
from bms.compat import const, ticks_add, ticks_diff

BACKOFF_MIN_MS = const(100)
BACKOFF_MAX_MS = const(5000)


class CanPort:
    """Counting, non-blocking access to one CAN backend.

    Counters: tx_frames (queued), tx_dropped (not queued: full, bus-off or error),
    rx_frames, errors (OSError from the driver), bus_off_count (entries into bus-off),
    restarts (restart() calls).
    """

    def __init__(self, backend, backoff_min_ms=BACKOFF_MIN_MS, backoff_max_ms=BACKOFF_MAX_MS):
        self.backend = backend
        self.backoff_min_ms = backoff_min_ms
        self.backoff_max_ms = backoff_max_ms
        self.frame = Frame()  # the one receive buffer, reused for every frame
        self.tx_frames = 0
        self.tx_dropped = 0
        self.rx_frames = 0
        self.errors = 0
        self.bus_off_count = 0
        self.restarts = 0
        self.bus_off = False
        self._delay_ms = backoff_min_ms
        self._restart_at = 0
        self._healthy_since = 0

    def set_filters(self, filters):
        """Install receive filters; a driver error only means more frames reach the node."""
        try:
            self.backend.set_filters(filters)
        except (OSError, ValueError):
            self.errors += 1

    def poll(self, now_ms):
        """Check the controller state and restart it from bus-off when its back-off is over."""
        try:
            bus_off = self.backend.state() == STATE_BUS_OFF
        except OSError:
            self.errors += 1
            bus_off = True
        if bus_off:
            if not self.bus_off:
                self.bus_off = True
                self.bus_off_count += 1
                self._restart_at = ticks_add(now_ms, self._delay_ms)
            elif ticks_diff(now_ms, self._restart_at) >= 0:
                self.restarts += 1
                try:
                    self.backend.restart()
                except OSError:
                    self.errors += 1
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

    def send(self, can_id, data, flags=0):
        """Queue a frame; False (and counted) when it could not be queued."""
        if self.bus_off:
            self.tx_dropped += 1
            return False
        try:
            ok = self.backend.send(can_id, data, flags)
        except OSError:
            self.errors += 1
            ok = False
        if ok:
            self.tx_frames += 1
        else:
            self.tx_dropped += 1
        return ok

    def recv(self):
        """The next received frame (the shared Frame, valid until the next call) or None."""
        try:
            if self.backend.recv(self.frame):
                self.rx_frames += 1
                return self.frame
        except OSError:
            self.errors += 1
        return None

"""A CAN backend that keeps trying to start its controller: a failed start is not for good.

    backend = RetryingBus(lambda: board.can_backend(config))

A controller that fails to start (an MCP2515 still in reset, a loose SPI wire, a transceiver
without power) is reported as bus-off, so NodeCanPort retries it with its bus-off back-off
(100 ms doubling to 5 s): restart() calls the factory again. Until one attempt succeeds
the node runs with no bus (frames dropped and counted, CommLoss); afterwards this object
passes everything to the controller, filters included. start_failures counts the failed
attempts; the first one and the eventual success are printed.
"""

from bms.can import STATE_BUS_OFF


class RetryingBus:
    """CAN backend wrapper around a controller factory; see the module docstring."""

    def __init__(self, factory):
        self.factory = factory
        self.backend = None
        self.filters = None
        self.start_failures = 0
        self._try_start()

    def _try_start(self):
        try:
            backend = self.factory()
        except Exception as exc:  # any driver error: report it and retry later
            self.start_failures += 1
            if self.start_failures == 1:
                print("bms: CAN controller failed, retrying with back-off:", repr(exc))
            return
        if self.filters is not None:
            backend.set_filters(self.filters)
        self.backend = backend
        if self.start_failures:
            print("bms: CAN controller started after", self.start_failures, "failures")

    def send(self, can_id, data, flags):
        if self.backend is None:
            return False
        return self.backend.send(can_id, data, flags)

    def recv(self, frame):
        if self.backend is None:
            return False
        return self.backend.recv(frame)

    def set_filters(self, filters):
        self.filters = filters
        if self.backend is not None:
            self.backend.set_filters(filters)

    def state(self):
        if self.backend is None:
            return STATE_BUS_OFF
        return self.backend.state()

    def restart(self):
        if self.backend is None:
            self._try_start()
        else:
            self.backend.restart()

"""The node's life cycle and relay state machine (NodeState.State in docs/protocol.md).

    Init ---settle time over---------------------------> Standby
    Init, Standby, Active ---any fault----------------> Tripped  (relay opens, latched)
    Standby ---Close held and gateway link Ok----------> Active   (relay closes)
    Active ---Open requested---------------------------> Standby  (relay opens)
    Tripped ---no fault, then reset (or auto-reclose)---> Standby  (Init if still settling)
    ConfigError: final; the relay stays open until a reboot with a valid configuration.

The relay is closed in Active and only there, so it never closes while a fault is active,
whatever the gateway requests. A reset is the ResetFault 0->1 edge of a valid RelayCommand;
it is ignored unless the node is Tripped with every fault cleared. With auto_reclose_ms > 0
the node leaves Tripped on its own once every fault has been clear for that long, at most
reclose_per_hour times in any hour: the trip after that stays latched until a reset (which
also forgets the count), so a persistent fault cannot wear the relay out.
"""

from bms.codec import (
    NODE_STATE_STATE_ACTIVE,
    NODE_STATE_STATE_CONFIG_ERROR,
    NODE_STATE_STATE_INIT,
    NODE_STATE_STATE_STANDBY,
    NODE_STATE_STATE_TRIPPED,
    RELAY_COMMAND_REQUEST_CLOSE,
    RELAY_COMMAND_REQUEST_OPEN,
)
from bms.compat import const, ticks_diff

HOUR_MS = const(3600000)

INIT = NODE_STATE_STATE_INIT
STANDBY = NODE_STATE_STATE_STANDBY
ACTIVE = NODE_STATE_STATE_ACTIVE
TRIPPED = NODE_STATE_STATE_TRIPPED
CONFIG_ERROR = NODE_STATE_STATE_CONFIG_ERROR


class Lifecycle:
    """State machine of one node; see the module docstring."""

    def __init__(self, settle_ms, auto_reclose_ms, config_ok, reclose_per_hour=3):
        self.settle_ms = settle_ms
        self.auto_reclose_ms = auto_reclose_ms
        self.reclose_locked = False  # the hour's auto-recloses are used up: a reset is needed
        self.no_auto_reclose = False  # set by the node while a stored trip is kept
        # When each of the last auto-recloses happened; a slot frees an hour after its use.
        # Checked every cycle, so no age is compared after more than an hour and a cycle.
        self._reclose_ms = [0] * reclose_per_hour
        self._reclose_used = bytearray(reclose_per_hour)
        self.state = INIT if config_ok else CONFIG_ERROR
        self.settled = False
        self.trip_cleared = False  # Tripped and every fault clear: a reset may close again
        self.trips = 0
        self._started = False
        self._boot_ms = 0
        self._cleared_ms = 0

    def trip(self):
        """Enter Tripped at once (an internal error outside the normal inputs)."""
        if self.state not in (CONFIG_ERROR, TRIPPED):
            self.state = TRIPPED
            self.trips += 1
            self.trip_cleared = False

    def update(self, now_ms, faults, request, link_ok, reset):
        """One transition at most; True when the relay shall be closed.

        faults: active fault bit mask; request: the held RelayCommand request; link_ok: a
        fresh gateway heartbeat; reset: a ResetFault edge arrived since the last update.
        """
        if not self._started:
            self._started = True
            self._boot_ms = now_ms
        if not self.settled and ticks_diff(now_ms, self._boot_ms) >= self.settle_ms:
            self.settled = True
        state = self.state
        if state == CONFIG_ERROR:
            return False
        used = self._reclose_used
        stamps = self._reclose_ms
        if any(used):  # most cycles none is: no loop (a built-in, no allocation)
            for i in range(len(used)):
                if used[i] and ticks_diff(now_ms, stamps[i]) >= HOUR_MS:
                    used[i] = 0
        if faults:
            if state != TRIPPED:
                self.trip()
            self.trip_cleared = False
        elif state == INIT:
            if self.settled:
                self.state = STANDBY
        elif state == STANDBY:
            if request == RELAY_COMMAND_REQUEST_CLOSE and link_ok:
                self.state = ACTIVE
        elif state == ACTIVE:
            if request == RELAY_COMMAND_REQUEST_OPEN:
                self.state = STANDBY
        elif state == TRIPPED:
            if not self.trip_cleared:
                self.trip_cleared = True
                self._cleared_ms = now_ms
            auto = self.auto_reclose_ms
            if reset:
                for i in range(len(used)):
                    used[i] = 0
                self.reclose_locked = False
                self._leave_tripped()
            elif (
                auto
                and not self.reclose_locked
                and not self.no_auto_reclose
                and ticks_diff(now_ms, self._cleared_ms) >= auto
            ):
                slot = self._free_reclose_slot()
                if slot < 0:
                    self.reclose_locked = True  # latched until a reset
                else:
                    used[slot] = 1
                    stamps[slot] = now_ms
                    self._leave_tripped()
        return self.state == ACTIVE

    def _leave_tripped(self):
        self.state = STANDBY if self.settled else INIT
        self.trip_cleared = False

    def _free_reclose_slot(self):
        used = self._reclose_used
        for i in range(len(used)):
            if not used[i]:
                return i
        return -1

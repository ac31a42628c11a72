"""Gateway commands to this node, accepted only when end-to-end checks pass.

Frames on this node's command identifiers (RelayCommand 0x110 | node, BalanceCommand
0x160 | node) and the broadcast GatewayHeartbeat (0x120) must have 8 data bytes, a valid
CRC-8/SAE-J1850 over their identifier and payload (bms.e2e), and a fresh alive counter (one
AliveCheck per identifier); anything else on those identifiers is rejected and counted in
rejected (PackStatus.RejectedCommands, wraps 255 -> 0). That includes a frame sealed for
another node's identifier and put on this one. Frames on other identifiers (other nodes'
commands on a shared bus, extended identifiers) are not for this node and are ignored
without counting.

With a command key (bms.auth) a RelayCommand that makes the battery less safe, a Close while
Close is not held or a ResetFault edge, must carry the right Mac over a Freshness value newer
than that of every frame verified before (else it is a replay). The gateway puts a Mac on
every RelayCommand, and every frame newer than the newest verified one is checked, so the
genuine stream keeps the newest Freshness past anything an attacker can have recorded; only a
frame with a good Mac moves it, so a forger cannot walk it towards a recorded frame. Frames
that make nothing less safe (Open, None, Close held) pass without a good Mac and are never
refused for their Freshness: a gateway whose clock went back still opens the relay. After a
wrong Mac on a less-safe command the node checks no Mac and refuses less-safe commands for
MAC_LOCKOUT_MS, so guessing the 24-bit Mac takes one try per lockout (months on average).
The newest Freshness lives in RAM: in the moments after a node restart a recorded frame could
still pass once (docs/safety.md).
Without a key the node behaves as before and says so once at start.

The gateway link is Ok while valid heartbeats arrive within gateway_timeout_ms, Lost after
that, NeverSeen before the first one. Losing the link forgets the held relay request (a
gateway that comes back must ask again) and re-arms the alive checks for its restart.
"""

from bms import codec
from bms.auth import command_mac, newer
from bms.can import FLAG_EXT_ID, FLAG_RTR
from bms.compat import const, ticks_diff
from bms.e2e import ACCEPT, AliveCheck, frame_crc

LINK_NEVER_SEEN = codec.NODE_STATE_GATEWAY_LINK_NEVER_SEEN
LINK_OK = codec.NODE_STATE_GATEWAY_LINK_OK
LINK_LOST = codec.NODE_STATE_GATEWAY_LINK_LOST

REQUEST_NONE = codec.RELAY_COMMAND_REQUEST_NONE
# After a wrong Mac, less-safe commands are refused this long: a genuine gateway repeats its
# Close every 200 ms, a forger gets one guess per lockout.
MAC_LOCKOUT_MS = const(1000)


class Commands:
    """Receive side of the protocol for one node; see the module docstring."""

    def __init__(self, node_id, gateway_timeout_ms, key=None):
        self.relay_id = codec.RELAY_COMMAND_ID | node_id
        self.balance_id = codec.BALANCE_COMMAND_ID | node_id
        self.heartbeat_id = codec.GATEWAY_HEARTBEAT_ID
        self.gateway_timeout_ms = gateway_timeout_ms
        self._relay_alive = AliveCheck()
        self._balance_alive = AliveCheck()
        self._heartbeat_alive = AliveCheck()
        self._relay = [0] * codec.RELAY_COMMAND_SIGNALS
        self._balance = [0] * codec.BALANCE_COMMAND_SIGNALS
        self._heartbeat = [0] * codec.GATEWAY_HEARTBEAT_SIGNALS
        self.rejected = 0
        self.request = REQUEST_NONE  # the held relay request
        self.reset_requested = False  # a ResetFault 0->1 edge not yet acted on
        self._reset_bit = 0
        self.link = LINK_NEVER_SEEN
        self.gateway_state = 0
        self._heard = False
        self._heartbeat_ms = 0
        self._boot_ms = 0
        self._started = False
        self._boot_expired = False
        self.key = key
        self._freshness = 0  # the newest Freshness seen (with a key)
        self._fresh_seen = False
        self.mac_failures = 0
        self._locked = False  # a wrong Mac seen less than MAC_LOCKOUT_MS ago
        self._locked_ms = 0
        if key is None:
            print("bms: no command_key: commands are checked (CRC, counter), not authenticated")

    def filters(self):
        """CAN acceptance filters for the three identifiers this node listens to."""
        return [
            (self.relay_id, 0x7FF, 0),
            (self.heartbeat_id, 0x7FF, 0),
            (self.balance_id, 0x7FF, 0),
        ]

    def _reject(self):
        self.rejected = (self.rejected + 1) & 0xFF

    def _sound(self, frame, dlc, check):
        """DLC, CRC and alive counter of a protected frame; counts a rejection."""
        data = frame.data
        # The CRC compared here rather than by e2e.crc_ok (a call fewer per frame): data is
        # the Frame's 8-byte buffer.
        if frame.flags & FLAG_RTR or frame.dlc != dlc or data[0] != frame_crc(frame.id, data):
            self._reject()
            return False
        if check.check(data[1]) != ACCEPT:
            self._reject()
            return False
        return True

    def accept(self, frame, now_ms, balancer):
        """Handle one received frame."""
        if frame.flags & FLAG_EXT_ID:
            return
        can_id = frame.id
        if can_id == self.heartbeat_id:
            self._on_heartbeat(frame, now_ms)
        elif can_id == self.relay_id:
            self._on_relay_command(frame, now_ms)
        elif can_id == self.balance_id:
            self._on_balance_command(frame, now_ms, balancer)

    def _on_heartbeat(self, frame, now_ms):
        if not self._sound(frame, codec.GATEWAY_HEARTBEAT_DLC, self._heartbeat_alive):
            return
        values = self._heartbeat
        codec.decode_gateway_heartbeat(frame.data, values)
        self.gateway_state = values[codec.GATEWAY_HEARTBEAT_GATEWAY_STATE]
        self._heard = True
        self._heartbeat_ms = now_ms
        self.link = LINK_OK

    def _on_relay_command(self, frame, now_ms):
        if not self._sound(frame, codec.RELAY_COMMAND_DLC, self._relay_alive):
            return
        values = self._relay
        codec.decode_relay_command(frame.data, values)
        request = values[codec.RELAY_COMMAND_REQUEST]
        if request > codec.RELAY_COMMAND_REQUEST_CLOSE:
            self._reject()  # undefined request value
            return
        reset = values[codec.RELAY_COMMAND_RESET_FAULT]
        if self.key is not None and not self._authentic(frame, values, request, reset, now_ms):
            self._reject()
            return
        self.request = request
        if reset and not self._reset_bit:
            self.reset_requested = True
        self._reset_bit = reset

    def _authentic(self, frame, values, request, reset, now_ms):
        """Track the newest Freshness of frames with a good Mac; pass a less-safe command only
        with a good Mac over a Freshness newer than every one verified before. Anything else
        passes (it makes nothing less safe)."""
        less_safe = (request == codec.RELAY_COMMAND_REQUEST_CLOSE and self.request != request) or (
            reset and not self._reset_bit
        )
        if self._locked:
            # Latched: an age is only compared while it is short (MicroPython's ticks wrap).
            if 0 <= ticks_diff(now_ms, self._locked_ms) < MAC_LOCKOUT_MS:
                return not less_safe  # no Mac is checked while locked out
            self._locked = False
        freshness = values[codec.RELAY_COMMAND_FRESHNESS]
        if self._fresh_seen and not newer(freshness, self._freshness):
            return not less_safe  # not newer: a replayed or delayed frame
        # Every newer frame is checked, safe ones too: the gateway's stream of Macs moves the
        # newest Freshness past every frame an attacker can have recorded. The Mac allocates
        # (hash objects): five RelayCommands a second with a key, none without.
        if command_mac(self.key, frame.id, frame.data) == values[codec.RELAY_COMMAND_MAC]:
            self._freshness = freshness
            self._fresh_seen = True
            return True
        if not less_safe:
            return True  # an Open (or a held request) without a good Mac: safe, not counted
        self.mac_failures = (self.mac_failures + 1) & 0x3FFFFFFF
        self._locked = True
        self._locked_ms = now_ms
        return False

    def _on_balance_command(self, frame, now_ms, balancer):
        if not self._sound(frame, codec.BALANCE_COMMAND_DLC, self._balance_alive):
            return
        values = self._balance
        if not codec.decode_balance_command(frame.data, values):
            self._reject()  # unknown cell group
            return
        group = values[codec.BALANCE_COMMAND_CELL_GROUP]
        if group == 0:
            low = values[codec.BALANCE_COMMAND_BLEED_CELLS01_TO16]
            high = values[codec.BALANCE_COMMAND_BLEED_CELLS17_TO32]
        else:
            low = values[codec.BALANCE_COMMAND_BLEED_CELLS33_TO48]
            high = values[codec.BALANCE_COMMAND_BLEED_CELLS49_TO64]
        floor = values[codec.BALANCE_COMMAND_BLEED_FLOOR_VOLTAGE]
        balancer.command(group, low, high, floor, now_ms)

    def take_reset(self):
        """True once per received ResetFault edge."""
        if self.reset_requested:
            self.reset_requested = False
            return True
        return False

    def update_link(self, now_ms):
        """Age the heartbeat; True while the gateway counts as lost (CommLoss warning)."""
        if not self._started:
            self._started = True
            self._boot_ms = now_ms
        timeout = self.gateway_timeout_ms
        # Lost is latched until the next valid heartbeat, and the boot timeout only once:
        # an age compared after 2**29 ms would wrap round to "fresh" on MicroPython's ticks.
        if self.link == LINK_LOST:
            return True
        if self._heard:
            if ticks_diff(now_ms, self._heartbeat_ms) > timeout:
                if self.link != LINK_LOST:
                    self.link = LINK_LOST
                    self.request = REQUEST_NONE
                    self._reset_bit = 0
                    self._relay_alive.reset()
                    self._balance_alive.reset()
                    self._heartbeat_alive.reset()
                return True
            return False
        if not self._boot_expired and ticks_diff(now_ms, self._boot_ms) > timeout:
            self._boot_expired = True
        return self._boot_expired

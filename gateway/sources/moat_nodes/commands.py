"""Protected commands from the gateway to the nodes: heartbeat, relay and balancing.

Every frame is encoded with the generated codec and sealed with the CRC-8 and the alive
counter of bms.e2e (one counter per frame id), so a node rejects a stuck, repeated,
corrupted or misaddressed command. Frames are sent at their DBC cycle times and at once when
a request changes.

RelayCommand also carries a Freshness value (per node: the tick's wall clock in 100 ms
ticks, at least +1 per frame, low 24 bits; the simulated clock in the simulator, so a run
replays bit for bit) and, with the installation's command key, the Mac of
bms.auth (AUTOSAR SecOC style): a node with the same key closes its relay or clears a trip
only on a frame that carries both, so a device on the bus can neither forge nor replay one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

from bms.auth import command_mac
from bms.e2e import COUNTER_MODULO, seal
from gateway.codec import moat_bms as codec
from gateway.contracts.decision import BalanceRequest, RelayAction, RelayRequest
from gateway.contracts.frame import Frame
from gateway.contracts.saved import SavedState, parse_saved

HEARTBEAT_PERIOD = codec.CYCLE_MS[codec.FRAME_IDS["GatewayHeartbeat"]] / 1000
RELAY_PERIOD = codec.CYCLE_MS[codec.FRAME_IDS["RelayCommand"]] / 1000
BALANCE_PERIOD = codec.CYCLE_MS[codec.FRAME_IDS["BalanceCommand"]] / 1000
RESET_FRAMES = 3  # a reset is held for a few frames: the node acts on the 0 -> 1 edge
# The heartbeat's payload (unsealed) for each gateway state, encoded when first sent.
_HEARTBEATS: dict[int, bytes] = {}


@dataclass
class _NodeCommand:
    relay: RelayAction = RelayAction.NONE
    reset_left: int = 0
    balance_cells: int = 0
    balance_floor: float = 0.0
    relay_due: float = -math.inf
    balance_due: float = -math.inf
    freshness: int = 0  # the last Freshness sent (full value, the frame has the low 24 bits)
    # The BalanceCommand payloads (unsealed, one per cell group) for (balance_cells,
    # balance_floor): the request rarely changes, so they are encoded once per change.
    balance_for: tuple[int, float] | None = None
    balance_data: tuple[bytes, ...] = ()


class SavedCommands(SavedState):
    """What the commander keeps across a restart: the last Freshness sent to each node. A
    gateway whose clock restarts behind (a Pi without a real-time clock) then still sends
    Freshness values the nodes take as new, so its Close is not refused."""

    version: Literal[1]
    freshness: dict[str, int]  # node id (JSON keys are text) -> last Freshness sent


class NodeCommander:
    """Turns the strategy's requests into a stream of protected frames."""

    def __init__(self, cells: dict[int, int], command_key: bytes | None = None) -> None:
        """cells: node id -> configured cell count (decides the balance groups to send);
        command_key: the installation's key (bms.auth), None = no Mac (the nodes then accept
        commands unauthenticated, if they have no key either)."""
        self.cells = cells
        self.command_key = command_key
        self._nodes = {n: _NodeCommand() for n in cells}
        self._counters: dict[int, int] = {}
        # Frame id -> (payload, the sealed frame for each counter value, None until made).
        self._sealed_for: dict[int, tuple[bytes, list[Frame | None]]] = {}
        self._heartbeat_due = -math.inf
        self.gateway_state = codec.GatewayHeartbeatGatewayState.STARTING

    def saved(self) -> dict[str, Any]:
        """The state to keep across a restart (JSON-safe)."""
        return {
            "version": 1,
            "freshness": {str(n): cmd.freshness for n, cmd in self._nodes.items()},
        }

    def restore(self, data: object, skip: int) -> None:
        """Go on from saved(): each node's Freshness resumes `skip` past the saved value (the
        frames sent after that save). ValueError naming the key when data is unusable."""
        saved = parse_saved(SavedCommands, data, "commands")
        for key, value in saved.freshness.items():
            node = int(key) if key.isdigit() else -1
            if node in self._nodes and value >= 0:
                self._nodes[node].freshness = value + skip

    def _sealed(self, frame_id: int, data: bytes) -> Frame:
        counter = self._counters.get(frame_id, 0)
        self._counters[frame_id] = (counter + 1) % COUNTER_MODULO
        # A sealed frame depends on its id, payload and counter only. The heartbeat and the
        # balance commands repeat their payload for hours, so while it stays the same each
        # of the 16 counter values is sealed (a CRC over the frame) and made a Frame once.
        memo = self._sealed_for.get(frame_id)
        if memo is None or memo[0] != data:
            memo = self._sealed_for[frame_id] = (data, [None] * COUNTER_MODULO)
        frame = memo[1][counter]
        if frame is None:
            buf = bytearray(data)
            seal(frame_id, buf, counter)
            frame = memo[1][counter] = Frame(frame_id, bytes(buf))
        return frame

    def request_relay(self, req: RelayRequest) -> None:
        cmd = self._nodes.get(req.node)
        if cmd is None:
            return
        if req.action != cmd.relay:
            cmd.relay = req.action
            cmd.relay_due = -math.inf  # send the change at once
        if req.reset_fault and cmd.reset_left == 0:
            cmd.reset_left = RESET_FRAMES
            cmd.relay_due = -math.inf

    def request_balance(self, req: BalanceRequest) -> None:
        cmd = self._nodes.get(req.node)
        if cmd is None:
            return
        if req.cells != cmd.balance_cells or req.floor != cmd.balance_floor:
            cmd.balance_cells = req.cells
            cmd.balance_floor = req.floor
            cmd.balance_due = -math.inf

    def due_frames(self, now: float) -> list[Frame]:
        """Frames to send now: the heartbeat and every command whose period has elapsed."""
        frames: list[Frame] = []
        if now >= self._heartbeat_due:
            self._heartbeat_due = now + HEARTBEAT_PERIOD
            frames.append(self.heartbeat())
        for node, cmd in self._nodes.items():
            if now >= cmd.relay_due:
                cmd.relay_due = now + RELAY_PERIOD
                frames.append(self.relay_frame(node, cmd, now))
            if now >= cmd.balance_due:
                cmd.balance_due = now + BALANCE_PERIOD
                frames.extend(self.balance_frames(node, cmd))
        return frames

    def stopping(self) -> Frame | None:
        """Switch the heartbeat to STOPPING and return that heartbeat, once; None after."""
        stopping = codec.GatewayHeartbeatGatewayState.STOPPING
        if self.gateway_state == stopping:
            return None
        self.gateway_state = stopping
        return self.heartbeat()

    def heartbeat(self) -> Frame:
        frame_id = codec.FRAME_IDS["GatewayHeartbeat"]
        data = _HEARTBEATS.get(self.gateway_state)
        if data is None:
            data = _HEARTBEATS[self.gateway_state] = codec.encode_gateway_heartbeat(
                codec.GatewayHeartbeat(crc=0, counter=0, gateway_state=self.gateway_state)
            )
        return self._sealed(frame_id, data)

    def relay_frame(self, node: int, cmd: _NodeCommand, now: float = 0.0) -> Frame:
        """The RelayCommand to node; now (epoch seconds, the tick's clock) seeds Freshness."""
        frame_id = codec.FRAME_IDS["RelayCommand"] | node
        reset = cmd.reset_left > 0
        if reset:
            cmd.reset_left -= 1
        cmd.freshness = max(cmd.freshness + 1, int(now * 10))
        buf = bytearray(
            codec.encode_relay_command(
                codec.RelayCommand(
                    crc=0,
                    counter=0,
                    request=int(cmd.relay),
                    reset_fault=int(reset),
                    freshness=cmd.freshness & 0xFFFFFF,
                    mac=0,
                )
            )
        )
        # Freshness makes every payload new: sealed here, not through _sealed's memo of
        # repeating payloads (it would make and drop a memo every frame).
        counter = self._counters.get(frame_id, 0)
        self._counters[frame_id] = (counter + 1) % COUNTER_MODULO
        seal(frame_id, buf, counter)
        if self.command_key is not None:
            mac = command_mac(self.command_key, frame_id, buf)  # over the counter too
            buf[5:8] = mac.to_bytes(3, "little")
            seal(frame_id, buf, counter)  # the CRC covers the Mac
        return Frame(frame_id, bytes(buf))

    def balance_frames(self, node: int, cmd: _NodeCommand) -> list[Frame]:
        frame_id = codec.FRAME_IDS["BalanceCommand"] | node
        request = (cmd.balance_cells, cmd.balance_floor)
        if cmd.balance_for != request:
            cmd.balance_for = request
            cmd.balance_data = self._balance_payloads(node, cmd)
        return [self._sealed(frame_id, data) for data in cmd.balance_data]

    def _balance_payloads(self, node: int, cmd: _NodeCommand) -> tuple[bytes, ...]:
        """The BalanceCommand payloads of cmd's request, one per cell group, unsealed."""
        groups = 2 if self.cells[node] > 32 else 1
        floor = min(max(cmd.balance_floor, 0.0), 65.535)
        payloads = []
        for group in range(groups):
            bits = cmd.balance_cells >> (32 * group)
            payloads.append(
                codec.encode_balance_command(
                    codec.BalanceCommand(
                        crc=0,
                        counter=0,
                        cell_group=group,
                        bleed_floor_voltage=floor,
                        muxed=(bits & 0xFFFF, (bits >> 16) & 0xFFFF),
                    )
                )
            )
        return tuple(payloads)

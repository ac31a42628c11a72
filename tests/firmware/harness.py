"""A test bench for the node: simulated hardware, a loopback bus and a gateway peer.

The gateway side encodes its commands with cantools from dbc/moat_bms.dbc and seals them
with the e2e reference; frames the node sends are decoded with cantools too, so the tests
check the firmware against the DBC rather than against the firmware's own codec.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bms import e2e
from bms.auth import command_mac
from bms.can import Frame
from bms.can.loopback import LoopbackBus
from bms.config import load_config
from bms.hw.sim import SimHardware
from bms.node import Node

HEARTBEAT_PERIOD_MS = 500
RELAY_PERIOD_MS = 200
BALANCE_PERIOD_MS = 1000


@dataclass
class Sent:
    """One frame the node sent."""

    time: int
    frame_id: int
    data: bytes


class GatewayPeer:
    """Builds sealed gateway commands and puts them on the loopback bus."""

    def __init__(self, db: Any, bus: LoopbackBus, node_id: int) -> None:
        self.db = db
        self.bus = bus
        self.node_id = node_id
        self.counters: dict[int, int] = {}
        self.key: bytes | None = None  # the installation's command key (bms.auth)
        self.freshness = 1000  # RelayCommand Freshness, raised with every frame

    def sealed(
        self,
        name: str,
        signals: dict[str, Any],
        frame_id: int | None = None,
        counter: int | None = None,
        node_id: int | None = None,
    ) -> tuple[int, bytearray]:
        """(frame id, payload) of a command, CRC over the id it is sealed for."""
        msg = self.db.get_message_by_name(name)
        if frame_id is None:
            node = self.node_id if node_id is None else node_id
            frame_id = msg.frame_id if name == "GatewayHeartbeat" else msg.frame_id | node
        values = {"Crc": 0, "Counter": 0, **signals}
        if name == "RelayCommand":
            self.freshness = (self.freshness + 1) & 0xFFFFFF
            values = {"Freshness": self.freshness, "Mac": 0, **values}
        buf = bytearray(msg.encode(values, strict=True))
        if counter is None:
            counter = self.counters.get(frame_id, -1) + 1 & 0x0F
        self.counters[frame_id] = counter
        e2e.seal(frame_id, buf, counter)
        if name == "RelayCommand" and self.key is not None and "Mac" not in signals:
            mac = command_mac(self.key, frame_id, buf)  # over the counter too
            buf[5], buf[6], buf[7] = mac & 0xFF, (mac >> 8) & 0xFF, mac >> 16
            e2e.seal(frame_id, buf, counter)  # the CRC covers the Mac
        return frame_id, buf

    def send(self, name: str, **signals: Any) -> bool:
        frame_id, buf = self.sealed(name, signals)
        return self.bus.inject(frame_id, buf)

    def heartbeat(self, state: str | int = "Running") -> bool:
        return self.send("GatewayHeartbeat", GatewayState=state)

    def relay(self, request: str | int = "Close", reset: int = 0) -> bool:
        return self.send("RelayCommand", Request=request, ResetFault=reset)

    def balance(self, cells: int, floor_v: float, group: int = 0) -> bool:
        """Bleed request for one group: cells is a 32-bit mask (bit k = cell 32 g + k + 1)."""
        if group == 0:
            masks = {"BleedCells01To16": cells & 0xFFFF, "BleedCells17To32": cells >> 16}
        else:
            masks = {"BleedCells33To48": cells & 0xFFFF, "BleedCells49To64": cells >> 16}
        return self.send("BalanceCommand", CellGroup=group, BleedFloorVoltage=floor_v, **masks)


@dataclass
class Bench:
    """Node + SimHardware + LoopbackBus + GatewayPeer on simulated time."""

    db: Any
    settings: dict[str, Any] = field(default_factory=dict)
    cells: int = 16
    temps: int = 4
    cycle_ms: int = 50
    honour_filters: bool = True
    heartbeat: bool = True  # the gateway sends heartbeats
    request: str | None = None  # relay request the gateway repeats, None = no RelayCommand
    reset: int = 0  # ResetFault bit in the repeated RelayCommand
    balance_cells: int | None = None  # cells 1..32 the gateway asks to bleed
    balance_floor_v: float = 0.0

    def __post_init__(self) -> None:
        settings = {"cells": self.cells, "temp_sensors": self.temps, **self.settings}
        self.config = load_config(settings)
        self.hw = SimHardware(cells=self.cells, temps=self.temps)
        self.bus = LoopbackBus(tx_capacity=512, honour_filters=self.honour_filters)
        self.node = Node(self.config, self.hw, self.bus)
        self.gateway = GatewayPeer(self.db, self.bus, self.config.node_id)
        self.now = 0
        self.sent: list[Sent] = []
        self._frame = Frame()

    def set_cells(self, mv: int) -> None:
        """Every cell at mv and the pack voltage consistent with them."""
        for i in range(self.cells):
            self.hw.cell_mv[i] = mv
        self.hw.pack_mv = mv * self.cells

    def set_cell(self, index: int, mv: int) -> None:
        """One cell (0-based) at mv, the pack voltage following."""
        self.hw.cell_mv[index] = mv
        self.hw.pack_mv = sum(self.hw.cell_mv)

    def _gateway_duties(self) -> None:
        t = self.now
        if self.heartbeat and t % HEARTBEAT_PERIOD_MS == 0:
            self.gateway.heartbeat()
        if self.request is not None and t % RELAY_PERIOD_MS == 0:
            self.gateway.relay(self.request, self.reset)
        if self.balance_cells is not None and t % BALANCE_PERIOD_MS == 0:
            self.gateway.balance(self.balance_cells, self.balance_floor_v)

    def step(self) -> None:
        """One node cycle at the current time, then advance the clock."""
        self._gateway_duties()
        self.node.step(self.now)
        frame = self._frame
        while self.bus.take(frame):
            self.sent.append(Sent(self.now, frame.id, bytes(frame.data[: frame.dlc])))
        self.now += self.cycle_ms

    def run(self, ms: int) -> None:
        """Run for ms milliseconds of simulated time."""
        end = self.now + ms
        while self.now < end:
            self.step()

    def run_until(self, predicate: Any, limit_ms: int) -> int:
        """Step until predicate() holds after a cycle; returns that cycle's time."""
        end = self.now + limit_ms
        while self.now < end:
            t = self.now
            self.step()
            if predicate():
                return t
        raise AssertionError(f"condition not reached within {limit_ms} ms")

    def settle(self) -> None:
        """Past Init, and past the next cycle in which a held Close request acts."""
        self.run(self.config.settle_ms + 2 * self.cycle_ms)

    def decoded(self, name: str, since: int = 0) -> list[tuple[int, dict[str, Any]]]:
        """(time, signals) of every frame named name the node sent at or after since."""
        msg = self.db.get_message_by_name(name)
        out = []
        for s in self.sent:
            if s.time >= since and s.frame_id & 0x7F0 == msg.frame_id:
                assert s.frame_id & 0x00F == self.config.node_id
                out.append((s.time, msg.decode(s.data, decode_choices=True)))
        return out

    def last(self, name: str) -> dict[str, Any]:
        frames = self.decoded(name)
        assert frames, f"no {name} frame sent"
        return frames[-1][1]

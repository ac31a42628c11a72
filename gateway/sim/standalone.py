"""A simulated node and a simulated inverter as separate processes on a real bus.

`moat-bms sim` runs everything in one process on one simulated clock. These two run the
same parts on their own, in real time, on any python-can bus (socketcan vcan0 between
processes; the virtual bus inside one): `moat-bms node`, `moat-bms inverter` and
`moat-bms run` then make the whole system as three (or more) processes, as on real
hardware.

Between processes there is no shared physics, so the current stands in for it: the
inverter sends the battery current it drives in SimBatteryCurrent (dbc/simulation.dbc),
and each node's pack carries its share (the current divided by the number of parallel
strings, none while its relay is open). A node does not see the relays of the other nodes
of its string; the one-process simulator models that exactly, this one does not.

Both are tick-driven (`step(t)` with t in seconds): the command loop supplies the wall
clock, tests a simulated one.
"""

from __future__ import annotations

import contextlib
import random
from typing import Any

import can

from bms.can.pythoncan import PythonCanBus
from bms.config import default_config, load_config
from bms.hw.sim import SimHardware
from bms.node import Node
from gateway.codec.pylontech_lv import FRAME_IDS as PYLON_IDS
from gateway.codec.pylontech_lv import decode_battery_measurements
from gateway.codec.simulation import (
    CYCLE_MS,
    FRAME_IDS,
    SimBatteryCurrent,
    decode_sim_battery_current,
    encode_sim_battery_current,
)
from gateway.sim.inverter import SimInverter, SimInverterSettings
from gateway.sim.physics import Battery, CellParams
from gateway.sim.power import PowerCurve
from gateway.sim.system import balance_mask, read_pack

CURRENT_ID = FRAME_IDS["SimBatteryCurrent"]
CURRENT_PERIOD_S = CYCLE_MS[CURRENT_ID] / 1000
MEASUREMENTS_ID = PYLON_IDS["BatteryMeasurements"]
CURRENT_TIMEOUT_S = 1.0  # no current frame for this long: the inverter is gone, no current


class StandaloneNode:
    """One firmware node with its own pack on `bus`; step(t) once per node cycle."""

    def __init__(
        self,
        bus: can.BusABC,
        listener: can.BusABC,
        *,
        node_id: int = 0,
        cells: int = 16,
        temp_sensors: int = 4,
        chemistry: str = "lfp",
        capacity_ah: float = 100.0,
        soc: float = 0.5,
        strings: int = 1,
        seed: int = 0,
        node_config: dict[str, Any] | None = None,
    ) -> None:
        """`bus` carries the node's own frames (its CAN backend); `listener` is a second
        handle on the same bus for the simulated current (the node filters it out)."""
        self.listener = listener
        self.strings = strings
        params = CellParams(capacity_ah=capacity_ah, chemistry=chemistry)
        rng = random.Random(seed * 31 + node_id)
        self.battery = Battery.build(rng, [[node_id]], cells, params, soc, sensors=temp_sensors)
        self.node_id = node_id
        self.pack = self.battery.packs[node_id]
        self.battery.set_relay(node_id, False)
        config = default_config(chemistry.upper())
        config.update(node_id=node_id, cells=cells, temp_sensors=temp_sensors)
        config.update(capacity_ah=capacity_ah)
        config.update(node_config or {})
        self.hw = SimHardware(cells=cells, temps=temp_sensors)
        self.node = Node(load_config(config), self.hw, PythonCanBus(bus))
        self.current_a = 0.0  # the whole battery's, from the inverter
        self._current_at: float | None = None
        self._last: float | None = None

    def step(self, t: float) -> None:
        self._read_current(t)
        dt = 0.0 if self._last is None else max(t - self._last, 0.0)
        self._last = t
        self.battery.set_relay(self.node_id, self.hw.relay_closed)
        self.pack.balance_mask = balance_mask(self.hw)
        if dt > 0:
            self.battery.step(dt, self.current_a / self.strings)
        read_pack(self.pack, self.hw)
        self.node.step(round(t * 1000))

    def _read_current(self, t: float) -> None:
        while (msg := self.listener.recv(0)) is not None:
            if msg.arbitration_id == CURRENT_ID and not msg.is_extended_id and len(msg.data) == 4:
                self.current_a = decode_sim_battery_current(bytes(msg.data)).current
                self._current_at = t
        if self._current_at is None or t - self._current_at > CURRENT_TIMEOUT_S:
            self.current_a = 0.0  # no inverter: nothing flows


class StandaloneInverter:
    """The simulated hybrid inverter on `bus`: reads the battery's Pylontech frames, sends
    0x305 and the current it drives; step(t) every 100 ms or so."""

    def __init__(
        self,
        bus: can.BusABC,
        pv: PowerCurve,
        load: PowerCurve,
        settings: SimInverterSettings | None = None,
    ) -> None:
        self.bus = bus
        self.pv = pv
        self.load = load
        self.inverter = SimInverter(settings)
        self.voltage: float | None = None  # the battery's, as its 0x356 says
        self._next_current = 0.0
        self._t0: float | None = None

    def step(self, t: float) -> float:
        """Advance to t; returns the battery current it now drives (A, + = charging)."""
        if self._t0 is None:
            self._t0 = t
        while (msg := self.bus.recv(0)) is not None:
            if msg.is_extended_id or msg.is_error_frame or msg.is_remote_frame:
                continue
            data = bytes(msg.data)
            self.inverter.on_frame(msg.arbitration_id, data, t)
            if msg.arbitration_id == MEASUREMENTS_ID and len(data) >= 6:
                self.voltage = decode_battery_measurements(data).voltage
        elapsed = t - self._t0
        current = self.inverter.step(t, self.voltage, self.pv(elapsed), self.load(elapsed))
        for frame_id, data in self.inverter.due_frames(t):
            self._send(frame_id, data)
        if t >= self._next_current:
            self._next_current = t + CURRENT_PERIOD_S
            self._send(CURRENT_ID, encode_sim_battery_current(SimBatteryCurrent(current)))
        return current

    def _send(self, frame_id: int, data: bytes) -> None:
        # A full TX queue drops a frame, as a real inverter's would.
        with contextlib.suppress(can.CanError):
            self.bus.send(can.Message(arbitration_id=frame_id, data=data, is_extended_id=False))

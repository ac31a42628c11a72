"""The whole system simulated: battery physics, the real firmware nodes, the real gateway
core and a simulated inverter, on python-can virtual buses (or the in-memory bus that gives
the same run at less cost, `bus="memory"`), driven by one clock.

The nodes share an in-memory channel (gateway/sim/membus.py). On the in-memory bus it is the
battery bus; on the virtual bus a Bridge joins it to the virtual battery bus, so that every
frame between the nodes and the gateway crosses python-can's virtual bus once, in send order,
and not once more for each node whose filters would drop it. The gateway and the inverter
each have their own bus of the run's kind.

One thread, fixed steps of `node_period_ms`, everything in a fixed order each step:

    scenario hooks -> physics (relays and balancers from the nodes, current from the
    inverter) -> node hardware readings -> every node's step(now_ms) -> gateway (frames in,
    tick, frames out) -> inverter (frames in, next current, keepalive out) -> log

so a run is deterministic for a seed. The nodes run the firmware package `bms` unchanged,
with its simulated hardware and its python-can backend (on the in-memory channel, CanLink
hands a node's frames over as the gateway's Frames instead of the backend's Messages); the
gateway runs GatewayCore, the same object `moat-bms run` runs. Time is simulated:
`run(duration)` goes as fast as the CPU allows unless a speed factor paces it against the
wall clock.
"""

from __future__ import annotations

import itertools
import logging
import math
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TextIO, cast

import can

from bms.can import FLAG_EXT_ID, FLAG_RTR, matches
from bms.can.pythoncan import PythonCanBus
from bms.config import default_config, load_config
from bms.hw import NOT_AVAILABLE
from bms.hw.sim import SimHardware
from bms.node import Node
from gateway.config.root import Settings, validate
from gateway.contracts.chemistry import spec_of
from gateway.contracts.frame import Frame
from gateway.core import GatewayCore
from gateway.outputs import Output
from gateway.record.persist import StateStore
from gateway.runtime.outputs import OutputFeed
from gateway.sim.chipboard import ChipBoard
from gateway.sim.inverter import SimInverter, SimInverterSettings
from gateway.sim.membus import Bridge, CopyCheapMessage, MemoryBus, received
from gateway.sim.packs import SIM_PACKS, SimPack
from gateway.sim.physics import Battery, CellParams, Pack, SensorParams
from gateway.sim.power import Constant, PowerCurve

log = logging.getLogger(__name__)

# Simulated time 0 is this wall-clock instant (a Monday, 2026-06-01 00:00 UTC) plus the
# setup's start hour: timestamps in logs look real and runs stay deterministic.
EPOCH = 1_780_272_000.0
# SimSetup.balance_current_a is the bleed current at this cell voltage (an LFP cell in the
# knee, where balancing runs): the resistor is this / current.
BLEED_REFERENCE_V = 3.3
_MV_PER_V = 1000.0
_DC_PER_DEGREE = 10.0
# The flags of a frame that is not a plain data frame (FLAG_UNORDERED only tells the
# controller that the frame may overtake others: it is a plain data frame on the bus).
_EXT_OR_RTR = FLAG_EXT_ID | FLAG_RTR
_instances = itertools.count()

# The in-process buses a simulation can run on (every bus of a run on one of them):
# python-can's virtual bus, the default, and the in-memory bus for long runs (no lock, no
# copy per frame; see gateway/sim/membus.py).
BUSES: dict[str, Callable[[str], can.BusABC]] = {
    "virtual": lambda channel: can.Bus(interface="virtual", channel=channel),
    "memory": MemoryBus,
}


@dataclass
class SimSetup:
    """Everything that defines a simulated system (a scenario adjusts it)."""

    strings: list[list[int]] = field(default_factory=lambda: [[0]])
    cells_per_node: int = 16
    temp_sensors: int = 4
    chemistry: str = "lfp"
    capacity_ah: float = 100.0  # per cell, i.e. per string
    soc: float = 0.5  # initial true SoC (0..1)
    soc_spread: float = 0.02
    capacity_spread: float = 0.02
    ambient_c: float = 25.0
    bleed_ohm: float = 10.0  # balancing resistor per cell
    # The real-world effects (gateway/sim/physics.py), off unless a scenario asks:
    # cell parameters (e.g. physics.LFP_REAL; sized to capacity_ah, chemistry kept),
    # the nodes' sensors, the spread of self-discharge and of resistance between cells,
    # the balancer's bleed current at 3.3 V (sets bleed_ohm; passive balancers bleed
    # 0.05-0.2 A) and the share of the bleed heat that warms the bleeding cell.
    cell: CellParams | None = None
    sensors: SensorParams = field(default_factory=SensorParams)
    self_discharge_spread: float = 0.30
    resistance_spread: float = 0.10
    balance_current_a: float | None = None
    bleed_heat_to_cell: float = 0.0
    start_hour: float = 8.0  # time of day at t = 0
    pv: PowerCurve = field(default_factory=lambda: Constant(0.0))
    load: PowerCurve = field(default_factory=lambda: Constant(0.0))
    inverter: SimInverterSettings = field(default_factory=SimInverterSettings)
    gateway: dict[str, Any] = field(default_factory=dict)  # gateway config overrides
    node_config: dict[str, Any] = field(default_factory=dict)  # firmware config overrides
    node_period_ms: int = 100
    initial_soc_known: bool = False  # start the gateway with the true SoC (a set-up battery)
    # The gateway's persisted state at start-up (as GatewayCore.persistent_state() gives it),
    # e.g. to start with a full charge that is due.
    gateway_state: dict[str, Any] | None = None
    # None: the nodes run on SimHardware. "bq76952" / "ltc6813": on BoardHardware with the
    # firmware's driver over a fake chip fed by the simulated pack (gateway.sim.chipboard).
    chip: str | None = None

    def bleed_current_a(self) -> float:
        """The balancer's bleed current at BLEED_REFERENCE_V (A)."""
        if self.balance_current_a is not None:
            return self.balance_current_a
        return round(BLEED_REFERENCE_V / self.bleed_ohm, 4)

    def gateway_settings(self) -> Settings:
        data: dict[str, Any] = {
            "battery": {
                "chemistry": self.chemistry,
                "topology": {
                    "strings": self.strings,
                    "cells_per_node": self.cells_per_node,
                    "capacity_ah": self.capacity_ah,
                },
            },
            "buses": {"battery": {"interface": "virtual", "channel": "battery"}},
            "web": {"enabled": False},
            # The installer states the balancer's current (the nodes cannot measure it):
            # the charge-based balancing counts what it bled with it.
            "strategy": {"balancing": {"bleed_current_a": self.bleed_current_a()}},
        }
        deep_merge(data, self.gateway)
        return validate(data, "simulation")


def deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> None:
    """Merge `extra` into `base` in place, nested dicts key by key."""
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            deep_merge(base[key], value)
        else:
            base[key] = value


@dataclass
class BusFaults:
    """Frame loss and corruption on the battery bus, as the gateway receives it."""

    loss: float = 0.0  # probability a frame is lost
    corruption: float = 0.0  # probability a frame arrives with a flipped bit / wrong length


@dataclass
class Truth:
    """What really happened, for scenario assertions."""

    max_cell_v: float = -math.inf
    min_cell_v: float = math.inf
    max_cell_at: float = 0.0
    charge_ah: float = 0.0  # true Ah into the battery
    discharge_ah: float = 0.0
    soc_error_max: float = 0.0  # |gateway SoC - true SoC| in %, after the first calibration
    soc_error_samples: int = 0


class CanLink:
    """A node's CAN backend with a cable that can be cut: while cut, sends vanish and
    nothing arrives (the node sees a silent bus, the gateway a silent node)."""

    def __init__(self, inner: PythonCanBus) -> None:
        self.inner = inner
        self.cut = False
        # On the in-memory bus frames go to and come from the bus as the gateway's Frames,
        # without the Messages PythonCanBus would make (and the bus only take apart again).
        bus = inner.bus
        self._memory: MemoryBus | None = bus if isinstance(bus, MemoryBus) else None

    def send(self, can_id: int, data: Any, flags: int) -> bool:
        if self.cut:
            return True
        memory = self._memory
        if memory is None:
            return bool(self.inner.send(can_id, data, flags))
        try:
            memory.send_one(
                Frame(can_id, bytes(data), bool(flags & FLAG_EXT_ID), bool(flags & FLAG_RTR))
                if flags & _EXT_OR_RTR
                else Frame(can_id, bytes(data))  # a plain data frame: every frame of a node
            )
        except can.CanOperationError:
            return False
        return True

    def recv(self, frame: Any) -> bool:
        memory = self._memory
        if self.cut or memory is None or self.inner.bus is not memory:
            return self._recv_through_backend(frame)
        # What PythonCanBus.recv gives: its filters are the bus's `accept` (set_filters),
        # so every frame queued passes them.
        got = memory.next_frame()
        if got is None:
            return False
        flags = (FLAG_EXT_ID if got.extended else 0) | (FLAG_RTR if got.remote else 0)
        frame.set(got.id, got.data, min(len(got.data), 8), flags)
        return True

    def _recv_through_backend(self, frame: Any) -> bool:
        if self.cut:
            while self.inner.recv(frame):  # frames sent to a cut cable are lost
                pass
            return False
        return bool(self.inner.recv(frame))

    def set_filters(self, filters: Any) -> None:
        self.inner.set_filters(filters)
        bus = self.inner.bus
        if isinstance(bus, MemoryBus):
            # The backend drops what its filters reject; on the in-memory bus such frames
            # are not even queued for the node (the same frames reach it, at less cost).
            # Frames queued before (a reboot's) would be dropped when read: drop them now,
            # so that reading needs no filter test.
            accept = None if filters is None else _acceptance(list(filters))
            bus.accept = accept
            if accept is not None:
                bus.keep_only(accept)

    def state(self) -> int:
        return int(self.inner.state())

    def restart(self) -> None:
        self.inner.restart()


class SimNode:
    """One firmware node on its simulated hardware and its own python-can bus."""

    def __init__(
        self,
        node_id: int,
        settings: dict[str, Any],
        cells: int,
        temps: int,
        bus: can.BusABC,
        chip: str | None = None,
    ) -> None:
        self.node_id = node_id
        self.settings = settings
        self.board = ChipBoard(chip, cells, temps) if chip else None
        self.hw: Any = self.board.hw if self.board else SimHardware(cells=cells, temps=temps)
        self.bus = bus
        self.link = CanLink(PythonCanBus(self.bus))
        self.node = self._boot()
        self.reboots = 0
        self.stopped = False  # True: the microcontroller is off (no steps at all)

    def _boot(self) -> Node:
        return Node(load_config(self.settings), self.hw, self.link)

    def reboot(self) -> None:
        """A reset of the microcontroller: a new Node on the same hardware."""
        self.node = self._boot()
        self.reboots += 1

    def step(self, now_ms: int) -> None:
        if not self.stopped:
            self.node.step(now_ms)

    def shutdown(self) -> None:
        self.bus.shutdown()

    def relay_closed(self) -> bool:
        """The node's power path as the physics sees it."""
        return self.board.relay_closed() if self.board else bool(self.hw.relay_closed)

    def balance_mask(self) -> int:
        return self.board.balance_mask() if self.board else balance_mask(self.hw)

    def feed(self, pack: Pack) -> None:
        """The pack's state into the node's sensors (a fake chip's registers, or SimHardware)."""
        if self.board:
            self.board.feed(pack)
        else:
            read_pack(pack, self.hw)


class SimSystem:
    """The simulated system; see the module docstring."""

    def __init__(
        self,
        setup: SimSetup,
        seed: int = 0,
        *,
        log: TextIO | None = None,
        state_dir: Path | None = None,
        bus: str = "virtual",
    ) -> None:
        if bus not in BUSES:
            raise ValueError(f"bus {bus!r} is not one of {', '.join(BUSES)}")
        self.open_bus: Callable[[str], can.BusABC] = BUSES[bus]
        self.setup = setup
        self.seed = seed
        self.rng = random.Random(seed)
        self.t = 0.0
        self.step_s = setup.node_period_ms / 1000
        self.steps = 0
        tag = f"moat-sim-{next(_instances)}"
        self.battery_channel = f"{tag}-battery"
        self.inverter_channel = f"{tag}-inverter"
        if setup.cell is None:
            params = CellParams(capacity_ah=setup.capacity_ah, chemistry=setup.chemistry)
        else:
            params = replace(setup.cell, chemistry=setup.chemistry).scaled(setup.capacity_ah)
        self.battery = Battery.build(
            self.rng,
            setup.strings,
            setup.cells_per_node,
            params,
            setup.soc,
            capacity_spread=setup.capacity_spread,
            soc_spread=setup.soc_spread,
            sensors=setup.temp_sensors,
            ambient_c=setup.ambient_c,
            self_discharge_spread=setup.self_discharge_spread,
            resistance_spread=setup.resistance_spread,
        )
        bleed_ohm = (
            setup.bleed_ohm
            if setup.balance_current_a is None
            else BLEED_REFERENCE_V / setup.balance_current_a
        )
        for node_id, pack in self.battery.packs.items():
            pack.bleed_ohm = bleed_ohm
            pack.bleed_heat_to_cell = setup.bleed_heat_to_cell
            # Their own generator: sensor noise leaves the system's draws as they were.
            pack.set_sensors(setup.sensors, random.Random(seed * 1_000_003 + 7919 * (node_id + 1)))
        self.battery.set_ambient(setup.ambient_c)
        for node in self.battery.packs:
            self.battery.set_relay(node, False)  # relays start open, as on real hardware
        self.settings = setup.gateway_settings()
        # The nodes hold the installation's command key when the gateway has one, as a
        # real installation provisions both (a simulated --config file's key included).
        key = {"command_key": self.settings.battery.command_key}
        self.nodes: dict[int, SimNode] = {}
        # Commercial packs (battery.packs): a battery with its own BMS on its physics pack.
        self.packs: dict[int, SimPack] = {}
        chemistry = spec_of(self.settings.battery.chemistry)
        for pack_id, pack_cfg in self.settings.battery.packs.items():
            make = SIM_PACKS.get(pack_cfg.source)
            if make is None:
                raise ValueError(
                    f"battery.packs.{pack_id}: the simulator has no {pack_cfg.source} pack "
                    f"(it has {', '.join(sorted(SIM_PACKS))})"
                )
            self.packs[pack_id] = make(
                pack_id, pack_cfg, self.battery.packs[pack_id], chemistry, self.open_bus, tag
            )
        self._next_poll = dict.fromkeys(self.packs, 0.0)
        # The nodes sit on an in-memory channel. On the in-memory bus it is the battery
        # bus itself; on the virtual bus it is joined to the battery bus by a bridge, so
        # that a node's frame crosses the virtual bus once (to the gateway) and not once
        # for each other node too, whose filters would drop it (gateway/sim/membus.py).
        self.bridge: Bridge | None = None
        node_channel = self.battery_channel
        if bus != "memory":
            node_channel = f"{tag}-nodes"
            self.bridge = Bridge(node_channel, self.open_bus(self.battery_channel))
        for string in setup.strings:
            for node_id in string:
                if node_id in self.packs:
                    continue
                cfg = default_config(setup.chemistry.upper())
                cfg.update(
                    node_id=node_id,
                    cells=setup.cells_per_node,
                    temp_sensors=setup.temp_sensors,
                    capacity_ah=setup.capacity_ah,
                )
                if key["command_key"]:
                    cfg.update(key)
                cfg.update(setup.node_config)
                self.nodes[node_id] = SimNode(
                    node_id,
                    cfg,
                    setup.cells_per_node,
                    setup.temp_sensors,
                    MemoryBus(node_channel),
                    setup.chip,
                )
        self.store = StateStore(state_dir / "state.json") if state_dir else None
        self._memory_state: dict[str, Any] | None = setup.gateway_state
        if self.store is not None and setup.gateway_state is not None:
            self.store.save(setup.gateway_state)
        self.gateway_bus = self.open_bus(self.battery_channel)
        self.gateway_inverter_bus = self.open_bus(self.inverter_channel)
        self.core: GatewayCore | None = None
        self.gateway_alive = True
        self.gateway_silent = False  # alive but sends nothing (a hung transmit path)
        self._start_gateway()
        if setup.initial_soc_known and self.core is not None:
            self.core.set_soc(100 * self.battery.true_soc(), self.now())
        inverter = setup.inverter
        if inverter.family is None:
            family = self.settings.inverter.profile
            inverter = inverter.model_copy(update={"family": family})
        self.inverter = SimInverter(inverter)
        self.inverter_bus = self.open_bus(self.inverter_channel)
        self.inverter_current = 0.0
        self.bus_faults = BusFaults()
        self.truth = Truth()
        self.cell_range = (math.nan, math.nan)  # lowest and highest cell this step, V
        self._true_soc: float | None = math.nan  # see true_soc; None: not worked out yet
        self._next_tick = 0.0
        self._next_save = self.settings.persistence.interval_s
        self._hooks: list[tuple[float, Callable[[SimSystem], None]]] = []
        self.log = log
        self._log_writer = can.CanutilsLogWriter(log) if log is not None else None
        self._monitors = (
            (
                (self.open_bus(self.battery_channel), "battery"),
                (self.open_bus(self.inverter_channel), "inverter"),
            )
            if log is not None
            else ()
        )
        self.observers: list[Callable[[SimSystem], None]] = []
        # Outputs beside the inverter's CAN frames (D-Bus, MQTT), told after every tick; the
        # caller runs their I/O tasks (gateway/cli/sim.py).
        self.outputs: list[Output] = []
        self._feed = OutputFeed(self.outputs)

    # ------------------------------------------------------------------ clock

    @staticmethod
    def epoch(setup: SimSetup) -> float:
        """The gateway's clock at simulated time 0."""
        return EPOCH + setup.start_hour * 3600

    def now(self) -> float:
        """The gateway's clock: epoch seconds of the simulated instant."""
        return self.epoch(self.setup) + self.t

    # ------------------------------------------------------------------ the gateway

    def _start_gateway(self) -> None:
        state = self.store.load() if self.store else self._memory_state
        self.core = GatewayCore(self.settings, self.now(), state)
        self.gateway_alive = True
        self._next_tick = self.t

    def kill_gateway(self) -> None:
        """SIGKILL: the gateway stops at once; what it saved last is what a restart finds."""
        self.gateway_alive = False
        self.core = None
        while self.gateway_bus.recv(0) is not None:
            pass
        while self.gateway_inverter_bus.recv(0) is not None:
            pass

    def restart_gateway(self) -> None:
        self._start_gateway()

    def save_state(self) -> None:
        if self.core is None:
            return
        state = self.core.persistent_state()
        if self.store is not None:
            self.store.save(state)
        else:
            self._memory_state = state

    # ------------------------------------------------------------------ scenario hooks

    def at(self, t: float, action: Callable[[SimSystem], None]) -> None:
        """Run `action(system)` once when simulated time reaches t (seconds)."""
        self._hooks.append((t, action))
        self._hooks.sort(key=lambda h: h[0])

    # ------------------------------------------------------------------ one step

    def step(self) -> None:
        dt = self.step_s
        self.t = round((self.steps + 1) * dt, 9)
        self.steps += 1
        now_ms = round(self.t * 1000)
        while self._hooks and self._hooks[0][0] <= self.t:
            _, action = self._hooks.pop(0)
            action(self)

        # physics, with the nodes' outputs of the last step
        for node_id, sim in self.nodes.items():
            self.battery.set_relay(node_id, sim.relay_closed())
            self.battery.packs[node_id].balance_mask = sim.balance_mask()
        for pack_id, pack in self.packs.items():
            self.battery.set_relay(pack_id, pack.relay_closed)
        flowed = self.battery.step(dt, self.inverter_current)
        if flowed > 0:
            self.truth.charge_ah += flowed * dt / 3600
        else:
            self.truth.discharge_ah -= flowed * dt / 3600

        # readings into the node hardware, then the nodes (with what the gateway sent)
        if self.bridge is not None:
            self.bridge.pump()
        for node_id, sim in self.nodes.items():
            sim.feed(self.battery.packs[node_id])
            sim.step(now_ms)
        for pack in self.packs.values():
            pack.step(self.t)
        self._track_truth()

        # the gateway
        if self.gateway_alive and self.core is not None:
            self._gateway_step()
        # the inverter
        self.inverter.on_frames(received(self.inverter_bus), self.t)
        pv, load = self.setup.pv(self.t), self.setup.load(self.t)
        self.inverter_current = self.inverter.step(
            self.t, self.battery.bus_voltage, pv, load, self.battery.bus_ohm()
        )
        due = self.inverter.due_frames(self.t)
        if due:
            # An identifier above 0x7FF can only be a 29-bit one (Pylontech HV's 0x4200).
            _send(self.inverter_bus, [Frame(i, data, i > 0x7FF) for i, data in due])
        self._write_log()
        for observer in self.observers:
            observer(self)

    @property
    def true_soc(self) -> float:
        """The true SoC (%) as this step's physics left it (nan before the first step).

        Worked out when first asked in a step: it sums the charge of every cell, as much
        work as a node's cycle, and most steps nobody asks (the recorder once a second, the
        truth only while the gateway's SoC is trusted). Nothing moves the cells between the
        physics and the next step's hooks, so a later answer is the one an eager one was."""
        if self._true_soc is None:
            self._true_soc = 100 * self.battery.true_soc()
        return self._true_soc

    def _track_truth(self) -> None:
        truth = self.truth
        volts = [pack.cell_voltages() for pack in self.battery.packs.values()]
        low = min(map(min, volts))  # looped in C: every step asks
        high = max(map(max, volts))
        # This step's truth, for the observers too (the physics moved at the step's start).
        self.cell_range = (low, high)
        self._true_soc = None
        if high > truth.max_cell_v:
            truth.max_cell_v, truth.max_cell_at = high, self.t
        truth.min_cell_v = min(truth.min_cell_v, low)
        core = self.core
        if core is not None and core.soc_state.trusted:
            error = abs(core.soc_state.soc - self.true_soc)
            truth.soc_error_max = max(truth.soc_error_max, error)
            truth.soc_error_samples += 1

    def _gateway_step(self) -> None:
        core = self.core
        assert core is not None
        now = self.now()
        urgent = False
        frames = received(self.gateway_bus)
        faults = self.bus_faults
        if faults.loss or faults.corruption:
            frames = self._through_faults(frames)
        for frame in frames:
            urgent |= core.on_battery_frame(frame, now)
        for frame in received(self.gateway_inverter_bus):
            urgent |= core.on_inverter_frame(frame, now)
        # The packs' polls, as the runtime's pack tasks make them (gateway/runtime/packs.py).
        for pack_id, pack in self.packs.items():
            if self.t + 1e-9 >= self._next_poll[pack_id]:
                self._next_poll[pack_id] = self.t + self.settings.battery.packs[pack_id].poll_s
                urgent |= core.on_pack_reading(pack_id, pack.poll(now), now)
        if urgent or self.t + 1e-9 >= self._next_tick:
            out = core.tick(now)
            self._feed.publish(core)
            if self.t + 1e-9 >= self._next_tick:
                self._next_tick = self.t + self.settings.timing.tick_s
            if not self.gateway_silent:
                _send(self.gateway_bus, out.battery)
                _send(self.gateway_inverter_bus, out.inverter)
                for switch in out.packs:
                    if not self.packs[switch.pack].switch(switch.charge, switch.discharge):
                        log.debug("pack %d takes no switch commands", switch.pack)
                # Counted as the service's GatewayCanPort counts them (the API shows them).
                core.battery_counters.sent += len(out.battery)
                core.inverter_counters.sent += len(out.inverter)
        if self.t >= self._next_save:
            self._next_save = self.t + self.settings.persistence.interval_s
            self.save_state()

    def _through_faults(self, frames: list[Frame]) -> list[Frame]:
        """The battery bus's frames as the gateway gets them through `bus_faults`: some
        lost, some damaged. The draws come frame by frame in the order they did when one
        loop fed the gateway too (the gateway draws nothing from self.rng); without faults
        the frames go to the gateway without a test each."""
        faults = self.bus_faults
        arrived = []
        for sent in frames:
            if faults.loss and self.rng.random() < faults.loss:
                continue
            frame = sent
            if faults.corruption and self.rng.random() < faults.corruption:
                frame = sent._replace(data=_corrupt(self.rng, sent.data))
            arrived.append(frame)
        return arrived

    def _write_log(self) -> None:
        writer = self._log_writer
        if writer is None:
            return
        stamp = self.now()
        for bus, name in self._monitors:
            for msg in _drain(bus):
                msg.timestamp = stamp
                msg.channel = name
                msg.is_rx = True
                writer.on_message_received(msg)

    # ------------------------------------------------------------------ running

    def run(
        self,
        duration: float,
        speed: float | None = None,
        until: Callable[[SimSystem], bool] | None = None,
    ) -> None:
        """Advance `duration` simulated seconds; speed None = as fast as possible, else
        `speed` simulated seconds per wall second."""
        end = self.t + duration
        wall0, sim0 = time.monotonic(), self.t
        while self.t < end - 1e-9:
            self.step()
            if until is not None and until(self):
                return
            if speed is not None:
                ahead = (self.t - sim0) / speed - (time.monotonic() - wall0)
                if ahead > 0:
                    time.sleep(ahead)

    def steps_iter(self, duration: float) -> Iterator[float]:
        """Step through `duration` simulated seconds, yielding the time after each step
        (for an async driver that paces and yields to other tasks)."""
        end = self.t + duration
        while self.t < end - 1e-9:
            self.step()
            yield self.t

    def close(self) -> None:
        for sim in self.nodes.values():
            sim.shutdown()
        for pack in self.packs.values():
            pack.close()
        for bus in (self.gateway_bus, self.gateway_inverter_bus, self.inverter_bus):
            bus.shutdown()
        if self.bridge is not None:
            self.bridge.shutdown()
        for bus, _ in self._monitors:
            bus.shutdown()
        if self._log_writer is not None:
            self._log_writer.file.flush()

    def __enter__(self) -> SimSystem:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def balance_mask(hw: SimHardware) -> int:
    """The node's balancer outputs (four 16-cell words) as one bit mask, cell k = bit k."""
    words = hw.balance_words
    return int(words[0] | words[1] << 16 | words[2] << 32 | words[3] << 48)


def read_pack(pack: Pack, hw: SimHardware) -> None:
    """What the node's sensors read from its pack, into its simulated hardware."""
    # round(volts * 1000) per cell, looped in C (a step reads every cell of every node)
    readings = list(map(round, map(_MV_PER_V.__mul__, pack.measured_cell_voltages())))
    hw.cell_mv[: len(readings)] = readings
    hw.pack_mv = sum(readings)
    temps = pack.temperatures()
    if None in temps:  # an open thermistor (a fault a scenario injects)
        for i, temp in enumerate(temps):
            hw.temp_dc[i] = NOT_AVAILABLE if temp is None else round(temp * 10)
    else:  # round(temp * 10) per sensor, looped in C
        read = cast(list[float], temps)  # every sensor read: no None
        hw.temp_dc[: len(read)] = map(round, map(_DC_PER_DEGREE.__mul__, read))
    hw.current_ma = round(pack.measured_current_a * 1000)
    hw.balancer_temp_dc = round(pack.balancer_temp_c * 10)


def _acceptance(filters: list[tuple[int, int, int]]) -> Callable[[int, bool], bool]:
    """The firmware backend's filter test (bms.can.matches) on a frame's id and format."""

    known: dict[tuple[int, bool], bool] = {}  # a bus carries few identifiers

    def accept(can_id: int, extended: bool) -> bool:
        key = (can_id, extended)
        verdict = known.get(key)
        if verdict is None:
            verdict = known[key] = bool(matches(filters, can_id, FLAG_EXT_ID if extended else 0))
        return verdict

    return accept


def _send(bus: can.BusABC, frames: list[Frame]) -> None:
    """The gateway's frames onto a bus (29-bit ones for the high-voltage families)."""
    if isinstance(bus, MemoryBus):
        bus.send_frames(frames)  # the Frames themselves: immutable, no Message needed
        return
    for frame in frames:
        bus.send(
            CopyCheapMessage(
                arbitration_id=frame.id, data=frame.data, is_extended_id=frame.extended
            )
        )


def _drain(bus: can.BusABC) -> Iterator[can.Message]:
    while True:
        msg = bus.recv(0)
        if msg is None:
            return
        yield msg


def _corrupt(rng: random.Random, data: bytes) -> bytes:
    """A frame damaged in a way the CAN CRC did not catch: a flipped bit, or cut short."""
    if not data or rng.random() < 0.3:
        return data[: rng.randrange(0, max(len(data), 1))]
    buf = bytearray(data)
    buf[rng.randrange(len(buf))] ^= 1 << rng.randrange(8)
    return bytes(buf)

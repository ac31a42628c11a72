"""Faults on the whole simulated system (gateway.sim.SimSystem: the real firmware nodes, the
real GatewayCore, battery physics, an inverter), driven by simulated time.

- a node reboots in the middle of a charge;
- every frame on the battery bus may arrive twice or late (after newer ones), in both
  directions.
"""

from __future__ import annotations

import random
from collections import deque
from typing import Any

import can

from gateway.contracts.decision import Alarm
from gateway.sim.power import Constant
from gateway.sim.scenarios import base_setup
from gateway.sim.system import SimSystem

LINK_OK = 1  # NodeState.GatewayLink Ok


class Watch:
    """Per-step record of what matters here."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self.alarms: set[str] = set()  # raised after the first two minutes

    def __call__(self, sim: SimSystem) -> None:
        limits = sim.inverter.limits
        core = sim.core
        if core is not None and core.decision is not None and sim.t >= 120.0:
            self.alarms.update(a.value for a in core.decision.alarms)  # after start-up
        cells = [v for p in sim.battery.packs.values() for v in p.cell_voltages()]
        self.rows.append(
            {
                "t": sim.t,
                "ccl": limits.charge_current_limit if limits else None,
                "dcl": limits.discharge_current_limit if limits else None,
                "cvl": limits.charge_voltage_limit if limits else None,
                "current": sim.inverter_current,
                "relays": tuple(sim.nodes[n].hw.relay_closed for n in sorted(sim.nodes)),
                "drives": tuple(sim.nodes[n].hw.relay_drive for n in sorted(sim.nodes)),
                "links": tuple(sim.nodes[n].node.gateway_link for n in sorted(sim.nodes)),
                "soc": core.soc_state.soc if core else None,
                "soc_true": 100 * sim.battery.true_soc(),
                "max_cell": max(cells),
            }
        )

    def between(self, start: float, end: float = float("inf")) -> list[dict[str, Any]]:
        return [r for r in self.rows if start <= r["t"] < end]


# ------------------------------------------------------------------ node reboot

REBOOT_AT, SUN_SETS = 300.0, 700.0


def test_a_node_rebooting_mid_charge_opens_its_relay_and_rejoins() -> None:
    """Two parallel strings charging at 0.5 C; node 1 reboots. Its relay opens in its first
    cycle, the inverter is limited to the one string left, and the string stays out while
    the other one charges on (their voltages drift apart: closing would let an equalising
    current flow). When the charge stops the voltages meet and it rejoins."""
    setup = base_setup(
        strings=[[0], [1]], soc=0.5, pv=Constant(3000.0), load=Constant(0.0), initial_soc_known=True
    )

    def sunset(s: SimSystem) -> None:
        s.setup.pv = Constant(0.0)

    with SimSystem(setup, seed=1) as sim:
        watch = Watch()
        sim.observers.append(watch)
        sim.at(REBOOT_AT, lambda s: s.nodes[1].reboot())
        sim.at(SUN_SETS, sunset)
        sim.run(1100.0)
        max_ccl = sim.settings.strategy.max_charge_current_a
        target = sim.core.chemistry.charge_target_v if sim.core else 3.45
        assert sim.nodes[1].reboots == 1

    before = watch.between(REBOOT_AT - 60, REBOOT_AT)
    assert all(r["relays"] == (True, True) for r in before)
    assert all(r["current"] > 5.0 for r in before), "not charging before the reboot"
    # The rebooted node opens its relay in its very first cycle; the other string goes on.
    (first,) = watch.between(REBOOT_AT, REBOOT_AT + 1.0)
    assert first["drives"] == (True, False)
    # While it is out, the inverter is limited to the one string left, which keeps charging.
    out = watch.between(REBOOT_AT + 2.0, SUN_SETS)
    assert all(not r["relays"][1] and r["relays"][0] for r in out)
    assert all(0 < r["ccl"] <= max_ccl / 2 + 0.1 for r in out)
    assert all(r["current"] > 5.0 for r in out)
    # Charge over: the voltages meet, it rejoins and the full limits come back.
    back = next(r for r in watch.between(SUN_SETS) if r["relays"][1])
    assert back["t"] - SUN_SETS < 180.0
    late = watch.between(back["t"] + 120.0)
    assert late and all(r["relays"] == (True, True) for r in late)
    assert all(r["ccl"] > max_ccl / 2 + 0.1 for r in late)
    assert max(r["max_cell"] for r in watch.rows) < target + 0.02
    assert all(abs(r["soc"] - r["soc_true"]) < 2.0 for r in before)


def test_soc_after_a_string_rejoins_matches_the_whole_battery() -> None:
    """Each string counts its own charge: the one that was out rejoins with its own SoC."""
    setup = base_setup(
        strings=[[0], [1]], soc=0.5, pv=Constant(3000.0), load=Constant(0.0), initial_soc_known=True
    )

    def sunset(s: SimSystem) -> None:
        s.setup.pv = Constant(0.0)

    with SimSystem(setup, seed=1) as sim:
        sim.at(REBOOT_AT, lambda s: s.nodes[1].reboot())
        sim.at(SUN_SETS, sunset)
        sim.run(1000.0)
        assert sim.core is not None
        assert all(sn.hw.relay_closed for sn in sim.nodes.values())
        assert abs(sim.core.soc_state.soc - 100 * sim.battery.true_soc()) < 2.0


# ------------------------------------------------------------------ duplicates, reordering


class Mangler:
    """A python-can bus seen through a bad link: each received frame may arrive twice, or
    late (held back and delivered after newer frames)."""

    def __init__(self, inner: Any, rng: random.Random, dup: float, late: float) -> None:
        self.inner = inner
        self.rng = rng
        self.dup = dup
        self.late = late
        self.pending: deque[can.Message] = deque()
        self.held: list[can.Message] = []
        self.duplicated = 0
        self.delayed = 0

    def send(self, msg: can.Message, timeout: float | None = None) -> None:
        self.inner.send(msg, timeout)

    def recv(self, timeout: float | None = None) -> can.Message | None:
        if not self.pending:
            batch = []
            while (msg := self.inner.recv(0)) is not None:
                batch.append(msg)
            if batch:
                # Frames held back last time arrive after the first new one.
                batch[1:1] = self.held
                self.held = []
            for msg in batch:
                if self.rng.random() < self.late:
                    self.held.append(msg)
                    self.delayed += 1
                    continue
                self.pending.append(msg)
                if self.rng.random() < self.dup:
                    self.pending.append(msg)
                    self.duplicated += 1
        return self.pending.popleft() if self.pending else None

    @property
    def state(self) -> Any:
        return self.inner.state

    def flush_tx_buffer(self) -> None:
        self.inner.flush_tx_buffer()

    def shutdown(self) -> None:
        self.inner.shutdown()


def test_duplicated_and_late_frames_are_rejected_and_change_nothing() -> None:
    setup = base_setup(
        strings=[[0], [1]],
        soc=0.6,
        pv=Constant(2500.0),
        load=Constant(1500.0),
        initial_soc_known=True,
    )
    rng = random.Random(5)
    with SimSystem(setup, seed=2) as sim:
        to_gateway = Mangler(sim.gateway_bus, rng, dup=0.2, late=0.1)
        sim.gateway_bus = to_gateway
        to_nodes = []
        for sim_node in sim.nodes.values():
            backend = sim_node.link.inner
            backend.bus = Mangler(backend.bus, rng, dup=0.2, late=0.1)
            to_nodes.append(backend.bus)
        watch = Watch()
        sim.observers.append(watch)
        rejected = dict.fromkeys(sim.nodes, 0)

        def count_rejections(s: SimSystem) -> None:
            for n, sn in s.nodes.items():
                rejected[n] += (sn.node.rejected_commands - count_rejections.last[n]) % 256
                count_rejections.last[n] = sn.node.rejected_commands

        count_rejections.last = dict.fromkeys(sim.nodes, 0)  # type: ignore[attr-defined]
        sim.observers.append(count_rejections)
        sim.run(900.0)
        core = sim.core
        assert core is not None
        ignored = sum(rec.state_frames_ignored for rec in core.model.nodes.values())
        malformed = core.battery_counters.malformed

    assert to_gateway.duplicated > 100 and to_gateway.delayed > 50
    assert sum(m.duplicated for m in to_nodes) > 100
    # The duplicates and late commands were seen for what they are ...
    assert all(count > 50 for count in rejected.values()), rejected
    assert ignored > 50
    assert malformed == 0
    # ... and changed nothing: links up, relays closed, limits open, SoC on track.
    settled = watch.between(120.0)
    assert all(r["links"] == (LINK_OK, LINK_OK) for r in settled)
    assert all(r["relays"] == (True, True) for r in settled)
    assert all(r["ccl"] > 0 and r["dcl"] > 0 for r in settled)
    assert all(abs(r["soc"] - r["soc_true"]) < 2.0 for r in settled)
    assert Alarm.NODE_MISSING.value not in watch.alarms
    assert Alarm.BATTERY_DATA_STALE.value not in watch.alarms

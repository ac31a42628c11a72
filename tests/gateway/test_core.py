"""GatewayCore: node frames in, node commands and inverter frames out, over simulated time."""

from __future__ import annotations

import struct

import cantools
import pytest

from gateway.config.root import validate
from gateway.contracts.decision import Alarm, Phase, Severity
from gateway.contracts.frame import Frame
from gateway.contracts.snapshot import NodeState, ProtectionKind
from gateway.core import GatewayCore
from gateway.sim import nodeframes as nf
from gateway.web.views import status
from tests.common import DBC_DIR

PYLON = cantools.database.load_file(str(DBC_DIR / "pylontech_lv.dbc"))
MOAT = cantools.database.load_file(str(DBC_DIR / "moat_bms.dbc"))
CELLS = 16


def settings(**extra):
    data = {
        "battery": {"topology": {"strings": [[0]], "cells_per_node": CELLS, "capacity_ah": 100}},
        "inverter": {"profile": "pylontech", "startup_grace": 5, "keepalive_timeout": 3},
    }
    data.update(extra)
    return validate(data)


class Rig:
    def __init__(self, state=None, **extra) -> None:
        self.t = 1000.0
        self.core = GatewayCore(settings(**extra), self.t, state)
        self.counter = 0
        self.sent_battery: list[Frame] = []
        self.sent_inverter: list[Frame] = []

    def frames(
        self,
        *,
        state=NodeState.ACTIVE,
        relay=1,
        vmax=3.35,
        vmin=3.30,
        amps=0.0,
        faults=frozenset(),
        warnings=frozenset(),
    ) -> bool:
        self.counter += 1
        urgent = False
        for frame in (
            nf.node_state(
                0, self.counter, state=int(state), relay=relay, faults=faults, warnings=warnings
            ),
            nf.pack_status(0, CELLS * (vmin + vmax) / 2, amps),
            nf.cell_extremes(0, vmin, vmax),
            nf.temperature_extremes(0, 20.0, 22.0),
        ):
            urgent |= self.core.on_battery_frame(frame, self.t)
        return urgent

    def tick(self, dt: float = 0.1):
        self.t += dt
        out = self.core.tick(self.t)
        self.sent_battery += out.battery
        self.sent_inverter += out.inverter
        return out

    def run(self, seconds: float, dt: float = 0.1, **frame_kw) -> None:
        steps = round(seconds / dt)
        for _ in range(steps):
            self.frames(**frame_kw)
            self.tick(dt)

    def last_limits(self) -> dict:
        data = next(f.data for f in reversed(self.sent_inverter) if f.id == 0x351)
        return PYLON.get_message_by_frame_id(0x351).decode(data)

    def last_relay_request(self) -> str:
        data = next(f.data for f in reversed(self.sent_battery) if f.id == 0x110)
        return str(MOAT.get_message_by_frame_id(0x110).decode(data)["Request"])


def test_without_node_data_nothing_flows_but_cvl_is_never_zero() -> None:
    rig = Rig()
    rig.tick()
    limits = rig.last_limits()
    assert limits["ChargeCurrentLimit"] == 0 and limits["DischargeCurrentLimit"] == 0
    assert limits["ChargeVoltageLimit"] > 0
    assert rig.core.decision.phase == Phase.STOPPED
    assert Alarm.BATTERY_DATA_STALE in rig.core.decision.alarms


def test_standby_node_is_asked_to_close_then_limits_open_up() -> None:
    rig = Rig()
    rig.run(2.0, state=NodeState.STANDBY, relay=0)
    assert rig.last_relay_request() == "Close"
    rig.run(120.0)  # relay closed, node active; limits ramp up after their hold
    limits = rig.last_limits()
    assert limits["ChargeCurrentLimit"] > 0 and limits["DischargeCurrentLimit"] > 0
    assert rig.core.decision.phase == Phase.BULK
    assert rig.core.sent is not None  # what the profile shaped is what went out
    assert round(rig.core.sent.ccl, 1) == limits["ChargeCurrentLimit"]


def test_stale_data_stops_both_directions_within_one_tick() -> None:
    rig = Rig()
    rig.run(120.0)
    assert rig.last_limits()["ChargeCurrentLimit"] > 0
    timeout = rig.core.settings.timing.node_timeout_s
    rig.sent_inverter.clear()
    rig.tick(timeout + 0.2)  # no frames since: the node is missing
    limits = rig.last_limits()
    assert limits["ChargeCurrentLimit"] == 0 and limits["DischargeCurrentLimit"] == 0
    assert limits["ChargeVoltageLimit"] > 0


def test_a_cell_over_its_maximum_is_urgent_and_stops_charging_at_once() -> None:
    rig = Rig()
    rig.run(120.0)
    rig.sent_inverter.clear()
    assert rig.frames(vmax=3.70)  # urgent: the caller ticks at once
    rig.tick(0.001)
    limits = rig.last_limits()
    assert limits["ChargeCurrentLimit"] == 0
    assert limits["DischargeCurrentLimit"] > 0


def test_node_fault_stops_and_is_an_event() -> None:
    rig = Rig()
    rig.run(60.0)
    rig.run(
        1.0, state=NodeState.TRIPPED, relay=0, faults=frozenset({ProtectionKind.CELL_OVER_VOLTAGE})
    )
    limits = rig.last_limits()
    assert limits["ChargeCurrentLimit"] == 0 and limits["DischargeCurrentLimit"] == 0
    kinds = [e.kind.value for e in rig.core.events.events]
    assert "node_tripped" in kinds


def test_inverter_missing_after_grace_and_back_with_keepalive() -> None:
    rig = Rig()
    rig.run(10.0)
    assert Alarm.INVERTER_MISSING in rig.core.decision.alarms
    rig.core.on_inverter_frame(Frame(0x305, bytes(8)), rig.t)
    rig.tick()
    assert Alarm.INVERTER_MISSING not in rig.core.decision.alarms
    kinds = [e.kind.value for e in rig.core.events.events]
    assert kinds.count("inverter_missing") == 1 and "inverter_back" in kinds


def test_keepalive_on_a_shared_bus_reaches_the_watch() -> None:
    rig = Rig()
    assert not rig.core.on_battery_frame(Frame(0x305, bytes(8)), rig.t)
    assert rig.core.inverter_counters.received == 1
    assert rig.core.battery_counters.unknown == 0


@pytest.mark.parametrize("shared_bus", [False, True])
def test_item6_keepalive_with_a_29_bit_id_is_accepted(shared_bus: bool) -> None:
    # Issue 15 item 6: the Schneider XW Pro sends 0x305 as a 29-bit identifier.
    rig = Rig()
    rig.run(10.0)
    assert Alarm.INVERTER_MISSING in rig.core.decision.alarms
    frame = Frame(0x305, bytes(8), extended=True)
    if shared_bus:
        assert not rig.core.on_battery_frame(frame, rig.t)
    else:
        rig.core.on_inverter_frame(frame, rig.t)
    rig.tick()
    assert Alarm.INVERTER_MISSING not in rig.core.decision.alarms


def test_item3_sma_0x305_and_0x306_readings_reach_the_report() -> None:
    # SMA FSS-ConnectingBat-TI-en-10: the Sunny Island sends its own battery readings in
    # 0x305 (V 0.1 V, I 0.1 A, T 0.1 degC, SoC 0.1 %) and its state in 0x306 (SoH 1 %,
    # charging procedure, operating state, active error, charge voltage setpoint 0.1 V).
    # Bytes written by hand, little-endian, not with our codec.
    inverter = {"profile": "sma-sunny-island", "startup_grace": 5, "keepalive_timeout": 3}
    rig = Rig(inverter=inverter)
    rig.core.on_inverter_frame(Frame(0x305, struct.pack("<HhhH", 532, -123, 251, 734)), rig.t)
    rig.core.on_inverter_frame(Frame(0x306, struct.pack("<HBBHH", 98, 2, 3, 952, 552)), rig.t)
    assert rig.core.inverter_readings == pytest.approx(
        {
            "voltage": 53.2,
            "current": -12.3,
            "temperature": 25.1,
            "soc": 73.4,
            "soh": 98,
            "charging_procedure": 2,
            "operating_state": 3,
            "error": 952,
            "cvl_setpoint": 55.2,
            "time": rig.t,
        }
    )
    assert rig.core.inverter_counters.unknown == 0  # 0x306 is not "another BMS"
    rig.tick()
    assert status(rig.core, rig.t)["inverter"]["readings"]["error"] == 952
    # Other profiles ignore the content (0x305 is eight zero bytes for most inverters).
    plain = Rig()
    plain.core.on_inverter_frame(Frame(0x305, struct.pack("<HhhH", 532, 0, 0, 0)), plain.t)
    assert plain.core.inverter_readings == {}


def test_state_survives_a_restart() -> None:
    rig = Rig()
    rig.core.set_soc(63.0, rig.t)
    rig.run(10.0)
    saved = rig.core.persistent_state()
    again = Rig(state=saved)
    assert again.core.soc.state.soc == pytest.approx(rig.core.soc.state.soc)


def test_garbage_state_falls_back_to_defaults() -> None:
    rig = Rig(state={"soc": {"soc": "lots"}, "strategy": [1, 2]})
    rig.tick()
    assert 0.0 <= rig.core.soc_state.soc <= 100.0


def test_user_actions_on_unknown_nodes_are_refused() -> None:
    rig = Rig()
    with pytest.raises(ValueError, match="node 7 is not configured"):
        rig.core.request_reset(7, rig.t)


def test_a_node_rejecting_the_gateways_commands_is_a_warning_and_an_event() -> None:
    """Review finding: a node refusing every command (a different command key, a forger on
    its identifiers) showed only as a counter on the page; now a SYSTEM warning naming it."""
    rig = Rig()
    rig.run(30.0)
    assert Alarm.SYSTEM not in rig.core.decision.alarms
    for rejected in (1, 2, 3):
        rig.core.on_battery_frame(nf.pack_status(0, CELLS * 3.325, 0.0, rejected), rig.t)
        rig.tick()
    assert rig.core.decision.alarms.get(Alarm.SYSTEM) == Severity.WARNING
    assert any("rejects the gateway's commands" in n for n in rig.core.decision.notes)
    told = [e for e in rig.core.events.events if "rejects the gateway's commands" in e.message]
    assert len(told) == 1 and told[0].node == 0
    # Nothing rejected for REJECTED_HOLD_S: the warning goes.
    rig.run(40.0)
    assert Alarm.SYSTEM not in rig.core.decision.alarms

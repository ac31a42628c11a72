"""The pure parts of the Venus OS service: paths from a view, signalling of changes, history.

Driven by the real gateway core over simulated time (tests/gateway/test_core.py's Rig)."""

from __future__ import annotations

import math

import pytest

from gateway.contracts.snapshot import ProtectionKind
from gateway.outputs.inverter.shaping import Shaper
from gateway.outputs.inverter.victron import VictronProfile
from gateway.outputs.venus.changes import ChangeGate
from gateway.outputs.venus.history import History, HistoryState
from gateway.outputs.venus.paths import (
    CELL_PREFIX,
    UNITS,
    Identity,
    Item,
    battery_items,
    installed_ah,
    unit_of,
)
from tests.gateway.test_core import CELLS, Rig

IDENTITY = Identity(device_instance=7, custom_name="Shed", connection="CAN virtual x")


def items_of(rig: Rig) -> dict[str, Item]:
    view, _ = rig.core.view(0)
    assert view is not None and view.report is not None
    settings = rig.core.settings
    out = Shaper(VictronProfile.quirks, settings.inverter).shape(view.report)
    topology = settings.battery.topology
    history = HistoryState()
    return battery_items(view, out, topology, installed_ah(topology, None), history, IDENTITY)


def test_a_running_battery_has_every_path_with_its_unit() -> None:
    rig = Rig()
    rig.run(120.0, amps=-20.0)
    items = items_of(rig)
    assert set(items) == set(UNITS) | {f"{CELL_PREFIX}{n}" for n in range(1, CELLS + 1)}
    snap = rig.core.snapshot
    assert items["/Dc/0/Voltage"] == (round(snap.voltage, 2), f"{snap.voltage:.2f}V")
    assert items["/Dc/0/Current"] == (-20.0, "-20.0A")
    assert items["/Dc/0/Temperature"] == (22.0, "22.0°C")
    assert items["/DeviceInstance"] == (7, "7")
    assert items["/CustomName"] == ("Shed", "Shed")
    assert items["/Info/MaxChargeVoltage"][1].endswith("V")
    assert items["/Io/AllowToCharge"][0] == 1 and items["/Io/AllowToDischarge"][0] == 1
    assert items["/TimeToGo"][0] > 0 and items["/TimeToGo"][1].endswith("s")
    assert items["/ConsumedAmphours"][0] <= 0  # Venus OS's sign: consumed is negative
    assert all(items[f"/Alarms/{a}"] == (0, "0") for a in ("HighCellVoltage", "BmsCable"))
    for path, (value, text) in items.items():
        unit = unit_of(path)
        if isinstance(value, float):
            assert text == f"{value:.{unit.digits}f}{unit.symbol}", path


def test_stale_data_is_invalid_and_a_stop_never_a_last_value() -> None:
    rig = Rig()
    rig.run(120.0, amps=-20.0)
    rig.tick(rig.core.settings.timing.node_timeout_s + 0.5)  # the node fell silent
    items = items_of(rig)
    for path in ("/Dc/0/Voltage", "/Dc/0/Current", "/System/MinCellVoltage", f"{CELL_PREFIX}1"):
        assert items[path] == (None, "---"), path
    assert items["/Info/MaxChargeCurrent"][0] == 0.0
    assert items["/Info/MaxDischargeCurrent"][0] == 0.0
    assert items["/Io/AllowToCharge"][0] == 0 and items["/Io/AllowToDischarge"][0] == 0
    assert items["/Info/MaxChargeVoltage"][0] > 0  # never 0
    assert items["/Alarms/BmsCable"][0] == 2
    assert items["/Connected"][0] == 1  # the GX keeps listening to the stop


def test_node_protection_levels_become_alarm_levels() -> None:
    rig = Rig()
    rig.run(60.0)
    rig.run(5.0, warnings=frozenset({ProtectionKind.CHARGE_UNDER_TEMP}))
    items = items_of(rig)
    assert items["/Alarms/LowChargeTemperature"][0] == 1
    assert items["/Alarms/HighChargeTemperature"][0] == 0


def gate_items(**values: float | None) -> dict[str, Item]:
    return {f"/{k}": (v, str(v)) for k, v in values.items()}


def test_gate_signals_changes_only_and_once_a_second_per_path() -> None:
    gate = ChangeGate(interval=1.0)
    gate.start(gate_items(a=1.0, b=2.0))
    assert gate.due(gate_items(a=1.0, b=2.0), 10.0) == {}  # nothing changed
    assert set(gate.due(gate_items(a=1.5, b=2.0), 10.0)) == {"/a"}  # at once
    assert gate.due(gate_items(a=1.7, b=2.0), 10.5) == {}  # within its second: held
    assert set(gate.due(gate_items(a=1.7, b=2.5), 10.6)) == {"/b"}  # per path
    # The held change goes out once the second has passed, with the value then current.
    assert gate.due(gate_items(a=1.8, b=2.5), 11.0) == {"/a": (1.8, "1.8")}
    # A change undone within the second is never signalled.
    assert gate.due(gate_items(a=1.9, b=2.5), 11.5) == {}
    assert gate.due(gate_items(a=1.8, b=2.5), 12.5) == {}


def test_gate_tells_int_from_float_and_invalid() -> None:
    gate = ChangeGate()
    gate.start({"/x": (1, "1")})
    assert set(gate.due({"/x": (1.0, "1.0")}, 5.0)) == {"/x"}
    assert set(gate.due({"/x": (None, "---")}, 6.0)) == {"/x"}


def test_history_integrates_energy_over_the_cores_clock() -> None:
    history = History()
    t = 0.0
    for _ in range(3601):  # an hour charging at 1 kW, sampled every second
        history.update(t, 1000.0, -10.0, (3.30, 3.40))
        t += 1.0
    for _ in range(1801):  # then half an hour discharging at 2 kW
        history.update(t, -2000.0, -25.0, (3.10, 3.35))
        t += 1.0
    s = history.state
    assert s.charged_kwh == pytest.approx(1.0, abs=0.001)
    assert s.discharged_kwh == pytest.approx(1.0, abs=0.001)
    assert s.deepest_discharge_ah == -25.0
    assert (s.min_cell_v, s.max_cell_v) == (3.10, 3.40)


def test_history_counts_no_energy_over_gaps_clock_steps_or_unknown_power() -> None:
    history = History()
    history.update(0.0, 1000.0, None, None)
    history.update(3600.0, 1000.0, None, None)  # an hour's gap counts as 5 s
    assert history.state.charged_kwh == pytest.approx(1000.0 * 5 / 3.6e6)
    before = history.state.charged_kwh
    history.update(100.0, 1000.0, None, None)  # the clock stepped back
    history.update(101.0, math.nan, None, None)  # unknown power
    history.update(102.0, 1000.0, None, None)  # a new start, nothing across the gap
    assert history.state.charged_kwh == before


def test_history_state_round_trips_and_bad_state_names_the_key() -> None:
    state = HistoryState(-12.5, 2.9, 3.6, 10.0, 8.0)
    assert HistoryState.from_dict(state.to_dict()) == state
    with pytest.raises(ValueError, match="charged_kwh"):
        HistoryState.from_dict({**state.to_dict(), "charged_kwh": "lots"})


def test_time_to_go_fits_the_int32_of_d_bus_for_a_huge_battery_at_a_trickle() -> None:
    """Review finding: remaining Ah / discharge current can exceed 2**31 s; D-Bus's "i"
    would refuse it and end the session. Capped at a year."""
    from gateway.outputs.venus.paths import MAX_TIME_TO_GO_S  # noqa: PLC0415

    rig = Rig()
    rig.run(120.0, amps=-0.2)
    view, _ = rig.core.view(0)
    assert view is not None and view.report is not None
    settings = rig.core.settings
    out = Shaper(VictronProfile.quirks, settings.inverter).shape(view.report)
    topology = settings.battery.topology
    items = battery_items(view, out, topology, 1e7, HistoryState(), IDENTITY)
    time_to_go = items["/TimeToGo"][0]
    assert isinstance(time_to_go, int) and 0 < time_to_go <= MAX_TIME_TO_GO_S < 2**31

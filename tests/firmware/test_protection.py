"""Local protection on simulated time: every kind trips, debounce, hysteresis, levels."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from bms import protect
from bms.hw import NOT_AVAILABLE
from bms.lifecycle import ACTIVE, STANDBY, TRIPPED
from tests.firmware.harness import Bench

CYCLE = 50


def active_bench(bench: Callable[..., Bench], **kwargs: Any) -> Bench:
    """A node past Init with its relay closed on the gateway's request."""
    b = bench(request="Close", **kwargs)
    b.run_until(lambda: b.node.state == ACTIVE, 5000)
    b.step()  # the relay feedback follows after its 20 ms delay
    assert b.hw.relay_closed
    return b


def cell_over(b: Bench) -> None:
    b.set_cell(0, 3700)


def cell_under(b: Bench) -> None:
    b.set_cell(5, 2400)


def pack_over(b: Bench) -> None:
    b.set_cells(3640)  # every cell below its fault limit (3650)...
    b.hw.pack_mv = 3660 * 16  # ...but the pack above 16 x 3650, within plausibility


def pack_under(b: Bench) -> None:
    b.set_cells(2510)
    b.hw.pack_mv = 2490 * 16


def charge_over_temp(b: Bench) -> None:
    b.hw.current_ma = 10_000
    b.hw.temp_dc[2] = 460


def charge_under_temp(b: Bench) -> None:
    b.hw.current_ma = 10_000
    # The whole pack at -1 degC: one sensor alone 26 K below the others would be the
    # temperature spread's SensorFault, after the same 1 s (the charge detection first).
    for i in range(b.temps):
        b.hw.temp_dc[i] = -10


def discharge_over_temp(b: Bench) -> None:
    b.hw.current_ma = -10_000
    b.hw.temp_dc[3] = 560


def discharge_under_temp(b: Bench) -> None:
    b.hw.current_ma = -10_000
    b.hw.temp_dc[0] = -210


def charge_over_current(b: Bench) -> None:
    b.hw.current_ma = 101_000


def discharge_over_current(b: Bench) -> None:
    b.hw.current_ma = -101_000


def sensor_fault(b: Bench) -> None:
    b.hw.temp_dc[2] = NOT_AVAILABLE  # open thermistor


def plausibility(b: Bench) -> None:
    b.hw.pack_mv = sum(b.hw.cell_mv) + 2100


def balancer_over_temp(b: Bench) -> None:
    b.hw.balancer_temp_dc = 860


def relay_fault(b: Bench) -> None:
    b.hw.relay_stuck = False  # the contacts open by themselves while driven closed


# A 10 A charge is charging once the charge above charge_detect_a (0.5 A) reaches
# charge_detect_as (2 A s): 211 ms, at the sample 200 ms after the onset (each sample counts
# the cycle before it); the charge temperature faults count their debounce from then on.
CHARGE_SEEN_10A = 200

# kind, how to provoke it, its delay: debounce (default configuration), after the charge
# detection for the charge temperatures
KINDS = [
    (protect.CELL_OVER_VOLTAGE, cell_over, 200),
    (protect.CELL_UNDER_VOLTAGE, cell_under, 200),
    (protect.PACK_OVER_VOLTAGE, pack_over, 200),
    (protect.PACK_UNDER_VOLTAGE, pack_under, 200),
    (protect.CHARGE_OVER_TEMP, charge_over_temp, CHARGE_SEEN_10A + 1000),
    (protect.CHARGE_UNDER_TEMP, charge_under_temp, CHARGE_SEEN_10A + 1000),
    (protect.DISCHARGE_OVER_TEMP, discharge_over_temp, 1000),
    (protect.DISCHARGE_UNDER_TEMP, discharge_under_temp, 1000),
    (protect.CHARGE_OVER_CURRENT, charge_over_current, 100),
    (protect.DISCHARGE_OVER_CURRENT, discharge_over_current, 100),
    (protect.SENSOR_FAULT, sensor_fault, 500),
    (protect.PLAUSIBILITY, plausibility, 1000),
    (protect.BALANCER_OVER_TEMP, balancer_over_temp, 1000),
    (protect.RELAY_FAULT, relay_fault, 250),
]


def name(kind: int) -> str:
    return protect.KIND_NAMES[kind.bit_length() - 1]


@pytest.mark.parametrize(("kind", "provoke", "debounce"), KINDS, ids=[name(k[0]) for k in KINDS])
def test_each_fault_opens_the_relay_after_its_debounce_and_not_before(
    bench: Callable[..., Bench], kind: int, provoke: Callable[[Bench], None], debounce: int
) -> None:
    b = active_bench(bench)
    b.run(300)  # past the relay's feedback delay after it closed (a mismatch then is normal)
    onset = b.now
    provoke(b)
    opened = b.run_until(lambda: not b.hw.relay_drive, 5000)
    elapsed = opened - onset
    assert debounce <= elapsed <= debounce + CYCLE
    assert b.node.faults & kind
    assert b.node.state == TRIPPED
    assert b.last("NodeState")[f"Fault{name(kind)}"] == "Active"  # reported at once
    # The gateway still asks for Close: the trip is latched.
    b.run(2000)
    assert not b.hw.relay_drive
    assert b.node.state == TRIPPED


def test_a_fault_shorter_than_its_debounce_does_not_trip(bench: Callable[..., Bench]) -> None:
    b = active_bench(bench)
    b.set_cell(0, 3700)
    b.run(150)  # 3 samples: the counter reaches 100 of 200 ms
    b.set_cell(0, 3300)
    b.run(1000)
    assert b.node.state == ACTIVE
    assert b.node.faults == 0


def test_debounce_counts_down_by_a_quarter_per_good_sample(bench: Callable[..., Bench]) -> None:
    """Bad, good, bad: the second bad spell continues from what is left of the first."""
    b = active_bench(bench)
    b.set_cell(0, 3700)
    b.run(150)  # bad at 0, 50, 100: counter 100 ms
    b.set_cell(0, 3300)
    b.run(100)  # the interval after the last bad sample +50, one good interval -12.5: 137.5
    b.set_cell(0, 3700)
    onset = b.now
    opened = b.run_until(lambda: not b.hw.relay_drive, 1000)
    assert opened - onset == 100  # -12.5 after the last good sample, +50, +50: 225 >= 200


def test_release_needs_the_hysteresis_and_the_debounce(bench: Callable[..., Bench]) -> None:
    b = active_bench(bench)
    b.set_cell(0, 3700)
    b.run(500)
    assert b.node.faults & protect.CELL_OVER_VOLTAGE
    b.set_cell(0, 3640)  # below the 3650 mV limit, but not by its 20 mV hysteresis
    b.run(5000)
    assert b.node.faults & protect.CELL_OVER_VOLTAGE
    b.set_cell(0, 3625)
    onset = b.now
    cleared = b.run_until(lambda: not b.node.faults & protect.CELL_OVER_VOLTAGE, 2000)
    # The counter (capped at the debounce) leaks a quarter of each good interval: 4 x 200 ms.
    assert cleared - onset == 800
    assert b.node.state == TRIPPED  # cleared, but latched


def test_temperature_release_hysteresis_is_5_degrees(bench: Callable[..., Bench]) -> None:
    b = active_bench(bench)
    b.hw.balancer_temp_dc = 720  # warning at 70 degC
    b.run(1500)
    assert b.node.warnings & protect.BALANCER_OVER_TEMP
    b.hw.balancer_temp_dc = 660
    b.run(3000)
    assert b.node.warnings & protect.BALANCER_OVER_TEMP
    b.hw.balancer_temp_dc = 640
    b.run(4100)  # released 4 x the debounce after the first good sample
    assert not b.node.warnings & protect.BALANCER_OVER_TEMP


def test_the_charge_cold_warning_releases_where_the_gateway_allows_charging_again(
    bench: Callable[..., Bench],
) -> None:
    """After a cold night the LFP warning (3 degC) clears at 5 degC, where the gateway's own
    charge window opens again (0 degC + 5 K), not 5 K above the warning: with the general
    temperature hysteresis the warning held charging off to 8 degC, which on a cold morning
    was hours of sun (docs/charge-quality.md, cold morning)."""
    b = active_bench(bench)
    for i in range(b.temps):
        b.hw.temp_dc[i] = 10  # 1 degC, at rest: the warning, no fault (not charging)
    b.run(1500)
    assert b.node.warnings & protect.CHARGE_UNDER_TEMP
    assert not b.node.faults
    for i in range(b.temps):
        b.hw.temp_dc[i] = 45  # 4.5 degC: not yet 2 K above the warning
    b.run(5000)
    assert b.node.warnings & protect.CHARGE_UNDER_TEMP
    for i in range(b.temps):
        b.hw.temp_dc[i] = 51  # 5.1 degC
    b.run(4100)  # released 4 x the debounce after the first good sample
    assert not b.node.warnings & protect.CHARGE_UNDER_TEMP
    assert b.node.infos & protect.CHARGE_UNDER_TEMP  # the info level (10 degC) stays


def test_info_and_warning_levels_do_not_open_the_relay(bench: Callable[..., Bench]) -> None:
    b = active_bench(bench)
    b.set_cell(3, 3620)  # above info (3550) and warning (3600), below fault (3650)
    b.run(1000)
    assert b.node.infos & protect.CELL_OVER_VOLTAGE
    assert b.node.warnings & protect.CELL_OVER_VOLTAGE
    assert not b.node.faults
    assert b.node.state == ACTIVE and b.hw.relay_drive
    state = b.last("NodeState")
    assert state["InfoCellOverVoltage"] == "Active"
    assert state["WarnCellOverVoltage"] == "Active"
    assert state["FaultCellOverVoltage"] == "Clear"


def test_the_fault_limit_itself_is_not_a_fault(bench: Callable[..., Bench]) -> None:
    b = active_bench(bench)
    b.set_cell(0, 3650)
    b.set_cell(1, 2500)
    b.run(1000)
    assert not b.node.faults


def test_charge_temperature_fault_only_while_charging(bench: Callable[..., Bench]) -> None:
    """At -1 degC: discharging is fine, charging trips; the warning shows either way."""
    b = active_bench(bench)
    for i in range(4):
        b.hw.temp_dc[i] = -10
    b.hw.current_ma = -20_000
    b.run(3000)
    assert b.node.state == ACTIVE
    assert b.node.warnings & protect.CHARGE_UNDER_TEMP  # the gateway must not start charging
    assert not b.node.faults
    b.hw.current_ma = 300  # below the 0.5 A charge detection: idle
    b.run(3000)
    assert b.node.state == ACTIVE
    b.hw.current_ma = 5_000  # charging after 2 A s / 4.5 A = 444 ms, then 1 s of debounce
    b.run(1500)
    assert b.node.faults == protect.CHARGE_UNDER_TEMP
    assert b.node.state == TRIPPED


def test_discharge_temperature_fault_not_while_charging(bench: Callable[..., Bench]) -> None:
    b = active_bench(bench)
    for i in range(4):
        b.hw.temp_dc[i] = -170  # -17 degC: below the discharge warning, above its fault
    b.hw.current_ma = 0
    b.run(1500)
    assert b.node.warnings & protect.DISCHARGE_UNDER_TEMP
    assert not b.node.faults & protect.DISCHARGE_UNDER_TEMP
    for i in range(4):
        b.hw.temp_dc[i] = 560  # over the discharge fault limit (55 degC)...
    b.hw.current_ma = 20_000  # ...while charging: the charge limit (45 degC) trips instead
    b.run(1200)  # charging after 2 A s / 19.5 A = 103 ms, then 1 s of debounce
    assert b.node.faults & protect.CHARGE_OVER_TEMP
    assert not b.node.faults & protect.DISCHARGE_OVER_TEMP


def test_missing_current_or_pack_reading_is_a_sensor_fault(bench: Callable[..., Bench]) -> None:
    b = active_bench(bench)
    b.hw.current_ma = NOT_AVAILABLE
    b.run(600)
    assert b.node.faults & protect.SENSOR_FAULT
    b = active_bench(bench)
    b.hw.pack_mv = NOT_AVAILABLE
    b.run(600)
    assert b.node.faults & protect.SENSOR_FAULT
    assert not b.node.faults & protect.PACK_UNDER_VOLTAGE  # no reading is not a low reading


def test_cell_reading_out_of_physical_range_is_a_sensor_fault(
    bench: Callable[..., Bench],
) -> None:
    b = active_bench(bench)
    b.set_cell(7, 0)  # a broken sense wire
    b.run(600)
    assert b.node.faults & protect.SENSOR_FAULT
    assert not b.node.faults & protect.CELL_UNDER_VOLTAGE


def test_stale_cell_monitor_is_a_sensor_fault(bench: Callable[..., Bench]) -> None:
    """The readings freeze: no fresh conversion for sensor_stale_ms, then the debounce."""
    b = active_bench(bench)
    b.hw.fresh = False
    onset = b.now
    opened = b.run_until(lambda: not b.hw.relay_drive, 5000)
    assert b.node.faults & protect.SENSOR_FAULT
    stale, debounce = b.config.sensor_stale_ms, b.config.debounce_sensor_ms
    assert stale + debounce <= opened - onset <= stale + debounce + 2 * CYCLE


def test_missing_balancer_temperature_is_only_a_warning(bench: Callable[..., Bench]) -> None:
    b = active_bench(bench)
    b.hw.balancer_temp_dc = NOT_AVAILABLE
    b.run(1000)
    assert b.node.warnings & protect.SENSOR_FAULT
    assert not b.node.faults
    assert b.node.state == ACTIVE


def test_without_a_balancer_sensor_its_reading_is_ignored(bench: Callable[..., Bench]) -> None:
    b = active_bench(bench, settings={"balancer_temp_sensor": False})
    b.hw.balancer_temp_dc = NOT_AVAILABLE
    b.run(1000)
    assert not b.node.warnings and not b.node.faults


def test_welded_relay_is_a_relay_fault(bench: Callable[..., Bench]) -> None:
    b = bench()
    b.settle()
    assert b.node.state == STANDBY
    b.hw.relay_stuck = True  # closed although not driven
    b.run(400)
    assert b.node.faults & protect.RELAY_FAULT
    assert b.node.state == TRIPPED
    assert b.last("NodeState")["RelayState"] == "Mismatch"


def test_relay_feedback_delay_is_not_a_fault(bench: Callable[..., Bench]) -> None:
    b = bench(request="Close")
    b.hw.relay_delay_ms = 200  # slower than a cycle, faster than relay_feedback_delay_ms
    b.run(4000)
    assert b.node.state == ACTIVE
    assert not b.node.faults


def test_overrun_cycle_raises_the_internal_warning(bench: Callable[..., Bench]) -> None:
    b = active_bench(bench)
    b.now += 300  # the loop stalled for 350 ms: late, but within cycle_deadline_ms
    b.step()
    assert b.node.warnings & protect.INTERNAL
    b.step()
    assert not b.node.warnings & protect.INTERNAL
    assert b.node.state == ACTIVE


def test_kind_bits_follow_the_dbc_flag_order(moat_db: Any) -> None:
    """Bit k of each level mask is the k-th Fault/Warn/Info flag of NodeState."""
    signals = [s.name for s in moat_db.get_message_by_name("NodeState").signals]
    faults = [s.removeprefix("Fault") for s in signals if s.startswith("Fault")]
    assert faults == list(protect.KIND_NAMES)
    for k, kind_name in enumerate(protect.KIND_NAMES):
        bit = getattr(
            protect, "".join("_" + c if c.isupper() else c for c in kind_name).lstrip("_").upper()
        )
        assert bit == 1 << k

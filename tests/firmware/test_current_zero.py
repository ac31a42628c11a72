"""The current sensor's zero and the charge detection (issue 14, the cold morning).

A real shunt amplifier reads a few hundred mA with no current and is noisy. At -7 degC the
node must not take that for a charge (it used to trip on its own ChargeUnderTemp fault 15 s
after its relay closed, latched: a blackout day), and a real charge into the cold pack must
still open the relay. Simulated time throughout; the readings are the sensor's: the true
current plus its offset and seeded noise, whatever the relay does.
"""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest

from bms import protect
from bms.lifecycle import ACTIVE, TRIPPED
from tests.firmware.harness import Bench

COLD_DC = -70  # -7 degC: below the LFP charge fault limit (0 degC), above the discharge one
TEMPERATURE_DEBOUNCE_MS = 1000
CHARGE_DETECT_MA = 500
CHARGE_DETECT_MAMS = 2_000_000  # charge_detect_as = 2 A s


class Sensor:
    """A shunt that reads true + offset + Gaussian noise, in mA."""

    def __init__(self, offset_ma: int, noise_ma: float, seed: int = 5) -> None:
        self.offset_ma = offset_ma
        self.noise_ma = noise_ma
        self.rng = random.Random(seed)

    def read(self, true_ma: int) -> int:
        noise = self.rng.gauss(0.0, self.noise_ma) if self.noise_ma else 0.0
        return round(true_ma + self.offset_ma + noise)


def run(b: Bench, sensor: Sensor, true_ma: int, ms: int) -> None:
    """Step for ms with the true current (0 through an open relay), read by the sensor."""
    end = b.now + ms
    while b.now < end:
        flowing = true_ma if b.hw.relay_closed else 0
        b.hw.current_ma = sensor.read(flowing)
        b.step()


def cold_bench(bench: Callable[..., Bench], cycle_ms: int) -> Bench:
    # As the simulator configures its nodes (gateway/sim/scenarios.py, base_setup).
    settings = {"cycle_ms": cycle_ms, "sensor_stale_ms": max(1000, 3 * cycle_ms)}
    b = bench(request="Close", cycle_ms=cycle_ms, settings=settings)
    for i in range(b.temps):
        b.hw.temp_dc[i] = COLD_DC
    return b


@pytest.mark.parametrize("cycle_ms", [50, 1000])  # a board's cycle; the simulator's 1 s step
@pytest.mark.parametrize(("offset_ma", "noise_ma"), [(300, 200.0), (1500, 0.0), (-800, 100.0)])
def test_an_offset_sensor_with_no_current_does_not_trip_a_cold_pack(
    bench: Callable[..., Bench], cycle_ms: int, offset_ma: int, noise_ma: float
) -> None:
    """-7 degC, relay closed on request, nothing flowing: the offset and the noise are not a
    charge. The relay stays closed for an hour; the node reports about 0 A."""
    b = cold_bench(bench, cycle_ms)
    sensor = Sensor(offset_ma, noise_ma)
    run(b, sensor, 0, 5000)
    assert b.hw.relay_closed and b.node.state == ACTIVE
    assert abs(b.node.current_check.zero_ma - offset_ma) <= 3 * noise_ma / 2 + 1
    run(b, sensor, 0, 3_600_000)
    assert b.node.state == ACTIVE and b.hw.relay_closed
    assert not b.node.faults
    assert b.node.warnings & protect.CHARGE_UNDER_TEMP  # the gateway still learns: no charge
    status = b.last("PackStatus")
    assert abs(status["PackCurrent"]) <= 4 * noise_ma / 1000 + 0.1


@pytest.mark.parametrize("cycle_ms", [50, 1000])
@pytest.mark.parametrize("charge_ma", [1000, 2000, 50_000])
def test_a_real_charge_into_a_cold_pack_still_opens_the_relay(
    bench: Callable[..., Bench], cycle_ms: int, charge_ma: int
) -> None:
    """The same offset sensor, then a real charge: ChargeUnderTemp opens the relay once the
    charge above charge_detect_a reaches charge_detect_as, plus the temperature debounce."""
    b = cold_bench(bench, cycle_ms)
    sensor = Sensor(300, 200.0)
    run(b, sensor, 0, 60_000)
    assert b.node.state == ACTIVE
    onset = b.now
    detect_ms = CHARGE_DETECT_MAMS // (charge_ma - CHARGE_DETECT_MA)
    # The bound, with a margin of 50 % on the detection for the noise and the zero's error,
    # and a cycle each for the detection, the debounce and the relay.
    bound = onset + detect_ms * 3 // 2 + TEMPERATURE_DEBOUNCE_MS + 3 * cycle_ms
    while b.hw.relay_drive and b.now <= bound:
        run(b, sensor, charge_ma, cycle_ms)
    assert not b.hw.relay_drive, "a charge into a cold pack went on"
    assert b.node.faults & protect.CHARGE_UNDER_TEMP
    assert b.node.state == TRIPPED


def test_a_pulsed_charge_is_seen_by_its_mean(bench: Callable[..., Bench]) -> None:
    """2 A on, 0 off, a cycle each (no single sample pattern hides it): 1 A on average is
    0.5 A above charge_detect_a, seen after 4 s; the relay opens a debounce later."""
    b = cold_bench(bench, 50)
    sensor = Sensor(300, 0.0)
    run(b, sensor, 0, 5000)
    onset = b.now
    k = 0
    while b.hw.relay_drive and b.now < onset + 10_000:
        run(b, sensor, 2000 if k % 2 == 0 else 0, 50)
        k += 1
    assert not b.hw.relay_drive
    assert b.node.faults & protect.CHARGE_UNDER_TEMP
    assert b.now - onset <= CHARGE_DETECT_MAMS // 500 + TEMPERATURE_DEBOUNCE_MS + 200


def test_the_zero_is_bounded_by_the_rest_limit(bench: Callable[..., Bench]) -> None:
    """4.9 A at rest is learned as the zero; 5.5 A (beyond current_rest_limit_a) is the
    sensor fault and is not learned, so the relay never closes on it."""
    b = bench(request="Close")
    sensor = Sensor(4900, 0.0)
    run(b, sensor, 0, 5000)
    assert b.node.current_check.zero_ma == 4900
    assert b.hw.relay_closed
    b2 = bench(request="Close")
    sensor = Sensor(5500, 0.0)
    run(b2, sensor, 0, 5000)
    assert b2.node.current_check.zero_ma == 0
    assert b2.node.faults & protect.SENSOR_FAULT
    assert b2.hw.relay_switches == 0


def test_the_zero_is_learned_again_at_each_rest(bench: Callable[..., Bench]) -> None:
    """The offset drifts (temperature) while the relay is closed: the next rest learns it;
    while closed the reading is the true current plus the drift, less the old zero."""
    b = bench(request="Close")
    sensor = Sensor(300, 0.0)
    run(b, sensor, 0, 5000)
    assert b.node.current_check.zero_ma == 300
    sensor.offset_ma = 700
    run(b, sensor, -10_000, 2000)
    assert b.node.current_check.current_ma == -10_000 + 400
    b.request = "Open"
    run(b, sensor, 0, 3000)
    assert not b.hw.relay_closed
    assert b.node.current_check.zero_ma == 700
    assert b.last("PackStatus")["PackCurrent"] == 0


def test_a_cold_pack_whose_load_eases_does_not_trip(bench: Callable[..., Bench]) -> None:
    """-7 degC, a household load stepping from 25 A down to 15 A: the pack rises by its IR
    drop (20 mV a cell, beyond charge_rise_mv_per_cell) and the reading rises with it. That
    is no doubt about the direction; the same rise with the reading unchanged still is."""
    b = cold_bench(bench, 50)
    sensor = Sensor(300, 200.0)
    b.set_cells(3280)
    run(b, sensor, -25_000, 30_000)
    assert b.node.state == ACTIVE
    b.set_cells(3300)  # 16 x 20 mV = 320 mV: the IR drop of 10 A at 32 mOhm
    run(b, sensor, -15_000, 60_000)
    assert b.node.state == ACTIVE and not b.node.faults
    assert not b.node.current_check.direction_doubtful
    run(b, sensor, -15_000, 10_000)  # the 25 A readings have left the 60 s window
    b.set_cells(3320)  # the same rise again, the reading unchanged (stuck, wrong polarity)
    run(b, sensor, -15_000, 200)
    assert b.node.current_check.direction_doubtful
    run(b, sensor, -15_000, TEMPERATURE_DEBOUNCE_MS + 100)
    assert b.node.faults & protect.CHARGE_UNDER_TEMP and not b.hw.relay_drive

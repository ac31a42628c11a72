"""The energy counter behind Victron's 0x378 (gateway/outputs/inverter/energy.py)."""

from __future__ import annotations

import math

import pytest

from gateway.outputs.inverter.energy import MAX_STEP_S, EnergyCounter
from tests.gateway.test_core import Rig


def test_counts_charge_and_discharge_separately() -> None:
    e = EnergyCounter()
    e.update(0.0, 50.0, 10.0)  # the first update only starts the clock
    for t in range(1, 3601):
        e.update(float(t), 50.0, 10.0)  # 500 W for an hour
    for t in range(3601, 3601 + 1800):
        e.update(float(t), 50.0, -20.0)  # 1000 W out for half an hour
    assert e.charged_wh == pytest.approx(500.0)
    assert e.discharged_wh == pytest.approx(500.0)


def test_gaps_and_unknown_measurements_are_not_guessed() -> None:
    e = EnergyCounter()
    e.update(0.0, 50.0, 10.0)
    e.update(MAX_STEP_S + 1, 50.0, 10.0)  # the gateway was stalled: not counted
    e.update(MAX_STEP_S + 2, math.nan, 10.0)
    e.update(MAX_STEP_S + 3, 50.0, math.nan)
    e.update(MAX_STEP_S + 2, 50.0, 10.0)  # a clock stepping back
    assert e.charged_wh == 0.0 and e.discharged_wh == 0.0


def test_saved_and_restored() -> None:
    e = EnergyCounter(1234.5, 678.0)
    again = EnergyCounter.from_dict(e.to_dict())
    assert (again.charged_wh, again.discharged_wh) == (1234.5, 678.0)
    for bad in ({"version": 1, "charged_wh": -1.0, "discharged_wh": 0.0}, {"charged_wh": 1.0}):
        with pytest.raises(ValueError, match="energy"):
            EnergyCounter.from_dict(bad)


def test_the_gateway_counts_sends_and_keeps_the_energy_across_a_restart() -> None:
    """Victron profile end to end: 100 A into a 53.2 V pack for 36 s is 53.2 Wh; the GX's
    0x378 carries it in 100 Wh and the saved state carries it over a restart."""
    rig = Rig(inverter={"profile": "victron", "startup_grace": 5, "keepalive_timeout": 3})
    rig.run(36.0, amps=100.0)
    energy = rig.core.energy
    assert energy.charged_wh == pytest.approx(100.0 * 16 * 3.325 * 36 / 3600, rel=0.01)
    assert energy.discharged_wh == 0.0
    again = Rig(
        state=rig.core.persistent_state(),
        inverter={"profile": "victron", "startup_grace": 5, "keepalive_timeout": 3},
    )
    assert again.core.energy.charged_wh == energy.charged_wh
    again.core.energy.charged_wh += 100.0  # past the next 100 Wh step
    again.run(1.0)
    sent = [f for f in again.sent_inverter if f.id == 0x378][-1]
    assert int.from_bytes(sent.data[0:4], "little") == int(energy.charged_wh + 100.0) // 100

"""Phase machine: every transition with its delay and hysteresis."""

from __future__ import annotations

import math

import pytest

from gateway.contracts.chemistry import LFP
from gateway.contracts.decision import Phase
from gateway.strategy.phases import PhaseInputs, PhaseMachine, PhaseStep
from gateway.strategy.settings import PhaseSettings

CFG = PhaseSettings(
    absorption_entry_s=10,
    absorption_time_s=100,
    absorption_max_s=1000,
    rebulk_delay_s=60,
    full_charge_hold_s=200,
    full_charge_max_hold_s=2000,
    resume_after_s=10,
)


def inputs(
    at_max: bool = False,
    spread: float = 0.005,
    soc: float = 90.0,
    stop: bool = False,
    full: bool = False,
) -> PhaseInputs:
    return PhaseInputs(stop=stop, at_max=at_max, spread=spread, soc=soc, full_charge_wanted=full)


def run(m: PhaseMachine, inp: PhaseInputs, seconds: int) -> list[PhaseStep]:
    return [m.step(inp, 1.0) for _ in range(seconds)]


def machine(phase: Phase = Phase.BULK, completed: bool = True) -> PhaseMachine:
    m = PhaseMachine(CFG, LFP, phase, completed)
    run(m, inputs(), round(CFG.resume_after_s))  # clean data: resume
    m.step(inputs(), 1.0)
    assert m.phase is phase
    return m


def test_starts_stopped_and_resumes_after_clean_data() -> None:
    m = PhaseMachine(CFG, LFP, Phase.FLOAT)
    assert m.phase is Phase.STOPPED
    steps = run(m, inputs(), 10)
    assert [s.phase for s in steps[:-1]] == [Phase.STOPPED] * 9
    assert steps[-1].phase is Phase.FLOAT
    assert steps[-1].note == "resumed in float"


def test_a_stop_is_immediate_and_resume_needs_a_clean_stretch() -> None:
    m = machine(Phase.ABSORPTION)
    assert m.step(inputs(stop=True), 1.0).phase is Phase.STOPPED
    run(m, inputs(), 9)
    m.step(inputs(stop=True), 1.0)  # a glitch restarts the clean stretch
    assert [s.phase for s in run(m, inputs(), 10)][-2:] == [Phase.STOPPED, Phase.ABSORPTION]
    assert m.resume_phase is Phase.ABSORPTION


def test_stopped_never_resumes_into_stopped() -> None:
    assert PhaseMachine(CFG, LFP, Phase.STOPPED).resume_phase is Phase.BULK


def test_bulk_to_absorption_needs_max_voltage_for_the_entry_delay() -> None:
    m = machine(Phase.BULK)
    run(m, inputs(at_max=True), 9)
    m.step(inputs(at_max=False), 1.0)  # dip: restart
    assert [s.phase for s in run(m, inputs(at_max=True), 10)][-2:] == [
        Phase.BULK,
        Phase.ABSORPTION,
    ]


@pytest.mark.parametrize(
    ("pattern", "float_at"),
    [
        # (seconds, at_max, spread) segments; float_at: step index where FLOAT appears
        ([(100, True, 0.005)], 100),
        ([(50, True, 0.005), (20, True, 0.012), (50, True, 0.005)], 120),  # 10..13 mV: pause
        ([(50, True, 0.005), (1, True, 0.014), (100, True, 0.005)], 151),  # > 13 mV: restart
        ([(50, True, 0.005), (30, False, 0.005), (50, True, 0.005)], 130),  # off max: pause
    ],
)
def test_absorption_timer(pattern: list[tuple[int, bool, float]], float_at: int) -> None:
    m = machine(Phase.ABSORPTION)
    phases = []
    for seconds, at_max, spread in pattern:
        phases += [s.phase for s in run(m, inputs(at_max=at_max, spread=spread), seconds)]
    assert phases.index(Phase.FLOAT) + 1 == float_at
    assert m.absorption_completed


def test_absorption_is_capped_and_then_spread_does_not_rebulk() -> None:
    m = machine(Phase.ABSORPTION, completed=True)  # 1 s of it already
    steps = run(m, inputs(at_max=True, spread=0.050), 999)
    assert steps[-2].phase is Phase.ABSORPTION
    assert steps[-1].phase is Phase.FLOAT
    assert steps[-1].note == "absorption capped after 1000 s"
    assert not m.absorption_completed
    # The spread that capped it does not loop back to bulk...
    assert run(m, inputs(spread=0.100), 500)[-1].phase is Phase.FLOAT
    # ...a low SoC does.
    assert run(m, inputs(spread=0.100, soc=70.0), 60)[-1].phase is Phase.BULK


@pytest.mark.parametrize(
    ("inp", "bulk"),
    [
        (inputs(soc=79.9), True),
        (inputs(soc=80.0), False),
        (inputs(spread=0.080), True),
        (inputs(spread=0.079), False),
    ],
)
def test_float_back_to_bulk_after_the_delay(inp: PhaseInputs, bulk: bool) -> None:
    m = machine(Phase.FLOAT, completed=True)
    assert run(m, inp, 59)[-1].phase is Phase.FLOAT
    assert (m.step(inp, 1.0).phase is Phase.BULK) is bulk


def test_rebulk_condition_must_hold_without_interruption() -> None:
    m = machine(Phase.FLOAT)
    run(m, inputs(soc=70.0), 59)
    m.step(inputs(soc=85.0), 1.0)
    assert run(m, inputs(soc=70.0), 59)[-1].phase is Phase.FLOAT


@pytest.mark.parametrize("start", [Phase.BULK, Phase.ABSORPTION, Phase.FLOAT])
def test_full_charge_starts_from_any_running_phase(start: Phase) -> None:
    m = machine(start)
    step = m.step(inputs(full=True), 1.0)
    assert step.phase is Phase.FULL_CHARGE
    assert m.allowed_max() == LFP.full_charge_v


def test_full_charge_waits_for_its_voltage_then_holds_then_floats() -> None:
    m = machine(Phase.BULK)
    m.step(inputs(full=True), 1.0)
    # A night without charge: the cap does not run before the voltage is reached.
    assert run(m, inputs(full=True), 5000)[-1].phase is Phase.FULL_CHARGE
    steps = run(m, inputs(at_max=True, full=True), 200)
    assert steps[-2].phase is Phase.FULL_CHARGE
    assert steps[-1].phase is Phase.FLOAT
    assert steps[-1].full_charge_done
    assert steps[-1].note == "full charge complete"


def test_full_charge_is_capped_once_at_voltage() -> None:
    m = machine(Phase.BULK)
    m.step(inputs(full=True), 1.0)
    steps = run(m, inputs(at_max=True, spread=0.05, full=True), 2000)
    assert steps[-1].phase is Phase.FLOAT and steps[-1].full_charge_done
    assert not m.absorption_completed


def test_allowed_maximum_per_phase() -> None:
    m = machine(Phase.BULK)
    assert m.allowed_max(Phase.BULK) == m.allowed_max(Phase.ABSORPTION) == 3.45
    assert m.allowed_max(Phase.FLOAT) == 3.375
    assert m.allowed_max(Phase.FULL_CHARGE) == 3.55
    m.step(inputs(stop=True), 1.0)
    assert m.allowed_max() == 3.45  # stopped: the phase it resumes in


@pytest.mark.parametrize(
    ("max_cell", "current_c", "at_ceiling", "held", "expected"),
    [
        (3.436, 0.5, False, False, True),  # within 15 mV of 3.45
        (3.434, 0.5, False, False, False),
        (3.420, 0.01, True, False, True),  # tapered at the ceiling: an inverter reading high
        (3.420, 0.01, False, False, False),
        (3.420, 0.05, True, False, False),  # still charging hard
        (3.400, 0.0, True, False, False),  # too far below: e.g. idle at night
        # Held a step below by the highest cell (a cell far ahead, a CVL-only charger).
        (3.370, 0.0, False, True, True),
        (3.370, 0.05, False, True, False),  # still charging hard
        (3.370, math.nan, False, True, False),  # the current unknown
    ],
)
def test_at_max_voltage(
    max_cell: float, current_c: float, at_ceiling: bool, held: bool, expected: bool
) -> None:
    m = machine(Phase.BULK)
    assert m.at_max_voltage(max_cell, current_c, at_ceiling, held) is expected

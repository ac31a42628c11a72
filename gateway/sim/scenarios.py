"""Named simulation scenarios, each with the checks that must hold after it ran.

`moat-bms sim --scenario NAME` runs one; tests/sim/test_scenarios.py runs them all at full
speed. A scenario builds a SimSetup, schedules its faults on the SimSystem, and checks what
was recorded: what the inverter received (the CAN frames on the inverter bus, decoded by the
simulated inverter), what the nodes did, and the physical truth of the simulator.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gateway.config.root import Settings
from gateway.contracts.decision import Alarm, Phase
from gateway.sim.inverter import SimInverterSettings
from gateway.sim.power import Constant, HouseholdLoad, SolarDay
from gateway.sim.system import SimSetup, SimSystem, deep_merge
from gateway.sim.zoo import inverter_model
from gateway.strategy import StrategyState

FAULT_LEVEL = 2  # index of the fault level in the firmware's [info, warning, fault] limits


@dataclass
class Sample:
    """Once a simulated second."""

    t: float
    cvl: float  # what the inverter last received (nan before the first frame)
    ccl: float
    dcl: float
    current: float  # true battery current, A
    max_cell: float  # true highest cell, V
    min_cell: float
    spread: float  # true cell spread, V
    soc_true: float  # %
    soc_gateway: float  # %, nan while the gateway is down
    phase: str
    relays: tuple[bool, ...]  # per node (sorted ids): relay feedback closed
    node_states: tuple[int, ...]


@dataclass
class Record:
    """What a run recorded."""

    samples: list[Sample] = field(default_factory=list)
    events: list[tuple[float, str, str]] = field(default_factory=list)  # (t, kind, message)
    alarms_seen: set[str] = field(default_factory=set)
    phases_seen: set[str] = field(default_factory=set)
    marks: dict[str, float] = field(default_factory=dict)  # scenario moments, by name
    values: dict[str, Any] = field(default_factory=dict)
    _next: float = 0.0
    _events_seen: int = 0

    def observe(self, sim: SimSystem) -> None:
        core = sim.core
        if core is not None:
            for event in core.events.since(self._events_seen):
                self.events.append(
                    (event.time - sim.now() + sim.t, event.kind.value, event.message)
                )
            self._events_seen = core.events.count
            if core.decision is not None:
                if core.decision.alarms:  # most steps have none
                    self.alarms_seen.update(a.value for a in core.decision.alarms)
                self.phases_seen.add(core.decision.phase.value)
        if sim.t + 1e-9 < self._next:
            return
        self._next = sim.t + 1.0
        limits = sim.inverter.limits
        low, high = sim.cell_range
        self.samples.append(
            Sample(
                t=sim.t,
                cvl=limits.charge_voltage_limit if limits else math.nan,
                ccl=limits.charge_current_limit if limits else math.nan,
                dcl=limits.discharge_current_limit if limits else math.nan,
                current=sim.inverter_current,
                max_cell=high,
                min_cell=low,
                spread=high - low,
                soc_true=sim.true_soc,
                soc_gateway=core.soc_state.soc if core is not None else math.nan,
                phase=core.decision.phase.value if core and core.decision else "",
                relays=tuple(sim.nodes[n].hw.relay_closed for n in sorted(sim.nodes)),
                node_states=tuple(int(sim.nodes[n].node.state) for n in sorted(sim.nodes)),
            )
        )

    def reset_events(self) -> None:
        """After a gateway restart its event log starts again."""
        self._events_seen = 0

    def between(self, start: float, end: float = math.inf) -> list[Sample]:
        return [s for s in self.samples if start <= s.t < end]

    def first(self, condition: Callable[[Sample], bool], after: float = 0.0) -> Sample | None:
        return next((s for s in self.samples if s.t >= after and condition(s)), None)

    def limit_changes(self, name: str, start: float = 0.0) -> int:
        values = [getattr(s, name) for s in self.samples if s.t >= start]
        return sum(1 for a, b in itertools.pairwise(values) if a != b)


@dataclass
class Scenario:
    name: str
    summary: str
    duration: float  # simulated seconds
    setup: Callable[[], SimSetup]
    prepare: Callable[[SimSystem, Record], None] = lambda sim, rec: None
    check: Callable[[SimSystem, Record], list[str]] = lambda sim, rec: []
    slow: bool = False  # long: worth running with a coarser step

    def build(
        self,
        seed: int = 0,
        *,
        gateway: dict[str, Any] | None = None,
        config: Settings | None = None,
        inverter: str | None = None,
        **kwargs: Any,
    ) -> tuple[SimSystem, Record]:
        """The system and its recorder, ready to run; `config` puts a user's battery into
        the scenario (with_config), `gateway` overrides gateway settings (e.g. the web
        page's port), `inverter` names a model of the inverter zoo (gateway/sim/zoo.py)
        for the scenario's inverter, kwargs go to SimSystem."""
        setup = self.setup()
        if config is not None:
            setup = with_config(setup, config)
        if inverter is not None:
            setup.inverter = inverter_model(inverter, setup.inverter)
        if gateway:
            deep_merge(setup.gateway, gateway)
        sim = SimSystem(setup, seed, **kwargs)
        record = Record()
        sim.observers.append(record.observe)
        self.prepare(sim, record)
        return sim, record


SCENARIOS: dict[str, Scenario] = {}


def scenario(s: Scenario) -> Scenario:
    SCENARIOS[s.name] = s
    return s


def node_limits(capacity_ah: float) -> dict[str, Any]:
    """Node over-current levels for a pack of this capacity: info at 0.8 C, fault at 1 C."""
    c = capacity_ah
    return {
        "charge_over_current_a": [round(0.8 * c), round(0.9 * c), round(1.0 * c)],
        "discharge_over_current_a": [round(0.8 * c), round(0.9 * c), round(1.0 * c)],
    }


# The simulated demo's command key (bms.auth): public, so only for the simulation.
DEMO_COMMAND_KEY = "00112233445566778899aabbccddeeff"


def base_setup(step_s: float = 1.0, **kw: Any) -> SimSetup:
    """A scenario's system: nodes with over-current levels for their capacity, the gateway
    limited to 0.5 C, state saved every 30 s.

    step_s is the simulation step: the nodes' cycle, the gateway's tick and the physics
    step. One second keeps hours of simulated time quick to run while every decision of the
    gateway and every protection of the nodes still acts at its own time scale (debounce
    times below a second then pass on the first bad sample, the strictest case)."""
    setup = SimSetup(**kw)
    setup.node_period_ms = round(step_s * 1000)
    setup.node_config = {
        **node_limits(setup.capacity_ah),
        "cycle_ms": setup.node_period_ms,
        "sensor_stale_ms": max(1000, 3 * setup.node_period_ms),
        **setup.node_config,
    }
    gateway: dict[str, Any] = {
        "timing": {"tick_s": step_s},
        "strategy": {
            "max_charge_current_a": 0.5 * setup.capacity_ah * len(setup.strings),
            "max_discharge_current_a": 0.5 * setup.capacity_ah * len(setup.strings),
        },
        "inverter": {"startup_grace": 30.0},
        "persistence": {"interval_s": 30.0},
    }
    deep_merge(gateway, setup.gateway)
    setup.gateway = gateway
    return setup


def with_config(setup: SimSetup, config: Settings) -> SimSetup:
    """The scenario's setup with a user's battery: topology, chemistry and capacity (the
    simulated nodes follow them, with over-current levels for that capacity), and the
    file's strategy, SoC and inverter settings for the gateway. Buses, web and persistence
    stay the simulator's; the scenario's step stays its own. ValueError for what the
    simulator cannot build (per-node cell counts)."""
    topo = config.battery.topology
    if topo.cells:
        raise ValueError(
            "battery.topology.cells: per-node cell counts are not simulated; "
            "use cells_per_node for every node"
        )
    setup.strings = [list(s) for s in topo.strings]
    setup.cells_per_node = topo.cells_per_node
    setup.chemistry = config.battery.chemistry.value
    setup.capacity_ah = topo.capacity_ah
    setup.node_config = {**setup.node_config, **node_limits(topo.capacity_ah)}
    stated = config.model_dump(mode="json", exclude_unset=True, exclude_none=True)
    gateway = {k: v for k, v in stated.items() if k in ("battery", "strategy", "soc", "inverter")}
    strategy = setup.gateway.setdefault("strategy", {})
    # The scenario's 0.5 C limits for its own pack: for this pack, unless the file says.
    for key in ("max_charge_current_a", "max_discharge_current_a"):
        strategy[key] = 0.5 * topo.capacity_ah * len(topo.strings)
    deep_merge(setup.gateway, gateway)
    return setup


def relay_open_at(rec: Record, node_index: int, after: float = 0.0) -> Sample | None:
    return rec.first(lambda s: not s.relays[node_index], after)


# ------------------------------------------------------------------ the demo


def _demo_setup() -> SimSetup:
    rng = random.Random(7)
    # Half-second steps: 120 a second at the demo's speed 60 keep a small computer ahead of
    # the wall clock; every decision still acts at its own time scale.
    return base_setup(
        step_s=0.5,
        # Two parallel strings of two 8-cell nodes in series: a 16s (48 V) battery, as a
        # low-voltage Pylontech inverter expects, that shows series and parallel at once.
        strings=[[0, 1], [2, 3]],
        cells_per_node=8,
        soc=0.35,
        capacity_ah=100.0,
        start_hour=7.0,
        pv=SolarDay(peak_w=9000.0, cloudiness=0.2, rng=rng, start_h=7.0),
        load=HouseholdLoad(start_h=7.0, rng=rng),
        initial_soc_known=True,
        # The demo runs as an installation should: relay closes and resets authenticated.
        # This key is published here: never use it for a real battery.
        gateway={"battery": {"command_key": DEMO_COMMAND_KEY}},
    )


scenario(
    Scenario(
        "demo",
        "two parallel strings of two 8-cell nodes (16s, 48 V) through a sunny day with a household "
        "load",
        duration=24 * 3600.0,
        setup=_demo_setup,
    )
)


# ------------------------------------------------------------------ full charge


def _full_charge_setup() -> SimSetup:
    # Small cells, so that the balancers (0.7 A through 5 ohm) can level an imbalance of a
    # few percent within the charge, as they would over a few days on a large pack.
    return base_setup(
        capacity_ah=20.0,
        soc=0.2,
        soc_spread=0.02,
        capacity_spread=0.01,
        bleed_ohm=5.0,
        pv=Constant(4000.0),
        load=Constant(0.0),
    )


def _full_charge_check(sim: SimSystem, rec: Record) -> list[str]:
    problems = []
    allowed = sim.core.chemistry.charge_target_v if sim.core else 3.45
    if sim.truth.max_cell_v > allowed + 0.02:
        problems.append(
            f"a cell reached {sim.truth.max_cell_v:.3f} V, above its maximum {allowed} V "
            f"(+20 mV) at t={sim.truth.max_cell_at:.0f} s"
        )
    floated = rec.first(lambda s: s.phase == Phase.FLOAT.value)
    if floated is None:
        problems.append(f"float was never reached (phases: {sorted(rec.phases_seen)})")
    else:
        # Half an hour into float (as the charge-quality matrix): the top cells bleed down
        # from their absorption voltage on the steep top of the cited LFP curve meanwhile.
        late = rec.between(floated.t + 1800)
        if not late:
            problems.append("the run ended too soon after float was reached")
        elif max(s.spread for s in late) > 0.030:
            problems.append(f"cell spread at float is {max(s.spread for s in late) * 1000:.0f} mV")
        rec.values["float_at"] = floated.t
    return problems


scenario(
    Scenario(
        "full-charge",
        "charge from 20 % to float with imbalanced cells: no cell above its maximum, small "
        "spread at float",
        duration=5 * 3600.0,
        setup=_full_charge_setup,
        check=_full_charge_check,
    )
)


# ------------------------------------------------------------------ cold charge


def _cold_setup() -> SimSetup:
    return base_setup(soc=0.5, ambient_c=-5.0, pv=Constant(3000.0), load=Constant(0.0))


def _cold_check(sim: SimSystem, rec: Record) -> list[str]:
    problems = []
    late = rec.between(60.0)
    charging = [s for s in late if s.current > 1.0 or s.ccl > 0]
    if charging:
        s = charging[0]
        problems.append(
            f"charging at {s.t:.0f} s in the cold: CCL {s.ccl} A, current {s.current:.1f} A"
        )
    if not any(s.dcl > 0 for s in late):
        problems.append("discharging was blocked too (only charging must be)")
    return problems


scenario(
    Scenario(
        "cold-charge",
        "cells at -5 degC with PV available: no charging at all, discharging still allowed",
        duration=1800.0,
        setup=_cold_setup,
        check=_cold_check,
    )
)


# ------------------------------------------------------------------ cell over-voltage


DRIFT_START = 600.0


def _overvoltage_setup() -> SimSetup:
    return base_setup(soc=0.85, soc_spread=0.005, pv=Constant(2000.0), load=Constant(0.0))


def _overvoltage_prepare(sim: SimSystem, rec: Record) -> None:
    def drift(s: SimSystem) -> None:
        s.battery.packs[0].inject_cell_drift(4, 8.0)  # cell 5 charges itself at 8 A

    sim.at(DRIFT_START, drift)


def _overvoltage_check(sim: SimSystem, rec: Record) -> list[str]:
    problems = []
    fault_v = sim.nodes[0].settings["cell_over_mv"][FAULT_LEVEL] / 1000
    stop_v = (sim.core.chemistry.charge_target_v if sim.core else 3.45) + 0.05
    crossed = rec.first(lambda s: s.max_cell >= stop_v, DRIFT_START)
    if crossed is None:
        return [f"the drifting cell never reached {stop_v} V"]
    stopped = rec.first(lambda s: s.ccl == 0, crossed.t)
    if stopped is None or stopped.t - crossed.t > 2.0:
        when = "never" if stopped is None else f"{stopped.t - crossed.t:.0f} s"
        problems.append(f"CCL 0 reached the inverter bus {when} after the cell passed {stop_v} V")
    opened = relay_open_at(rec, 0, DRIFT_START)
    if opened is None:
        problems.append("the node never opened its relay")
    else:
        before = rec.between(DRIFT_START, opened.t - 1.0)
        if before and max(s.max_cell for s in before) < fault_v - 0.005:
            problems.append(
                f"relay opened at t={opened.t:.0f} s with the cell at {opened.max_cell:.3f} V, "
                f"below the fault level {fault_v} V"
            )
        if rec.between(opened.t)[-1].relays[0]:
            problems.append("the relay closed again")
        if not any(s.max_cell >= fault_v for s in rec.between(opened.t - 1.0, opened.t + 1.0)):
            problems.append(f"the relay opened away from the fault level {fault_v} V")
        rec.values["relay_open_at"] = opened.t
    return problems


scenario(
    Scenario(
        "cell-overvoltage",
        "one cell drifts high near full: the stop reaches the inverter bus at once, the node "
        "opens its relay at the fault level and keeps it open",
        duration=2400.0,
        setup=_overvoltage_setup,
        prepare=_overvoltage_prepare,
        check=_overvoltage_check,
    )
)


# ------------------------------------------------------------------ node comm loss

CUT, RESTORE = 600.0, 1200.0


def _comm_loss_setup() -> SimSetup:
    return base_setup(strings=[[0], [1]], soc=0.5, pv=Constant(0.0), load=Constant(2500.0))


def _comm_loss_prepare(sim: SimSystem, rec: Record) -> None:
    def cut(s: SimSystem) -> None:
        s.nodes[1].link.cut = True

    def restore(s: SimSystem) -> None:
        s.nodes[1].link.cut = False

    sim.at(CUT, cut)
    sim.at(RESTORE, restore)


def _comm_loss_check(sim: SimSystem, rec: Record) -> list[str]:
    problems = []
    max_dcl = sim.settings.strategy.max_discharge_current_a
    if Alarm.NODE_MISSING.value not in rec.alarms_seen:
        problems.append("no node-missing alarm")
    during = rec.between(CUT + sim.settings.timing.node_timeout_s + 3.0, RESTORE)
    if any(s.dcl > max_dcl / 2 + 0.1 for s in during):
        problems.append("DCL not scaled to the one string left while node 1 was silent")
    if not any(kind == "node_missing" for _, kind, _ in rec.events):
        problems.append("no node-missing event")
    if not all(s.relays[0] for s in during):
        problems.append("the healthy string lost its relay")
    after = rec.between(RESTORE + 120.0)
    if not after or max(s.dcl for s in after) <= max_dcl / 2 + 0.1:
        problems.append("limits did not recover after the link came back")
    return problems


scenario(
    Scenario(
        "node-comm-loss",
        "the CAN link of one of two parallel nodes is cut for ten minutes: the gateway blocks "
        "its string and halves the limits, and recovers when the link returns",
        duration=1800.0,
        setup=_comm_loss_setup,
        prepare=_comm_loss_prepare,
        check=_comm_loss_check,
    )
)


# ------------------------------------------------------------------ gateway restart

KILL, RESTART = 1800.0, 1860.0


def _restart_setup() -> SimSetup:
    return base_setup(soc=0.6, pv=Constant(0.0), load=Constant(2000.0), initial_soc_known=True)


def _restart_prepare(sim: SimSystem, rec: Record) -> None:
    def kill(s: SimSystem) -> None:
        assert s.core is not None
        rec.values["soc_before_kill"] = s.core.soc_state.soc
        rec.values["true_before_kill"] = 100 * s.battery.true_soc()
        s.kill_gateway()

    def restart(s: SimSystem) -> None:
        s.restart_gateway()
        rec.reset_events()
        assert s.core is not None
        rec.values["soc_after_restart"] = s.core.soc_state.soc
        rec.values["true_after_restart"] = 100 * s.battery.true_soc()

    sim.at(KILL, kill)
    sim.at(RESTART, restart)


def _restart_check(sim: SimSystem, rec: Record) -> list[str]:
    problems = []
    before, after = rec.values.get("soc_before_kill"), rec.values.get("soc_after_restart")
    if before is None or after is None:
        return ["the gateway was not killed and restarted"]
    # The state is saved every 30 s: at most 30 s of discharge (~0.4 %) is lost.
    if abs(before - after) > 1.0:
        problems.append(f"SoC jumped from {before:.1f} % to {after:.1f} % over the restart")
    end = rec.samples[-1]
    if abs(end.soc_gateway - end.soc_true) > 3.0:
        problems.append(f"SoC {end.soc_gateway:.1f} % vs true {end.soc_true:.1f} % at the end")
    if not any(s.dcl > 0 for s in rec.between(RESTART + 120.0)):
        problems.append("the restarted gateway never allowed discharging again")
    return problems


scenario(
    Scenario(
        "gateway-restart",
        "the gateway is killed while discharging and restarted a minute later: SoC continues "
        "from the saved state",
        duration=2700.0,
        setup=_restart_setup,
        prepare=_restart_prepare,
        check=_restart_check,
    )
)


# ------------------------------------------------------------------ inverter missing

SILENT, BACK = 300.0, 900.0


def _inverter_missing_prepare(sim: SimSystem, rec: Record) -> None:
    def silent(s: SimSystem) -> None:
        s.inverter.silent = True

    def back(s: SimSystem) -> None:
        s.inverter.silent = False

    sim.at(SILENT, silent)
    sim.at(BACK, back)


def _inverter_missing_check(sim: SimSystem, rec: Record) -> list[str]:
    problems = []
    kinds = [(t, kind) for t, kind, _ in rec.events]
    missing = [t for t, kind in kinds if kind == "inverter_missing"]
    timeout = sim.settings.inverter.keepalive_timeout
    if not missing:
        problems.append("no inverter-missing event")
    elif not SILENT + timeout - 1 <= missing[0] <= SILENT + timeout + 2:
        problems.append(
            f"inverter missing raised at {missing[0]:.0f} s, expected about "
            f"{SILENT + timeout:.0f} s"
        )
    if not any(kind == "inverter_back" and t >= BACK for t, kind in kinds):
        problems.append("no inverter-back event after the keepalive returned")
    if sim.core and Alarm.INVERTER_MISSING in (
        sim.core.decision.alarms if sim.core.decision else {}
    ):
        problems.append("inverter-missing alarm still raised at the end")
    return problems


scenario(
    Scenario(
        "inverter-missing",
        "the inverter stops sending its 0x305 keepalive for ten minutes: alarm after the "
        "timeout, cleared when it returns",
        duration=1200.0,
        setup=lambda: base_setup(soc=0.5, pv=Constant(1500.0), load=Constant(1000.0)),
        prepare=_inverter_missing_prepare,
        check=_inverter_missing_check,
    )
)


# ------------------------------------------------------------------ parallel strings, one trips

TRIP_DRIFT = 300.0


def _parallel_setup() -> SimSetup:
    return base_setup(
        strings=[[0], [1]], soc=0.9, soc_spread=0.005, pv=Constant(3000.0), load=Constant(0.0)
    )


def _parallel_prepare(sim: SimSystem, rec: Record) -> None:
    def drift(s: SimSystem) -> None:
        s.battery.packs[1].inject_cell_drift(7, 10.0)

    sim.at(TRIP_DRIFT, drift)


def _parallel_check(sim: SimSystem, rec: Record) -> list[str]:
    problems = []
    opened = relay_open_at(rec, 1, TRIP_DRIFT)
    if opened is None:
        return ["node 1 never tripped"]
    after = rec.between(opened.t + 5.0)
    max_ccl = sim.settings.strategy.max_charge_current_a
    max_dcl = sim.settings.strategy.max_discharge_current_a
    if any(s.dcl > max_dcl / 2 + 0.1 or s.ccl > max_ccl / 2 + 0.1 for s in after):
        problems.append("limits not scaled to the one string left after node 1 tripped")
    if not all(s.relays[0] for s in after):
        problems.append("the healthy string lost its relay")
    if any(s.relays[1] for s in after):
        problems.append("the tripped node closed its relay again without a reset")
    if Alarm.NODE_TRIPPED.value not in rec.alarms_seen:
        problems.append("no node-tripped alarm")
    if not any(kind == "node_tripped" for _, kind, _ in rec.events):
        problems.append("no node-tripped event")
    return problems


scenario(
    Scenario(
        "parallel-trip",
        "two parallel strings; a cell of one drifts until its node trips: limits fall to the "
        "remaining string, the tripped relay stays open, the healthy one stays closed",
        duration=1800.0,
        setup=_parallel_setup,
        prepare=_parallel_prepare,
        check=_parallel_check,
    )
)


# ------------------------------------------------------------------ periodic full charge


def _periodic_setup() -> SimSetup:
    rng = random.Random(3)
    setup = base_setup(
        soc=0.5,
        start_hour=6.0,
        pv=SolarDay(peak_w=5000.0, cloudiness=0.0, rng=rng, start_h=6.0),
        load=HouseholdLoad(start_h=6.0, rng=rng),
        gateway={"strategy": {"phases": {"full_charge_interval_days": 7.0}}},
        initial_soc_known=True,
    )
    # The gateway remembers its last full charge eight days ago: one is due today.
    start = SimSystem.epoch(setup)
    setup.gateway_state = {
        "strategy": StrategyState(last_full_charge=start - 8 * 86400.0).to_dict(),
    }
    return setup


def _periodic_check(sim: SimSystem, rec: Record) -> list[str]:
    problems = []
    if Phase.FULL_CHARGE.value not in rec.phases_seen:
        problems.append(f"no full charge (phases: {sorted(rec.phases_seen)})")
    full_v = sim.core.chemistry.full_charge_v if sim.core else 3.55
    if sim.truth.max_cell_v > full_v + 0.02:
        problems.append(f"a cell reached {sim.truth.max_cell_v:.3f} V in the full charge")
    if sim.core is None or sim.core.soc_state.last_full is None:
        problems.append("the SoC was not recalibrated to 100 %")
    return problems


scenario(
    Scenario(
        "periodic-full-charge",
        "a full charge is due every day: the battery is taken to the full-charge voltage for "
        "SoC recalibration and top balancing, then back to normal",
        duration=14 * 3600.0,
        setup=_periodic_setup,
        check=_periodic_check,
    )
)


# ------------------------------------------------------------------ a week


SOC_ERROR_LIMIT = 4.0  # %, after the first day (the start is a rough voltage estimate)


def _week_setup() -> SimSetup:
    rng = random.Random(11)
    return base_setup(
        soc=0.5,
        start_hour=0.0,
        pv=SolarDay(peak_w=6000.0, cloudiness=0.4, rng=rng, start_h=0.0),
        load=HouseholdLoad(start_h=0.0, rng=rng),
        inverter=SimInverterSettings(),
    )


def rise_episodes(values: list[float]) -> int:
    """How many times a limit starts rising (a ramp of many small steps is one episode)."""
    episodes, rising = 0, False
    for a, b in itertools.pairwise(values):
        if b > a and not rising:
            episodes += 1
        rising = b > a if b != a else rising and b == a
    return episodes


def _week_check(sim: SimSystem, rec: Record) -> list[str]:
    problems = []
    errors = [
        abs(s.soc_gateway - s.soc_true)
        for s in rec.between(86400.0)
        if not math.isnan(s.soc_gateway)
    ]
    worst = max(errors, default=math.inf)
    rec.values["soc_error_max"] = worst
    if worst > SOC_ERROR_LIMIT:
        problems.append(f"SoC error reached {worst:.1f} % after the first day")
    allowed = sim.settings.strategy.limits.max_increases_per_hour
    busiest = 0
    for hour in range(int(rec.samples[-1].t // 3600)):
        window = rec.between(hour * 3600.0, (hour + 1) * 3600.0)
        for name in ("ccl", "dcl"):
            episodes = rise_episodes([getattr(s, name) for s in window])
            busiest = max(busiest, episodes)
            if episodes > allowed:
                problems.append(f"{name.upper()} started rising {episodes} times in hour {hour}")
    rec.values["most_rises_per_hour"] = busiest
    return problems


scenario(
    Scenario(
        "week",
        "seven days of sun, clouds and household load: SoC stays close to the truth and the "
        "limits do not flap",
        duration=7 * 86400.0,
        setup=_week_setup,
        check=_week_check,
        slow=True,
    )
)

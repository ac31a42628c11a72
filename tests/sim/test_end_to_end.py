"""End to end on python-can's virtual bus: the real firmware core as nodes in two parallel
strings, the real gateway core, the simulated inverter. Charge to float; then a cell of one
string drifts until its node trips: the limits fall to one string, the gateway stops asking
that node to close, the healthy string carries on."""

from __future__ import annotations

from gateway.contracts.decision import Phase, RelayAction
from gateway.sim.power import Constant
from gateway.sim.scenarios import Record, base_setup
from gateway.sim.system import SimSystem

CAPACITY_AH = 20.0
MAX_A = 0.5 * CAPACITY_AH * 2  # the gateway's limit for two strings


def build() -> tuple[SimSystem, Record]:
    setup = base_setup(
        strings=[[0], [1]],
        capacity_ah=CAPACITY_AH,
        soc=0.8,
        soc_spread=0.01,
        pv=Constant(2000.0),
        load=Constant(0.0),
        gateway={"strategy": {"phases": {"absorption_max_s": 1200.0}}},
    )
    sim = SimSystem(setup, seed=5)
    record = Record()
    sim.observers.append(record.observe)
    return sim, record


def test_two_strings_charge_to_float_then_one_trips() -> None:
    sim, record = build()
    with sim:
        sim.run(
            4 * 3600.0,
            until=lambda s: (
                s.core is not None
                and s.core.decision is not None
                and s.core.decision.phase == Phase.FLOAT
            ),
        )
        core = sim.core
        assert core is not None
        assert core.decision is not None and core.decision.phase == Phase.FLOAT, (
            f"no float after 4 h: {sorted(record.phases_seen)}"
        )
        target = core.chemistry.charge_target_v
        assert sim.truth.max_cell_v <= target + 0.02
        assert all(n.hw.relay_closed for n in sim.nodes.values())
        charged = [s for s in record.samples if s.current > 1.0]
        assert charged, "the inverter never charged"
        assert max(s.ccl for s in record.samples) <= MAX_A + 1e-6

        # Now a cell of node 1 drifts high (a failing cell, a stuck balancer) until the node
        # trips at its own fault level.
        drift_at = sim.t
        sim.battery.packs[1].inject_cell_drift(7, 5.0)
        sim.run(3600.0, until=lambda s: not s.nodes[1].hw.relay_closed)
        assert not sim.nodes[1].hw.relay_closed, "node 1 never opened its relay"
        tripped_at = sim.t
        fault_v = sim.nodes[1].settings["cell_over_mv"][2] / 1000
        assert sim.truth.max_cell_v <= fault_v + 0.05
        sim.run(30.0)

        after = record.between(tripped_at + 5.0)
        assert after
        # Limits fall to what one string may carry, and the healthy string stays closed.
        assert all(s.ccl <= MAX_A / 2 + 0.1 and s.dcl <= MAX_A / 2 + 0.1 for s in after)
        assert all(s.relays == (True, False) for s in after)
        # The gateway no longer asks the tripped node to close (and keeps node 0 closed).
        decision = core.decision
        assert decision is not None
        requests = {r.node: r.action for r in decision.relay}
        assert requests.get(1) != RelayAction.CLOSE
        assert requests.get(0, RelayAction.CLOSE) == RelayAction.CLOSE
        assert any(kind == "node_tripped" for t, kind, _ in record.events if t >= drift_at)

"""The demo runs as an installation should: gateway and nodes share a command key, so every
relay close and reset is authenticated (bms.auth) and the nodes close on verified frames."""

from __future__ import annotations

from gateway.sim.scenarios import DEMO_COMMAND_KEY, SCENARIOS


def test_the_demo_closes_its_relays_on_authenticated_commands() -> None:
    sim, _record = SCENARIOS["demo"].build(0, bus="memory")
    with sim:
        assert sim.settings.battery.command_key == DEMO_COMMAND_KEY
        sim.run(120.0)
        for node in sim.nodes.values():
            commands = node.node.commands
            assert commands.key == bytes.fromhex(DEMO_COMMAND_KEY)
            assert commands.mac_failures == 0
            assert node.hw.relay_closed, f"node {node.node_id} did not close"

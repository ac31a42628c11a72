"""Simulation building blocks: battery physics, a simulated hybrid inverter, power over the day.

Pure and deterministic: no CAN bus, no threads, no wall clock. Time is passed in (seconds),
randomness comes only from a `random.Random` the caller gives. The system simulator wires
them with the firmware nodes and the gateway, once per tick of `dt` simulated seconds:

    rng = random.Random(seed)
    battery = Battery.build(rng, strings=[[0], [1]], cells_per_node=16, soc=0.5)
    inverter = SimInverter(SimInverterSettings())
    pv, load = SolarDay(peak_w=6000, cloudiness=0.3, rng=rng), HouseholdLoad()

    # per tick: physics -> node readings; node outputs -> physics; frames both ways
    battery.set_relay(node, closed)                 # node's relay output
    battery.packs[node].balance_mask = mask         # node's balancer outputs
    inverter.on_frame(frame_id, data, now)          # gateway's Pylontech frames
    frames = inverter.due_frames(now)               # its 0x305 keepalive
    current = inverter.step(now, battery.bus_voltage, pv(now), load(now))
    battery.step(dt, current)
    pack = battery.packs[node]                      # readings for the node's hardware
    pack.cell_voltages(), pack.temperatures(), pack.voltage, pack.measured_current_a

Details: gateway.sim.physics, gateway.sim.inverter, gateway.sim.power.
"""

from gateway.sim.inverter import SimInverter, SimInverterSettings
from gateway.sim.physics import Battery, Cell, CellParams, Pack
from gateway.sim.power import Constant, HouseholdLoad, PowerCurve, SolarDay

__all__ = [
    "Battery",
    "Cell",
    "CellParams",
    "Constant",
    "HouseholdLoad",
    "Pack",
    "PowerCurve",
    "SimInverter",
    "SimInverterSettings",
    "SolarDay",
]

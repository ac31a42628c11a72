"""Simulation building blocks: battery physics, a simulated hybrid inverter, day profiles.

Pure and deterministic: no CAN bus, no threads, no wall clock. Time is passed in (seconds),
randomness comes only from a `random.Random` the caller gives. The system simulator wires
these with the firmware nodes and the gateway; see each module's docstring for its API.
"""

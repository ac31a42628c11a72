"""moat-bms gateway: turns battery-node CAN frames into one battery and tells the inverter
its limits."""

__version__ = "0.1.0"

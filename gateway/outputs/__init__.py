"""Outputs: what the gateway tells the world.

The inverter's CAN frames (gateway/outputs/inverter, to come with the layout change) are
produced synchronously by the core in every tick. Every other output (Venus OS D-Bus, MQTT)
implements the small `Output` interface of gateway/outputs/seam.py: it is handed a
`BatteryView` after every tick and does its own I/O in a task of its own.
"""

from gateway.outputs.seam import BatteryView, Output

__all__ = ["BatteryView", "Output"]

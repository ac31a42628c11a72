"""The charge strategy: from a battery snapshot and the SoC to the inverter's limits, the
charge phase, alarms, and balancing and relay requests for the nodes.

One small module per concern; ChargeController (controller.py) runs them in order.
Pure logic: no I/O, no clock (time comes with the snapshot), no threads.
"""

from gateway.strategy.controller import ChargeController
from gateway.strategy.settings import StrategySettings
from gateway.strategy.state import StrategyState

__all__ = ["ChargeController", "StrategySettings", "StrategyState"]

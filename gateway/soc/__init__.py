"""State of charge: the estimator (coulomb counting, recalibrated at the ends of the charge),
its settings and its saved state. Reads a BatterySnapshot; the strategy reads its SocState."""

from gateway.soc.estimator import SocEstimator
from gateway.soc.settings import SocSettings
from gateway.soc.state import SocSource, SocState

__all__ = ["SocEstimator", "SocSettings", "SocSource", "SocState"]

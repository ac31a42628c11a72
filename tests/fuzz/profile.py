"""How hard the fuzzers try: a quick run in `make test`, a long one with MOAT_BMS_FUZZ=long
(`make soak` sets it).

Every fuzz test uses `fuzz(examples)`: `examples` cases normally, LONG_FACTOR times as many
in the long run. The tests tally the frames they fed in FRAMES; pytest prints the tally.
"""

from __future__ import annotations

import os
from collections import Counter

from hypothesis import HealthCheck, settings

LONG = os.environ.get("MOAT_BMS_FUZZ", "").lower() == "long"
LONG_FACTOR = 20

FRAMES: Counter[str] = Counter()  # frames fuzzed, by target


def fuzz(examples: int) -> settings:
    """Hypothesis settings for a fuzz test of `examples` cases (more in the long run)."""
    return settings(
        max_examples=examples * LONG_FACTOR if LONG else examples,
        deadline=None,
        derandomize=not LONG,  # the quick run is reproducible; the long one explores
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )

"""Record (or check) the golden candump logs: fixed scenarios, fixed seed, every frame of both
buses. tests/sim/test_golden.py replays the same runs and requires the same bytes, so a change
meant to keep behaviour (moving code, speeding it up) is shown to keep every frame.

A change that is meant to alter frames re-records them (`make golden`) and says why in its
commit message.

    python -m tools.record_golden            # write tests/files/golden/*.log.gz
    python -m tools.record_golden --check    # exit 1 when a run differs from its file
"""

from __future__ import annotations

import argparse
import gzip
import io
import sys
from pathlib import Path

from gateway.sim.scenarios import SCENARIOS

GOLDEN = Path(__file__).resolve().parent.parent / "tests" / "files" / "golden"
SEED = 7
# A trip with four nodes and two strings (relays, balancing, derating to one string) and a
# gateway killed and restarted from its state file (persistence, SoC continuation).
RUNS = ("parallel-trip", "gateway-restart")


def record(name: str) -> str:
    """The candump log of the whole scenario, on the in-memory bus."""
    scenario = SCENARIOS[name]
    log = io.StringIO()
    sim, _record = scenario.build(SEED, bus="memory", log=log)
    with sim:
        sim.run(scenario.duration)
    return log.getvalue()


def path_of(name: str) -> Path:
    return GOLDEN / f"{name}.log.gz"


def load(name: str) -> str:
    return gzip.decompress(path_of(name).read_bytes()).decode("ascii")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args(argv)
    failed = 0
    for name in RUNS:
        text = record(name)
        if args.check:
            same = path_of(name).exists() and load(name) == text
            print(f"{name}: {'same' if same else 'DIFFERS'}")
            failed += not same
            continue
        GOLDEN.mkdir(parents=True, exist_ok=True)
        # mtime=0: the same log gives the same file.
        path_of(name).write_bytes(gzip.compress(text.encode("ascii"), 9, mtime=0))
        print(f"{name}: {text.count(chr(10))} frames -> {path_of(name)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

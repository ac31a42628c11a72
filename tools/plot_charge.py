"""Plot the full-charge scenario (20 % to float) for docs/strategy.md.

    python -m tools.plot_charge [OUTPUT.png]

Runs the simulator's "full-charge" scenario (seed 0) and draws what the inverter was told
(CVL per cell, CCL) against the battery's truth (highest and lowest cell, current) and the
strategy's phase. `make docs` runs it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display needed
import matplotlib.pyplot as plt

from gateway.sim.scenarios import SCENARIOS

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT = ROOT / "docs" / "charge-20-to-float.png"
PHASE_COLOURS = {
    "bulk": "#dbe9f6",
    "absorption": "#fde2c8",
    "balancing": "#e4d4ef",
    "float": "#d5efd5",
    "full_charge": "#f8d0d0",
    "stopped": "#eeeeee",
}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    output = Path(args[0]) if args else DEFAULT_OUTPUT
    scenario = SCENARIOS["full-charge"]
    sim, record = scenario.build(0)
    with sim:
        sim.run(scenario.duration)
        problems = scenario.check(sim, record)
        cells = sim.setup.cells_per_node * len(sim.setup.strings[0])
        target = sim.core.chemistry.charge_target_v if sim.core else None
    if problems:
        print(f"full-charge checks failed: {problems}", file=sys.stderr)
        return 1
    s = [x for x in record.samples if x.cvl == x.cvl]  # from the first limits frame on
    hours = [x.t / 3600 for x in s]
    fig, (volts, amps) = plt.subplots(2, 1, figsize=(9, 6), sharex=True, dpi=100)
    volts.plot(hours, [x.max_cell for x in s], label="highest cell", color="#c0392b")
    volts.plot(hours, [x.min_cell for x in s], label="lowest cell", color="#2471a3")
    volts.plot(hours, [x.cvl / cells for x in s], label="CVL / cells", color="#7d7d7d", ls="--")
    if target is not None:
        volts.axhline(target, color="#c0392b", lw=0.8, ls=":", label=f"cell target {target} V")
    volts.set_ylabel("V per cell")
    volts.set_ylim(3.2, 3.65)
    volts.legend(loc="lower right", fontsize=8)
    amps.plot(hours, [x.ccl for x in s], label="CCL sent", color="#7d7d7d", ls="--")
    amps.plot(hours, [x.current for x in s], label="battery current", color="#1e8449")
    amps.set_ylabel("A")
    amps.set_xlabel("hours")
    amps.legend(loc="upper right", fontsize=8)
    for ax in (volts, amps):
        start = 0
        for i in range(1, len(s) + 1):
            if i == len(s) or s[i].phase != s[start].phase:
                colour = PHASE_COLOURS.get(s[start].phase, "#ffffff")
                ax.axvspan(hours[start], hours[i - 1], color=colour, lw=0)
                if ax is volts and hours[i - 1] - hours[start] > 0.15:
                    mid = (hours[start] + hours[i - 1]) / 2
                    ax.text(mid, 3.62, s[start].phase, ha="center", fontsize=8)
                start = i
    volts.set_title("full-charge scenario: 16s LFP, 20 Ah, 20 % to float, imbalanced cells")
    fig.tight_layout()
    fig.savefig(output)
    print(f"wrote {output.relative_to(ROOT) if output.is_relative_to(ROOT) else output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

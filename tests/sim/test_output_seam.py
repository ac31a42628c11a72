"""The output seam (gateway/outputs/seam.py): every output is told each tick's result and the
events as they happen, across a gateway restart, without changing what goes on the buses."""

from __future__ import annotations

from gateway.contracts.decision import Phase
from gateway.outputs import BatteryView
from gateway.sim.scenarios import SCENARIOS


class Recorder:
    """An output that keeps what it is told (its run() has no I/O to do)."""

    name = "recorder"

    def __init__(self) -> None:
        self.views: list[BatteryView] = []

    def publish(self, view: BatteryView) -> None:
        self.views.append(view)

    async def run(self) -> None:  # pragma: no cover - nothing to run
        return None

    def describe(self) -> str:
        return f"{len(self.views)} views"


def test_an_output_sees_every_tick_and_every_event_once_across_a_restart() -> None:
    scenario = SCENARIOS["gateway-restart"]
    sim, _record = scenario.build(1, bus="memory")
    out = Recorder()
    sim.outputs.append(out)
    with sim:
        sim.run(scenario.duration)
        core = sim.core
        assert core is not None
        assert out.views, "no view published"
        times = [v.time for v in out.views]
        assert times == sorted(times)
        last = out.views[-1]
        assert last.decision is core.decision and last.snapshot is core.snapshot
        assert last.report is core.report and last.soc == core.soc_state
        assert last.decision.phase is not Phase.STOPPED
        kinds = [e.kind for v in out.views for e in v.events]
        # Two starts (the gateway is killed and started again), each event handed over once.
        assert kinds.count("start") == 2
        told = [e for v in out.views for e in v.events if e.time >= core.started]
        assert told == [e for e in core.events.events if e.time >= core.started]

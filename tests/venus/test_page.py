"""A D-Bus that is not there: the output retries with a doubling back-off, never raises into
the gateway, and the API's status (what the web page shows) says so."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import pytest

from gateway.outputs import Output
from gateway.outputs.venus.service import VenusOutput
from gateway.outputs.venus.settings import VenusSettings
from tests.web.bench import Bench, BenchHost
from tests.web.conftest import T0, client_for

pytestmark = pytest.mark.anyio


@dataclass
class HostWithOutputs(BenchHost):
    outputs: list[Output] = field(default_factory=list)


async def test_a_missing_bus_is_retried_with_back_off_and_shown(tmp_path: Path) -> None:
    bench = Bench(now=T0, soc=0.8, soc_spread=0.02)
    bench.run(T0 + 60, 5.0)
    venus = VenusSettings(bus=f"unix:path={tmp_path / 'no-bus'}", retry_min_s=0.05, retry_max_s=0.2)
    output = VenusOutput(
        venus,
        bench.settings.battery.topology,
        bench.settings.inverter,
        "CAN",
        tmp_path / "state.json",
    )
    view, _ = bench.core.view(0)
    assert view is not None
    output.publish(view)
    host = HostWithOutputs(bench, outputs=[output])
    delays: list[float] = []
    async with anyio.create_task_group() as tg:
        tg.start_soon(output.run)
        seen = ""
        with anyio.fail_after(10):
            while len(delays) < 3:
                if output.status != seen:
                    seen = output.status
                    match = re.search(r"retrying in ([0-9.]+) s", seen)
                    if match:
                        delays.append(float(match.group(1)))
                await anyio.sleep(0.005)
            await anyio.sleep(0.5)  # a few more attempts: the delay stays at its cap
            while (match := re.search(r"retrying in ([0-9.]+) s", output.status)) is None:
                await anyio.sleep(0.005)
            delays.append(float(match.group(1)))
        async with client_for(host) as client:
            status = (await client.get("/api/status")).json()
        tg.cancel_scope.cancel()
    assert not output.registered
    assert delays == [0.05, 0.1, 0.2, 0.2]  # doubling, capped
    (shown,) = status["outputs"]
    assert shown["name"] == "venus"
    assert "no-bus" in shown["status"] and "retrying in" in shown["status"]

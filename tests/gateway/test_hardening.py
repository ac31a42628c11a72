"""Issue 13, gateway hardening: one test per numbered item, named after it (docs/safety.md
lists them with their bounds). Logic is driven by simulated time; the wall clock is a fake."""

from __future__ import annotations

import time
from pathlib import Path

import can
import pytest

from gateway.config import validate
from gateway.core import GatewayCore
from gateway.events import EventKind
from gateway.service import Gateway
from gateway.snapshot import NodeState
from tests.gateway import nodeframes as nf

CELLS = 16


def settings(tmp_path: Path | None = None, **extra: object):
    data: dict[str, object] = {
        "battery": {"topology": {"strings": [[0]], "cells_per_node": CELLS, "capacity_ah": 100}},
        "inverter": {"profile": "pylontech", "startup_grace": 5, "keepalive_timeout": 3},
        "web": {"enabled": False},
    }
    if tmp_path is not None:
        data["persistence"] = {"state_file": str(tmp_path / "state.json")}
    data.update(extra)
    return validate(data)


def node_frames(
    counter: int, *, vmin: float = 3.30, vmax: float = 3.35, state: int = NodeState.ACTIVE
) -> list[tuple[int, bytes]]:
    return [
        nf.node_state(0, counter, state=int(state), relay=1),
        nf.pack_status(0, CELLS * (vmin + vmax) / 2, 0.0),
        nf.cell_extremes(0, vmin, vmax),
        nf.temperature_extremes(0, 20.0, 22.0),
    ]


# ---------------------------------------------------------------------- item 1


class SteppedTime:
    """time.time and time.monotonic as a host sees them: the wall clock can be stepped."""

    def __init__(self) -> None:
        self.wall = 1_800_000_000.0
        self.mono = 5_000.0

    def advance(self, seconds: float) -> None:
        self.wall += seconds
        self.mono += seconds

    def time(self) -> float:
        return self.wall

    def monotonic(self) -> float:
        return self.mono


def test_item01_staleness_uses_a_monotonic_clock_when_the_wall_clock_steps(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    fake = SteppedTime()
    monkeypatch.setattr(time, "time", fake.time)
    monkeypatch.setattr(time, "monotonic", fake.monotonic)
    gateway = Gateway(settings(tmp_path))  # the default clock, as `moat-bms run` uses it
    counter = 0

    def feed(seconds: float) -> None:
        nonlocal counter
        for _ in range(round(seconds / 0.1)):
            counter += 1
            gateway.on_battery_batch(
                [
                    can.Message(arbitration_id=i, data=d, is_extended_id=False)
                    for i, d in node_frames(counter)
                ]
            )
            fake.advance(0.1)
            gateway.tick()

    feed(120.0)
    assert gateway.core.decision is not None and gateway.core.decision.limits.ccl > 0

    # The wall clock steps back an hour (NTP, an RTC fix) and the only node dies: the node
    # must go stale after node_timeout_s of real time, not after an hour.
    timeout = gateway.settings.timing.node_timeout_s
    fake.wall -= 3600.0
    fake.advance(timeout + 0.2)
    gateway.tick()
    assert gateway.core.decision.limits.ccl == 0
    assert gateway.core.decision.limits.dcl == 0
    assert not gateway.core.snapshot.valid

    # Back, and the wall clock steps forward an hour: a live node is not stale.
    feed(120.0)
    assert gateway.core.decision.limits.ccl > 0
    missing_before = sum(e.kind == EventKind.NODE_MISSING for e in gateway.core.events.events)
    fake.wall += 3600.0
    feed(1.0)
    assert gateway.core.snapshot.valid and gateway.core.decision.limits.ccl > 0
    missing_after = sum(e.kind == EventKind.NODE_MISSING for e in gateway.core.events.events)
    assert missing_after == missing_before

    # Display: the page adds the offset to show the core's times as wall-clock times.
    assert gateway.wall_offset() == pytest.approx(0.0, abs=0.01)  # stepped back, then on
    fake.wall -= 600.0
    assert gateway.wall_offset() == pytest.approx(-600.0, abs=0.01)


def test_item01_saved_times_from_the_future_are_clamped_after_a_restart() -> None:
    # A restart after the wall clock went back: the last full charge "in the future" must not
    # postpone the periodic full charge by the step.
    now = 1_800_000_000.0
    future = {
        "strategy": {
            "version": 1,
            "phase": "bulk",
            "absorption_completed": False,
            "last_full_charge": now + 30 * 86400.0,
            "full_charge_from": now + 30 * 86400.0,
            "full_charge_requested": False,
        }
    }
    core = GatewayCore(settings(), now, future)
    core.tick(now + 1.0)
    assert core.controller.state.last_full_charge is not None
    assert core.controller.state.last_full_charge <= now + 1.0


# ---------------------------------------------------------------------- item 2


class CoreRig:
    """GatewayCore fed with one LFP node's frames over simulated time."""

    def __init__(self, state: dict | None = None, **extra: object) -> None:
        self.t = 1000.0
        self.core = GatewayCore(settings(**extra), self.t, state)
        self.counter = 0

    def frames(self, **kw: object) -> bool:
        self.counter += 1
        urgent = False
        for frame in node_frames(self.counter, **kw):  # type: ignore[arg-type]
            urgent |= self.core.on_battery_frame(*frame, self.t)
        return urgent

    def tick(self, dt: float = 0.1):
        self.t += dt
        return self.core.tick(self.t)

    def run(self, seconds: float, dt: float = 0.1, **kw: object) -> None:
        for _ in range(round(seconds / dt)):
            self.frames(**kw)
            self.tick(dt)


def test_item02_a_cell_voltages_frame_over_the_limit_stops_charging_in_the_urgent_tick() -> None:
    rig = CoreRig()
    rig.run(120.0)
    assert rig.core.decision is not None and rig.core.decision.limits.ccl > 0
    # CellExtremes still says 3.35 V; the CellVoltages frame shows cell 3 at 3.70 V.
    frame_id, data = nf.cell_voltages(0, 0, (3.33, 3.34, 3.70, 3.33))
    assert rig.core.on_battery_frame(frame_id, data, rig.t)  # urgent
    rig.tick(0.001)
    snap = rig.core.snapshot
    assert snap.max_cell == pytest.approx(3.70)
    assert snap.max_cell_at is not None and (snap.max_cell_at.node, snap.max_cell_at.cell) == (0, 3)
    assert rig.core.decision.limits.ccl == 0
    assert rig.core.decision.limits.dcl > 0
    # The CellExtremes frames that follow (3.35 V) do not hide the fresh cell reading.
    rig.frames()
    rig.tick(0.1)
    assert rig.core.decision.limits.ccl == 0


def test_item02_a_low_cell_in_cell_voltages_stops_discharging() -> None:
    rig = CoreRig()
    rig.run(120.0)
    frame_id, data = nf.cell_voltages(0, 1, (3.30, 2.40, 3.30, 3.30))
    assert rig.core.on_battery_frame(frame_id, data, rig.t)
    rig.tick(0.001)
    assert rig.core.snapshot.min_cell == pytest.approx(2.40)
    assert rig.core.decision is not None and rig.core.decision.limits.dcl == 0

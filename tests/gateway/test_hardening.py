"""Issue 13, gateway hardening: one test per numbered item, named after it (docs/safety.md
lists them with their bounds). Logic is driven by simulated time; the wall clock is a fake."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from gateway.config.root import ConfigError, validate
from gateway.contracts.frame import Frame
from gateway.contracts.snapshot import NodeState
from gateway.core import GatewayCore
from gateway.record.events import EventKind
from gateway.runtime.service import Gateway
from gateway.sim import nodeframes as nf

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
) -> list[Frame]:
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
            gateway.on_battery_batch(node_frames(counter))
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
            urgent |= self.core.on_battery_frame(frame, self.t)
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
    frame = nf.cell_voltages(0, 0, (3.33, 3.34, 3.70, 3.33))
    assert rig.core.on_battery_frame(frame, rig.t)  # urgent
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
    frame = nf.cell_voltages(0, 1, (3.30, 2.40, 3.30, 3.30))
    assert rig.core.on_battery_frame(frame, rig.t)
    rig.tick(0.001)
    assert rig.core.snapshot.min_cell == pytest.approx(2.40)
    assert rig.core.decision is not None and rig.core.decision.limits.dcl == 0


# ---------------------------------------------------------------------- item 3


def check(data: dict) -> list[str]:
    """The problems `config check`, `run` and the web page report for `data` ([] = valid)."""
    try:
        validate(data)
    except ConfigError as exc:
        return exc.problems
    return []


LFP_PACK = {"battery": {"chemistry": "lfp", "topology": {"capacity_ah": 100}}}


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"strategy": {"voltages": {"charge_target_v": 5.0}}}, "strategy.voltages.charge_target_v"),
        (
            {"strategy": {"voltages": {"charge_target_v": 3.78, "full_charge_v": 3.79}}},
            "strategy.voltages.charge_target_v",
        ),
        ({"strategy": {"max_charge_current_a": 10_000}}, "strategy.max_charge_current_a"),
        ({"strategy": {"max_charge_current_a": 1e308}}, "strategy.max_charge_current_a"),
        ({"strategy": {"max_discharge_current_a": 3000}}, "strategy.max_discharge_current_a"),
        ({"strategy": {"dvl_cell_v": 0.5}}, "strategy.dvl_cell_v"),
        ({"strategy": {"relays": {"open_after_s": 1e9}}}, "strategy.relays.open_after_s"),
        ({"strategy": {"limits": {"ramp_a_per_s": 1e9}}}, "strategy.limits.ramp_a_per_s"),
        ({"inverter": {"dvl": 20.0}}, "inverter.dvl"),
    ],
)
def test_item03_dangerous_settings_are_refused_naming_the_key(data: dict, key: str) -> None:
    problems = check({**LFP_PACK, **data})
    assert problems, f"{data} was accepted"
    assert any(p.startswith(key) for p in problems), problems


def test_item03_a_stated_pack_rating_allows_more_and_limits_stay_within_it() -> None:
    rated = {
        "battery": {
            "topology": {"capacity_ah": 100, "strings": [[0]], "cells_per_node": CELLS},
            "rating": {"charge_current_a": 200},
        },
        "strategy": {"max_charge_current_a": 200},
    }
    assert check(rated) == []
    # The default 100 A on a 50 Ah LFP pack: bounded to 1 C, not refused.
    small = validate({"battery": {"topology": {"capacity_ah": 50, "cells_per_node": CELLS}}})
    assert small.bounded_strategy().max_charge_current_a == 50
    core = GatewayCore(small, 1000.0)
    assert core.controller.settings.max_charge_current_a == 50
    assert core.controller.settings.max_discharge_current_a == 50


@pytest.mark.parametrize(
    ("info_cells", "info_chemistry", "named"),
    [(CELLS, 1, ("NMC", "LFP")), (CELLS - 1, 0, ("15 cells", "configured 16"))],
)
def test_item03_node_info_mismatch_stops_charging_with_an_alarm_naming_both(
    info_cells: int, info_chemistry: int, named: tuple[str, str]
) -> None:
    from gateway.codec import moat_bms as codec  # noqa: PLC0415
    from gateway.contracts.decision import Alarm, Severity  # noqa: PLC0415

    rig = CoreRig()
    rig.run(120.0)
    assert rig.core.decision is not None and rig.core.decision.limits.ccl > 0
    info = codec.encode_node_info(codec.NodeInfo(0, 1, 0, info_cells, 4, info_chemistry, 100.0))
    rig.core.on_battery_frame(Frame(codec.FRAME_IDS["NodeInfo"], info), rig.t)
    rig.run(1.0)
    decision = rig.core.decision
    assert decision.limits.ccl == 0 and not decision.limits.charge_enable
    assert decision.alarms[Alarm.SYSTEM] == Severity.ALARM
    note = " ".join(decision.notes)
    assert all(word in note for word in named), note
    event = [e.message for e in rig.core.events.events if "mismatch" in e.message]
    assert event and all(word in event[-1] for word in named)


# ---------------------------------------------------------------------- item 4


ITEM04_FILES = {
    "min_cell_v_only": "strategy:\n  voltages:\n    min_cell_v: 3.6\n",
    "charge_target_low": "strategy:\n  voltages:\n    charge_target_v: 2.8\n",
    "infinite_current": "strategy:\n  max_charge_current_a: .inf\n",
    "nan_timeout": "timing:\n  node_timeout_s: .nan\n",
    "charge_target_5v": "strategy:\n  voltages:\n    charge_target_v: 5.0\n",
}


@pytest.mark.parametrize("name", sorted(ITEM04_FILES))
def test_item04_config_check_and_run_refuse_the_same_files_with_exit_2_and_no_traceback(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from gateway.cli import main  # noqa: PLC0415

    path = tmp_path / f"{name}.yaml"
    path.write_text(ITEM04_FILES[name] + f"persistence:\n  state_file: {tmp_path}/state.json\n")
    key = ITEM04_FILES[name].split(":")[0]
    for argv in (["config", "check", str(path)], ["run", "--config", str(path), "--no-web"]):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert "Traceback" not in err
        assert key in err, err
    assert not (tmp_path / "state.json").exists()  # run never started


# ---------------------------------------------------------------------- item 5


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("strategy:\n  max_charge_current_a: 50\n  max_charge_current_a: 900\n", "line 3"),
        ("battery:\n  chemistry: lfp\nbattery:\n  chemistry: nmc\n", "given twice"),
        ("a: &a [1, 1]\nb: &b [*a, *a]\n", "aliases"),
        ("strategy: " + "[" * 5000 + "]" * 5000 + "\n", "nested deeper"),
        ("strategy: " + "{a: " * 2000 + "1" + "}" * 2000 + "\n", "nested deeper"),
    ],
    ids=["duplicate-line", "duplicate-section", "alias", "deep-list", "deep-map"],
)
def test_item05_duplicate_keys_aliases_and_deep_nesting_are_clear_errors(
    text: str, reason: str, tmp_path: Path
) -> None:
    from gateway.config.root import load_config  # noqa: PLC0415

    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert reason in str(caught.value), str(caught.value)
    assert "line" in str(caught.value)


def test_item05_an_alias_bomb_is_refused_at_once(tmp_path: Path) -> None:
    from gateway.config.root import load_config  # noqa: PLC0415

    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 9)]
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(lines) + "\n")
    start = time.process_time()
    with pytest.raises(ConfigError, match="aliases"):
        load_config(path)
    assert time.process_time() - start < 1.0


# ---------------------------------------------------------------------- item 6


@pytest.mark.parametrize(
    "content",
    [
        bytes(range(256)) * 4,
        b"\xff\xfe\x00garbage",
        b"[" * 200_000 + b"]" * 200_000,
        b'{"format": 1, "state": ' + b'{"a": ' * 100_000 + b"1" + b"}" * 100_001,
    ],
    ids=["binary", "bad-utf8", "deep-list", "deep-object"],
)
def test_item06_a_corrupt_state_file_is_kept_aside_and_the_gateway_starts_from_defaults(
    content: bytes, tmp_path: Path
) -> None:
    state = tmp_path / "state.json"
    state.write_bytes(content)
    gateway = Gateway(settings(tmp_path))  # must not raise
    assert gateway.core.soc_state.source.value == "none"
    kept = [p for p in tmp_path.iterdir() if p.name.startswith("state.json.bad-")]
    assert len(kept) == 1 and kept[0].read_bytes() == content
    assert not state.exists()


# ---------------------------------------------------------------------- item 10


def test_item10_a_flapping_cause_is_folded_and_never_evicts_other_events() -> None:
    from gateway.codec import moat_bms as codec  # noqa: PLC0415
    from gateway.contracts.decision import Alarm  # noqa: PLC0415

    rig = CoreRig()
    rig.run(30.0)
    rig.core.request_full_charge(rig.t)  # an event the flood must not evict
    # A duplicate node id: two senders answer as node 0, one with 16 cells, one with 15,
    # so the configuration mismatch (SYSTEM alarm) flaps on every frame for ten minutes.
    ccl = []
    for i in range(6000):
        cells = CELLS if i % 2 else CELLS - 1
        info = codec.encode_node_info(codec.NodeInfo(0, 1, 0, cells, 4, 0, 100.0))
        rig.core.on_battery_frame(Frame(codec.FRAME_IDS["NodeInfo"], info), rig.t)
        rig.frames()
        rig.tick(0.1)
        ccl.append(rig.core.decision.limits.ccl)
    assert set(ccl) == {0.0}  # held, not flapping with every other frame
    events = list(rig.core.events.events)
    kinds = [e.kind for e in events]
    assert EventKind.START in kinds
    assert any(e.kind == EventKind.USER and "full charge" in e.message for e in events)
    system = [e for e in events if "system" in e.message or "mismatch" in e.message]
    assert len(system) <= 12, [e.message for e in system]
    assert len(events) < 40
    assert Alarm.SYSTEM in rig.core.decision.alarms


def test_item10_the_event_log_keeps_first_and_last_of_a_burst_with_a_count() -> None:
    from gateway.record.events import EventLog  # noqa: PLC0415

    log = EventLog(size=20, burst_events=3, burst_quiet_s=60.0)
    log.add(0.0, EventKind.START, "started")
    for i in range(1000):
        log.add(1.0 + i * 0.02, EventKind.NODE_MISSING, "no fresh frames", 3)
    log.add(30.0, EventKind.USER, "full charge requested")
    messages = [e.message for e in log.events]
    assert messages[0] == "started"
    assert messages.count("no fresh frames") == 3
    assert "no fresh frames (and 997 more like it in this burst)" in messages
    assert messages[-1] == "full charge requested"
    # After a quiet minute the cause is recorded one by one again.
    log.add(200.0, EventKind.NODE_MISSING, "no fresh frames", 3)
    assert log.events[-1].message == "no fresh frames"


# ---------------------------------------------------------------------- item 11


@pytest.mark.parametrize("shared_bus", [True, False], ids=["shared-bus", "inverter-bus"])
def test_item11_another_device_sending_battery_limits_is_an_alarm_and_an_event(
    shared_bus: bool,
) -> None:
    from gateway.codec import pylontech_lv as inverter_codec  # noqa: PLC0415
    from gateway.contracts.decision import Alarm  # noqa: PLC0415

    extra: dict[str, object] = {}
    if not shared_bus:
        extra["buses"] = {"inverter": {"interface": "virtual", "channel": "inv"}}
    rig = CoreRig(**extra)
    rig.run(30.0)
    assert Alarm.SYSTEM not in rig.core.decision.alarms
    foreign = inverter_codec.encode_battery_limits(
        inverter_codec.BatteryLimits(58.0, 200.0, 200.0, 40.0)
    )
    limits_id = inverter_codec.FRAME_IDS["BatteryLimits"]
    for _ in range(50):
        if shared_bus:
            rig.core.on_battery_frame(Frame(limits_id, foreign), rig.t)
        else:
            rig.core.on_inverter_frame(Frame(limits_id, foreign), rig.t)
        rig.run(0.1)
    assert Alarm.SYSTEM in rig.core.decision.alarms
    told = [e for e in rig.core.events.events if "another device" in e.message]
    assert len(told) == 1 and "0x351" in told[0].message
    assert any("0x351" in n for n in rig.core.decision.notes)
    rig.run(20.0)  # it stopped: the alarm clears
    assert Alarm.SYSTEM not in rig.core.decision.alarms


# ---------------------------------------------------------------------- item 12


def test_item12_a_tripped_node_is_named_tripped_not_missing() -> None:
    from gateway.contracts.decision import Alarm  # noqa: PLC0415
    from gateway.contracts.snapshot import ProtectionKind  # noqa: PLC0415

    rig = CoreRig()
    rig.run(30.0)
    rig.counter += 1
    tripped = [
        nf.node_state(
            0,
            rig.counter,
            state=int(NodeState.TRIPPED),
            relay=0,
            faults=frozenset({ProtectionKind.CELL_OVER_VOLTAGE}),
        ),
        *node_frames(rig.counter)[1:],
    ]
    for _ in range(20):
        rig.counter += 1
        tripped[0] = nf.node_state(
            0,
            rig.counter,
            state=int(NodeState.TRIPPED),
            relay=0,
            faults=frozenset({ProtectionKind.CELL_OVER_VOLTAGE}),
        )
        for frame in tripped:
            rig.core.on_battery_frame(frame, rig.t)
        rig.tick(0.1)
    alarms = rig.core.decision.alarms
    assert Alarm.NODE_TRIPPED in alarms
    assert Alarm.NODE_MISSING not in alarms
    assert not any(e.kind == EventKind.NODE_MISSING for e in rig.core.events.events)
    # A silent node is missing.
    rig.tick(rig.core.settings.timing.node_timeout_s + 0.5)
    assert Alarm.NODE_MISSING in rig.core.decision.alarms


# ---------------------------------------------------------------------- seen as a new user


def test_new_user_config_example_marks_what_is_an_example_not_a_default() -> None:
    import yaml  # noqa: PLC0415

    from gateway.config.doc import EXAMPLE_OVERRIDES, example_yaml  # noqa: PLC0415

    text = example_yaml()
    validate(yaml.safe_load(text))  # still a valid file
    marked = [line for line in text.splitlines() if "# example; the default is" in line]
    assert len(marked) == len(EXAMPLE_OVERRIDES)
    assert any(line.strip().startswith("strings: [[0, 1], [2, 3]]") for line in marked)
    assert "except the lines" in text.split("\n\n")[0]


def test_new_user_a_virtual_bus_warns_that_other_processes_see_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from gateway.cli.options import warn_if_virtual  # noqa: PLC0415

    assert warn_if_virtual("moat-bms run", {"interface": "virtual", "channel": "x"})
    assert "only inside this process" in caplog.text and "vcan" in caplog.text
    assert "moat-bms sim" in caplog.text
    assert not warn_if_virtual("moat-bms run", {"interface": "socketcan", "channel": "vcan0"})


def test_new_user_phase_events_say_the_phase_once() -> None:
    rig = CoreRig()
    rig.run(60.0)
    phases = [e.message for e in rig.core.events.events if e.kind == EventKind.PHASE]
    assert phases and all(not m.startswith("phase ") for m in phases)
    assert "stopped -> bulk" in phases


def test_new_user_the_simulator_counts_sent_frames() -> None:
    from gateway.sim.system import SimSetup, SimSystem  # noqa: PLC0415

    with SimSystem(SimSetup(), seed=1, bus="memory") as sim:
        sim.run(5.0)
        core = sim.core
        assert core is not None
        assert core.battery_counters.sent > 0
        assert core.inverter_counters.sent > 0


def test_new_user_sim_simulates_the_battery_of_a_configuration_file(tmp_path: Path) -> None:
    import yaml  # noqa: PLC0415

    from gateway.cli import main  # noqa: PLC0415
    from gateway.config.root import load_config  # noqa: PLC0415
    from gateway.contracts.decision import Alarm  # noqa: PLC0415
    from gateway.sim.scenarios import SCENARIOS  # noqa: PLC0415

    path = tmp_path / "mine.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "battery": {
                    "chemistry": "nmc",
                    "topology": {"strings": [[0], [1]], "cells_per_node": 14, "capacity_ah": 50},
                },
                "inverter": {"profile": "victron"},
                "strategy": {"max_charge_current_a": 40},
            }
        )
    )
    sim, _ = SCENARIOS["demo"].build(1, config=load_config(path), bus="memory")
    with sim:
        sim.run(600.0)
        core = sim.core
        assert core is not None
        assert core.settings.battery.chemistry.value == "nmc"
        assert core.settings.battery.topology.cells_in_series == 14
        assert core.profile.name == "victron"
        assert core.decision is not None
        assert Alarm.SYSTEM not in core.decision.alarms  # the nodes match the file
        assert 0 < core.decision.limits.ccl <= 40
    bad = tmp_path / "bad.yaml"
    bad.write_text("battery:\n  topology:\n    strings: [[0]]\n    cells: {0: 8}\n")
    assert main(["sim", "--config", str(bad), "--no-web", "--no-view", "--duration", "1"]) == 2
    worse = tmp_path / "worse.yaml"
    worse.write_text("strategy:\n  voltages:\n    charge_target_v: 5.0\n")
    assert main(["sim", "--config", str(worse), "--no-web", "--no-view", "--duration", "1"]) == 2


def test_item02_a_node_state_warning_flag_stops_that_direction_in_the_urgent_tick() -> None:
    from gateway.contracts.snapshot import ProtectionKind  # noqa: PLC0415

    rig = CoreRig()
    rig.run(120.0)
    rig.counter += 1
    frame = nf.node_state(
        0, rig.counter, warnings=frozenset({ProtectionKind.CELL_OVER_VOLTAGE})
    )  # CellExtremes and CellVoltages still look normal
    assert rig.core.on_battery_frame(frame, rig.t)  # urgent
    rig.tick(0.001)
    assert rig.core.decision is not None
    assert rig.core.decision.limits.ccl == 0 and rig.core.decision.limits.dcl > 0


def test_item10_a_duplicate_node_id_is_named_once_and_the_log_keeps_the_rest() -> None:
    from gateway.contracts.decision import Alarm  # noqa: PLC0415

    rig = CoreRig()
    rig.run(30.0)
    rig.core.request_full_charge(rig.t)
    # Two nodes answer as node 0: their alive counters interleave for ten minutes.
    for i in range(6000):
        for counter in (i, i + 8):
            for frame in node_frames(counter):
                rig.core.on_battery_frame(frame, rig.t)
        rig.tick(0.1)
    assert Alarm.SYSTEM in rig.core.decision.alarms
    assert any("two nodes with id 0" in n for n in rig.core.decision.notes)
    events = list(rig.core.events.events)
    told = [e for e in events if "out of sequence" in e.message]
    assert len(told) == 1 and told[0].node == 0
    assert events[0].kind == EventKind.START
    assert any(e.kind == EventKind.USER for e in events)
    assert len(events) < 40
    # The second sender goes: the warning clears.
    counter = 6000
    for _ in range(300):
        counter += 1
        for frame in node_frames(counter):
            rig.core.on_battery_frame(frame, rig.t)
        rig.tick(0.1)
    assert Alarm.SYSTEM not in rig.core.decision.alarms

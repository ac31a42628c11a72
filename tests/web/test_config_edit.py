"""Configuration shown and edited through the API: validated with the file's schema, saved
atomically with a backup, errors naming the key."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from gateway.config.root import load_config
from gateway.web import configedit
from gateway.web.configedit import EditError, merge
from tests.web.bench import Bench, BenchHost
from tests.web.conftest import AUTH, client_for

pytestmark = pytest.mark.anyio

ORIGINAL = """\
# my battery
battery:
  topology:
    strings: [[0, 1], [2, 3]]
    capacity_ah: 280
strategy:
  max_charge_current_a: 100   # the fuse allows more
"""


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "moat-bms.yaml"
    path.write_text(ORIGINAL)
    path.chmod(0o640)
    return path


async def test_config_view_lists_every_setting(bench: Bench, config_file: Path) -> None:
    async with client_for(BenchHost(bench, config_path=config_file)) as client:
        view = (await client.get("/api/config")).json()
    assert view["path"] == str(config_file)
    assert view["file_error"] is None
    assert view["editable_sections"] == ["battery", "timing", "strategy", "soc", "inverter"]
    fields = {f["key"]: f for f in view["fields"]}
    current = fields["strategy.max_charge_current_a"]
    assert current["kind"] == "float"
    assert current["value"] == 100.0
    assert current["bounds"] == {"gt": 0, "le": 100_000}
    assert "(A)" in current["description"]
    assert current["editable"] is True
    assert fields["battery.chemistry"]["kind"] == "enum"
    assert fields["battery.chemistry"]["choices"] == ["lfp", "nmc", "lto"]
    assert fields["strategy.dvl_cell_v"]["optional"] is True
    assert fields["battery.topology.strings"]["kind"] == "json"
    assert fields["web.port"]["editable"] is False
    assert fields["persistence.state_file"]["editable"] is False
    # The running (simulated) system's own settings (gateway.sim.scenarios.base_setup: its
    # command key, a 1 s tick, 0.5 C limits, its simulated balancer's current, a quick
    # inverter start) differ from the file.
    assert view["pending_restart"] == [
        "battery.command_key",
        "timing.tick_s",
        "strategy.max_charge_current_a",
        "strategy.max_discharge_current_a",
        "strategy.balancing.bleed_current_a",
        "inverter.startup_grace",
    ]


async def test_an_edit_is_validated_saved_atomically_with_a_backup(
    bench: Bench, config_file: Path
) -> None:
    async with client_for(BenchHost(bench, config_path=config_file)) as client:
        response = await client.patch(
            "/api/config",
            json={
                "strategy.max_charge_current_a": 80,
                "strategy.phases.absorption_time_s": 1200,
                "battery.chemistry": "LFP",
            },
            headers=AUTH,
        )
    assert response.status_code == 200, response.text
    view = response.json()
    assert view["saved"] == {
        "path": str(config_file),
        "backup": str(config_file) + ".bak",
        "changed": [
            "battery.chemistry",
            "strategy.max_charge_current_a",
            "strategy.phases.absorption_time_s",
        ],
    }
    assert "strategy.max_charge_current_a" in view["pending_restart"]
    # The backup is the previous file byte for byte, comments included.
    backup = config_file.with_name("moat-bms.yaml.bak")
    assert backup.read_text() == ORIGINAL
    saved = load_config(config_file)
    assert saved.strategy.max_charge_current_a == 80
    assert saved.strategy.phases.absorption_time_s == 1200
    assert saved.battery.topology.strings == [[0, 1], [2, 3]]  # untouched keys kept
    data = yaml.safe_load(config_file.read_text())
    assert "phases" in data["strategy"] and "soc" not in data  # no defaults written out
    assert config_file.read_text().startswith("# moat-bms gateway configuration, saved")
    assert config_file.stat().st_mode & 0o777 == 0o640  # the file keeps its mode
    assert sorted(p.name for p in config_file.parent.iterdir()) == [
        "moat-bms.yaml",
        "moat-bms.yaml.bak",
    ]  # no temporary file left
    assert "configuration saved" in bench.core.events.events[-1].message


async def test_null_removes_a_key_so_its_default_applies(bench: Bench, config_file: Path) -> None:
    async with client_for(BenchHost(bench, config_path=config_file)) as client:
        response = await client.patch(
            "/api/config",
            json={"strategy.max_charge_current_a": None, "soc.rest_time_s": None},
            headers=AUTH,
        )
    assert response.status_code == 200, response.text
    data = yaml.safe_load(config_file.read_text())
    assert data["strategy"] == {}
    assert "soc" not in data


@pytest.mark.parametrize(
    ("changes", "reasons"),
    [
        (
            {"strategy.max_charge_current_a": -5},
            ["strategy.max_charge_current_a: Input should be greater than 0"],
        ),
        ({"strategy.nope": 1}, ["strategy.nope: unknown key"]),
        (
            {"battery.topology.strings": [[0, 0]]},
            ["battery.topology.strings: node 0 appears twice"],
        ),
        ({"web.port": 80}, ["web.port: not editable on the web page"]),
        ({"persistence.state_file": "/etc/passwd"}, ["persistence.state_file: not editable"]),
        (
            {"strategy.max_charge_current_a.x": 1},
            ["strategy.max_charge_current_a.x: strategy.max_charge_current_a is a value"],
        ),
        ({"Strategy": {}}, ["Strategy: not a configuration key"]),
        ({}, ["no changes given"]),
        (
            {"timing.tick_s": 5, "soc.rest_time_s": 1},
            ["timing.tick_s: Input should be less than or equal to 1", "soc.rest_time_s: Input"],
        ),
    ],
)
async def test_a_bad_edit_names_the_key_and_writes_nothing(
    bench: Bench, config_file: Path, changes: dict[str, object], reasons: list[str]
) -> None:
    async with client_for(BenchHost(bench, config_path=config_file)) as client:
        response = await client.patch("/api/config", json=changes, headers=AUTH)
    assert response.status_code == 400
    body = response.json()
    for reason in reasons:
        assert any(p.startswith(reason) for p in body["problems"]), body
        assert reason.partition(":")[0] in body["error"]
    assert config_file.read_text() == ORIGINAL
    assert not config_file.with_name("moat-bms.yaml.bak").exists()


async def test_editing_needs_the_token_and_json(bench: Bench, config_file: Path) -> None:
    async with client_for(BenchHost(bench, config_path=config_file)) as client:
        no_token = await client.patch("/api/config", json={"soc.rest_time_s": 600})
        as_yaml = await client.patch(
            "/api/config", content=b"soc: {}", headers={**AUTH, "Content-Type": "application/yaml"}
        )
    assert no_token.status_code == 401
    assert as_yaml.status_code == 415
    assert config_file.read_text() == ORIGINAL


async def test_without_a_file_edits_are_refused(bench: Bench) -> None:
    async with client_for(BenchHost(bench)) as client:
        view = (await client.get("/api/config")).json()
        response = await client.patch("/api/config", json={"soc.rest_time_s": 600}, headers=AUTH)
    assert view["path"] is None
    assert view["pending_restart"] == []
    assert response.status_code == 409
    assert "--config" in response.json()["error"]


async def test_a_broken_file_is_reported(bench: Bench, config_file: Path) -> None:
    config_file.write_text("strategy: [1, 2\n")
    async with client_for(BenchHost(bench, config_path=config_file)) as client:
        view = (await client.get("/api/config")).json()
    assert "YAML syntax" in view["file_error"]


async def test_a_failed_write_leaves_the_file_as_it_was(
    bench: Bench, config_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_replace = os.replace

    def failing_replace(src: str, dst: str) -> None:
        if Path(dst) == config_file:
            raise OSError(28, "No space left on device")
        real_replace(src, dst)

    monkeypatch.setattr(configedit.os, "replace", failing_replace)
    async with client_for(BenchHost(bench, config_path=config_file)) as client:
        response = await client.patch("/api/config", json={"soc.rest_time_s": 600}, headers=AUTH)
    assert response.status_code == 500
    assert "No space left" in response.json()["error"]
    assert config_file.read_text() == ORIGINAL
    leftovers = {p.name for p in config_file.parent.iterdir()}
    assert leftovers == {"moat-bms.yaml", "moat-bms.yaml.bak"}  # no temporary file


def test_merge_is_pure_and_creates_sections() -> None:
    raw = {"strategy": {"limits": {"hold_s": 10}}}
    merged = merge(
        raw, {"strategy.limits.ramp_a_per_s": 2, "soc.rest_time_s": 900, "inverter.dvl": None}
    )
    assert merged == {
        "strategy": {"limits": {"hold_s": 10, "ramp_a_per_s": 2}},
        "soc": {"rest_time_s": 900},
    }
    assert raw == {"strategy": {"limits": {"hold_s": 10}}}
    with pytest.raises(EditError) as err:
        merge(raw, {"buses.battery.channel": "vcan0", "a..b": 1})
    assert len(err.value.problems) == 2

"""Configuration: schema, errors that name the key, the example, the reference page, the CLI."""

from __future__ import annotations

import subprocess
import sys

import pytest

from gateway.cli import main
from gateway.config.doc import example_yaml, markdown
from gateway.config.root import ConfigError, load_config, validate
from tests.common import ROOT


def test_empty_file_gives_safe_defaults(tmp_path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("")
    s = load_config(path)
    assert s.battery.chemistry == "lfp"
    assert s.web.host == "127.0.0.1"  # loopback unless the user says otherwise
    assert s.battery.topology.strings == [[0]]


def test_example_is_valid_and_round_trips(tmp_path) -> None:
    path = tmp_path / "x.yaml"
    path.write_text(example_yaml())
    s = load_config(path)
    assert s.battery.topology.strings == [[0, 1], [2, 3]]
    assert s.buses.battery.interface == "socketcan"


@pytest.mark.parametrize(
    ("text", "where", "why"),
    [
        ("bogus: 1\n", "bogus", "unknown key"),
        (
            "battery:\n  topology:\n    capacity_ah: lots\n",
            "battery.topology.capacity_ah",
            "valid number",
        ),
        (
            "battery:\n  topology:\n    strings: [[0, 1], [1]]\n",
            "battery.topology.strings",
            "node 1 appears twice",
        ),
        (
            "battery:\n  topology:\n    strings: [[0, 16]]\n",
            "battery.topology.strings",
            "outside 0..15",
        ),
        ("battery:\n  chemistry: lead\n", "battery.chemistry", "lfp"),
        ("timing:\n  tick_s: 5\n", "timing.tick_s", "less than or equal"),
        (
            "battery:\n  topology:\n    strings: [[0], [1]]\n    cells: {1: 8}\n",
            "battery.topology",
            "same number of series cells",
        ),
        ("web:\n  port: 0\n", "web.port", "greater than or equal"),
    ],
)
def test_errors_name_the_key_and_the_reason(tmp_path, text: str, where: str, why: str) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    report = err.value.report()
    assert str(path) in report
    line = next(p for p in err.value.problems if p.startswith(where))
    assert why in line, report


def test_yaml_syntax_error_names_the_line(tmp_path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("battery:\n  topology: [\n")
    with pytest.raises(ConfigError, match="line 3"):
        load_config(path)


def test_yaml_cannot_execute_anything(tmp_path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("battery: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(ConfigError, match="YAML"):
        load_config(path)


def test_not_a_mapping() -> None:
    with pytest.raises(ConfigError, match="mapping"):
        validate([1, 2, 3])


def test_missing_file_is_a_config_error(tmp_path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "nope.yaml")


def test_cli_check_ok_and_failure_status(tmp_path, capsys) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(example_yaml())
    assert main(["config", "check", str(good)]) == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text("strategy:\n  max_charge_current_a: ten\n")
    assert main(["config", "check", str(bad)]) == 2
    assert "strategy.max_charge_current_a" in capsys.readouterr().err


def test_cli_example_then_check_as_documented(tmp_path) -> None:
    x = tmp_path / "x.yaml"
    example = subprocess.run(
        [sys.executable, "-m", "gateway", "config", "example"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    x.write_text(example)
    done = subprocess.run(
        [sys.executable, "-m", "gateway", "config", "check", str(x)],
        check=False,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("battery:\n  topology:\n    cells_per_node: many\n")
    done = subprocess.run(
        [sys.executable, "-m", "gateway", "config", "check", str(bad)],
        check=False,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    assert "battery.topology.cells_per_node" in done.stderr


def test_configuration_reference_is_current() -> None:
    assert (ROOT / "docs" / "configuration.md").read_text() == markdown(), (
        "docs/configuration.md is stale: run `make docs`"
    )

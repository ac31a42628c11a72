"""`moat-bms sim` end to end: a run at full speed, its candump log decoded by the cantools
command line (what a CAN user would do), checks deciding the exit status."""

from __future__ import annotations

import itertools
import re
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.cli import main
from gateway.sim import scenarios
from gateway.sim.scenarios import SCENARIOS, Scenario
from tests.common import DBC_DIR

LOG_LINE = re.compile(r"^\((\d+\.\d{6})\) (battery|inverter) ([0-9A-F]{3})#([0-9A-F]*) [RT]$")


def decode(dbc: str, lines: list[str], *extra: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "cantools", "decode", "-s", *extra, str(DBC_DIR / dbc)],
        input="\n".join(lines) + "\n",
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return result.stdout


@pytest.fixture(scope="module")
def sim_log(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    path = tmp_path_factory.mktemp("sim") / "x.log"
    argv = ["sim", "--duration", "120", "--speed", "max", "--no-web", "--no-view"]
    assert main([*argv, "--log", str(path), "--state-dir", str(path.parent)]) == 0
    return path.read_text().splitlines()


def test_the_log_is_candump_format_with_both_buses(sim_log: list[str]) -> None:
    assert sim_log
    for line in sim_log:
        assert LOG_LINE.match(line), line
    channels = {LOG_LINE.match(line).group(2) for line in sim_log}  # type: ignore[union-attr]
    assert channels == {"battery", "inverter"}


def test_cantools_decodes_the_inverter_limits_every_second(sim_log: list[str]) -> None:
    limits = [line for line in sim_log if " 351#" in line]
    out = decode("pylontech_lv.dbc", limits)
    values = re.findall(
        r"ChargeVoltageLimit: ([\d.]+) V, ChargeCurrentLimit: ([\d.]+) A, "
        r"DischargeCurrentLimit: ([\d.]+) A",
        out,
    )
    assert len(values) == len(limits) >= 100  # one a second over 120 s, none undecodable
    for cvl, ccl, dcl in values:
        assert 48.0 <= float(cvl) <= 58.4  # 16s LFP: never 0, never above 3.65 V a cell
        assert 0.0 <= float(ccl) <= 100.0 and 0.0 <= float(dcl) <= 100.0
    stamps = [float(LOG_LINE.match(line).group(1)) for line in limits]  # type: ignore[union-attr]
    assert max(b - a for a, b in itertools.pairwise(stamps)) <= 1.0 + 1e-6


def test_cantools_decodes_every_node_with_the_node_mask(sim_log: list[str]) -> None:
    packs = [line for line in sim_log if re.search(r" 13[0-3]#", line)]  # PackStatus, nodes 0-3
    out = decode("moat_bms.dbc", packs, "-m", "0x7F0")
    voltages = [float(v) for v in re.findall(r"PackVoltage: ([\d.]+) V", out)]
    assert len(voltages) == len(packs) > 0
    # Two 8-cell LFP nodes per string: each node near 8 x 3.3 V.
    assert all(24.0 < v < 29.2 for v in voltages), voltages
    ids = {LOG_LINE.match(line).group(3) for line in packs}  # type: ignore[union-attr]
    assert ids == {"130", "131", "132", "133"}


def test_a_whole_scenario_passes_its_checks(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["sim", "--scenario", "cell-overvoltage", "--speed", "max", "--no-web", "--no-view"]
    assert main(argv) == 0
    assert "checks of 'cell-overvoltage' passed" in capsys.readouterr().out


def test_a_failed_check_exits_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    base = SCENARIOS["inverter-missing"]
    failing = Scenario(
        "failing", "a check that fails", 10.0, base.setup, check=lambda sim, rec: ["it broke"]
    )
    monkeypatch.setitem(scenarios.SCENARIOS, "failing", failing)
    argv = ["sim", "--scenario", "failing", "--speed", "max", "--no-web", "--no-view"]
    assert main(argv) == 1
    assert "check failed: it broke" in capsys.readouterr().err


@pytest.mark.parametrize("speed", ["0", "-1", "fast"])
def test_a_bad_speed_is_refused(speed: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["sim", "--speed", speed])
    assert exit_info.value.code == 2
    assert "--speed" in capsys.readouterr().err


def test_the_scenarios_are_listed_in_the_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["sim", "--help"])
    out = capsys.readouterr().out
    assert all(name in out for name in SCENARIOS)


def test_a_short_run_reports_its_checks_skipped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["sim", "--scenario", "full-charge", "--duration", "5", "--speed", "max"]
    assert main([*argv, "--no-web", "--no-view", "--state-dir", str(tmp_path)]) == 0
    assert "checks of 'full-charge' skipped" in capsys.readouterr().out


def test_the_memory_bus_writes_the_same_log(sim_log: list[str], tmp_path: Path) -> None:
    path = tmp_path / "memory.log"
    argv = ["sim", "--duration", "120", "--speed", "max", "--no-web", "--no-view"]
    assert main([*argv, "--bus", "memory", "--log", str(path), "--state-dir", str(tmp_path)]) == 0
    assert path.read_text().splitlines() == sim_log


def test_an_unknown_bus_is_refused_by_the_command_line(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["sim", "--bus", "socketcan", "--no-web", "--no-view"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "--bus: invalid choice: 'socketcan'" in err
    assert "memory" in err and "virtual" in err

"""`outputs.venus` and `inverter.enabled`: what the configuration accepts, and a gateway
whose CAN inverter output is off still deciding, for the D-Bus service to tell the GX."""

from __future__ import annotations

import pytest

from gateway.config.root import ConfigError, validate
from gateway.contracts.decision import Phase
from gateway.outputs.venus.service import VenusOutput
from gateway.runtime.outputs import build_outputs
from tests.gateway.test_core import Rig


def test_outputs_are_off_unless_configured(tmp_path) -> None:
    settings = validate({})
    assert settings.outputs.venus is None
    assert build_outputs(settings, tmp_path / "state.json") == []
    assert validate({"outputs": None}).outputs.venus is None  # `outputs:` all commented out


def test_venus_section_defaults_and_output(tmp_path) -> None:
    settings = validate({"outputs": {"venus": {"custom_name": "House"}}})
    venus = settings.outputs.venus
    assert venus is not None
    assert venus.bus == "system"
    assert venus.service_name == "com.victronenergy.battery.moat_bms"
    assert venus.device == "moat_bms"
    (output,) = build_outputs(settings, tmp_path / "state.json")
    assert isinstance(output, VenusOutput)
    assert output.custom_name == "House"
    assert output.store.path == tmp_path / "state.venus.json"


@pytest.mark.parametrize(
    ("venus", "key", "reason"),
    [
        ({"service_name": "com.victronenergy.solarcharger.x"}, "service_name", "battery.<device>"),
        ({"service_name": "com.victronenergy.battery.my-bms"}, "service_name", "letters"),
        ({"device_instance": -1}, "device_instance", "greater than or equal to 0"),
        ({"custom_name": "x" * 65}, "custom_name", "at most 64"),
        ({"buss": "system"}, "buss", "unknown key"),
    ],
)
def test_bad_venus_settings_name_the_key(venus, key, reason) -> None:
    with pytest.raises(ConfigError) as err:
        validate({"outputs": {"venus": venus}})
    (problem,) = err.value.problems
    assert problem.startswith(f"outputs.venus.{key}: ")
    assert reason in problem


def test_can_inverter_off_sends_no_inverter_frames_but_still_decides() -> None:
    rig = Rig(inverter={"profile": "pylontech", "enabled": False, "keepalive_timeout": 3})
    rig.run(120.0)
    assert rig.sent_inverter == []
    assert rig.core.sent is None
    decision = rig.core.decision
    assert decision is not None and decision.phase == Phase.BULK
    assert decision.limits.ccl > 0 and decision.limits.dcl > 0
    assert rig.core.report is not None and rig.core.report.limits == decision.limits
    # No CAN output, no keepalive to wait for: never "inverter missing".
    assert rig.core.keepalive.status(rig.t).value == "off"
    assert not any("inverter" in a.value for a in decision.alarms)
    # The nodes are still driven (relay, balancing, heartbeat).
    assert rig.sent_battery

"""InverterSettings validation."""

from __future__ import annotations

import pydantic
import pytest

from gateway.outputs.inverter import PROFILES, InverterSettings


def test_defaults() -> None:
    s = InverterSettings()
    assert s.profile == "pylontech"
    assert s.period == 1.0
    assert s.keepalive_timeout == 10.0
    assert s.startup_grace == 60.0
    assert (s.watch_keepalive, s.missing_as_warning) == (True, False)
    assert (s.manufacturer, s.manufacturer_name, s.bms_name) == (None, "PYLON", "moat-bms")
    assert s.fallback_cvl > 0


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_every_profile_is_accepted_with_defaults(name: str) -> None:
    assert InverterSettings(profile=name).profile == name


def test_unknown_profile_lists_the_known_ones() -> None:
    with pytest.raises(pydantic.ValidationError, match=r"known profiles: deye, .*pylontech"):
        InverterSettings(profile="growatt")


def test_period_cannot_undercut_the_profile_minimum() -> None:
    assert InverterSettings(profile="pylontech", period=0.1).period == 0.1
    with pytest.raises(pydantic.ValidationError, match="sma-sunny-island minimum"):
        InverterSettings(profile="sma-sunny-island", period=0.1)


def test_period_must_let_victron_see_two_sets_within_its_timeout() -> None:
    with pytest.raises(pydantic.ValidationError):
        InverterSettings(period=3.0)


def test_deye_needs_a_pylon_manufacturer_name() -> None:
    assert InverterSettings(profile="deye", manufacturer="PYLONDIY").manufacturer == "PYLONDIY"
    with pytest.raises(pydantic.ValidationError, match="PYLON"):
        InverterSettings(profile="deye", manufacturer="DIYPYLON")
    assert InverterSettings(profile="victron", manufacturer="DIYPYLON").manufacturer == "DIYPYLON"


@pytest.mark.parametrize(("name", "default"), [("pylontech", "PYLON"), ("victron", "moat-bms")])
def test_manufacturer_name_defaults_per_profile(name: str, default: str) -> None:
    assert InverterSettings(profile=name).manufacturer_name == default
    assert InverterSettings(profile=name, manufacturer="ACME").manufacturer_name == "ACME"


@pytest.mark.parametrize("manufacturer", ["PYLON", "Pylon-X"])
def test_victron_refuses_a_pylontech_name(manufacturer: str) -> None:
    with pytest.raises(pydantic.ValidationError, match="Pylontech"):
        InverterSettings(profile="victron", manufacturer=manufacturer)


@pytest.mark.parametrize(
    "bad",
    [
        {"manufacturer": "TOO-LONG-9"},
        {"manufacturer": "PYLÖN"},
        {"bms_name": "x" * 17},
        {"cvl_margin": 0.05},  # the stop CVL (rounded down 0.1 V) would not fit
        {"fallback_cvl": 0.0},
        {"dvl": 0.0},
        {"capacity_ah": 0.0},
        {"keepalive_timeout": 1.0},
        {"colour": "blue"},
    ],
    ids=str,
)
def test_invalid_settings_are_refused(bad) -> None:
    with pytest.raises(pydantic.ValidationError):
        InverterSettings(**bad)


def test_frozen() -> None:
    with pytest.raises(pydantic.ValidationError):
        InverterSettings().period = 2.0  # type: ignore[misc]


def test_every_field_is_described_with_its_unit_where_it_has_one() -> None:
    for name, field in InverterSettings.model_fields.items():
        assert field.description, name
    for name in ("period", "keepalive_timeout", "startup_grace"):
        assert InverterSettings.model_fields[name].description.endswith(", s.")
    for name in ("dvl", "fallback_cvl", "cvl_margin"):
        assert InverterSettings.model_fields[name].description.endswith(", V.")
    assert InverterSettings.model_fields["capacity_ah"].description.endswith(", Ah.")

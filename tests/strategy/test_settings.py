"""Strategy and SoC settings: descriptions, cross-field rules, overrides."""

from __future__ import annotations

import pydantic
import pytest

from gateway.contracts.chemistry import LFP, NMC, Curve
from gateway.soc import SocSettings
from gateway.strategy.settings import StrategySettings


def models(model: type[pydantic.BaseModel]) -> list[type[pydantic.BaseModel]]:
    found = [model]
    for field in model.model_fields.values():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel):
            found += models(annotation)
    return found


@pytest.mark.parametrize(
    "model", [*models(StrategySettings), SocSettings], ids=lambda m: m.__name__
)
def test_every_field_is_described_and_the_model_is_strict(model: type[pydantic.BaseModel]) -> None:
    for name, field in model.model_fields.items():
        assert field.description, f"{model.__name__}.{name} has no description"
    assert model.model_config.get("extra") == "forbid"
    assert model.model_config.get("frozen") is True


def test_defaults_are_valid_and_immutable() -> None:
    s = StrategySettings()
    with pytest.raises(pydantic.ValidationError):
        s.max_charge_current_a = 5.0  # type: ignore[misc]
    with pytest.raises(pydantic.ValidationError):
        StrategySettings.model_validate({"max_charge_current": 5.0})


@pytest.mark.parametrize(
    "data",
    [
        {"phases": {"spread_start_v": 0.02, "spread_restart_v": 0.015}},
        {"phases": {"spread_restart_v": 0.09}},  # above the rebulk spread
        {"phases": {"absorption_time_s": 8000}},  # above its cap
        {"phases": {"full_charge_hold_s": 20000}},
        {"force_charge_on_soc": 10, "force_charge_off_soc": 10},
        {"voltages": {"float_v": 3.46, "charge_target_v": 3.45}},
        {"voltages": {"min_cell_v": 3.1, "empty_cell_v": 3.0}},
        {"derating": {"tables": {"charge_by_temp": [[0, 0], [0, 1]]}}},
        {"derating": {"tables": {"charge_by_temp": [[0, 0], [10, 1.5]]}}},
        {"balancing": {"threshold_v": 0.005, "release_v": 0.006}},
        {"alarms": {"imbalance_v": 0.05, "imbalance_release_v": 0.06}},
        {"max_charge_current_a": 0},
        {"limits": {"recover_fraction": 1.5}},
    ],
)
def test_inconsistent_settings_are_rejected(data: dict[str, object]) -> None:
    with pytest.raises(pydantic.ValidationError):
        StrategySettings.model_validate(data)


def test_overrides_apply_to_the_profile() -> None:
    s = StrategySettings.model_validate(
        {
            "voltages": {"charge_target_v": 3.50, "float_v": 3.40},
            "derating": {"tables": {"charge_by_soc": [[80, 1], [100, 0]]}},
        }
    )
    p = s.apply(LFP)
    assert (p.charge_target_v, p.float_v, p.full_charge_v) == (3.50, 3.40, 3.55)
    assert p.charge_by_soc == Curve.of((80, 1), (100, 0))
    assert p.charge_by_cell == LFP.charge_by_cell
    assert StrategySettings().apply(NMC) == NMC


def test_an_override_that_does_not_fit_the_chemistry_is_rejected() -> None:
    s = StrategySettings.model_validate({"voltages": {"charge_target_v": 3.5}})
    with pytest.raises(ValueError, match="charge_target_v"):
        s.apply(NMC)  # 3.5 V is below NMC's float voltage


def test_cvl_step_is_the_protocol_resolution() -> None:
    assert round(StrategySettings().cvl.step_v, 9) == 0.1

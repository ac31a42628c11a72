"""Saved state, checked like the configuration: a pydantic model per saved part.

State files are written by the gateway itself, but a file can be truncated, corrupted or
written by another version: `parse_saved` accepts exactly what `to_dict()` writes (every key,
no other, finite numbers in their ranges) and raises ValueError naming the part, the key and
the reason for anything else.
"""

from __future__ import annotations

from typing import TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

_REASONS = {"missing": "missing", "extra_forbidden": "unknown key"}

Model = TypeVar("Model", bound="SavedState")


class SavedState(BaseModel):
    """Base of the saved-state models: every key required, no other, no NaN or infinity."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


def parse_saved(model: type[Model], data: object, what: str) -> Model:
    """`data` (from JSON) checked against `model`; ValueError("<what> state ...") otherwise."""
    if not isinstance(data, dict):
        raise ValueError(f"{what} state must be a mapping, not {type(data).__name__}")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(top)'}: "
            f"{_REASONS.get(err['type'], err['msg'])}"
            for err in exc.errors()
        )
        raise ValueError(f"{what} state unusable: {problems}") from None

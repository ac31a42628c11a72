"""The gateway's configuration: one YAML file validated with pydantic.

`load_config(path)` returns the validated settings or raises ConfigError whose message names
every offending key (dotted path) and the reason. YAML is read with the safe loader: a
configuration value can never execute anything.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Self

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from gateway.chemistry import Chemistry
from gateway.inverter.settings import InverterSettings
from gateway.settings import (
    BusesSettings,
    PersistenceSettings,
    Section,
    TimingSettings,
    TopologySettings,
    WebSettings,
)
from gateway.soc import SocSettings
from gateway.strategy.settings import StrategySettings

MAX_CONFIG_BYTES = 1_000_000


class BatterySettings(Section):
    """The battery: chemistry and how the nodes are wired."""

    chemistry: Chemistry = Field(Chemistry.LFP, description="cell chemistry: lfp, nmc or lto")

    @field_validator("chemistry", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    topology: TopologySettings = Field(
        default_factory=TopologySettings, description="strings of nodes and their capacity"
    )
    command_key: str = Field(
        "",
        description=(
            "the installation's command key, 32..128 hex digits, the same as the nodes' "
            "command_key: relay closes and resets carry its MAC; empty: not authenticated"
        ),
    )

    @field_validator("command_key")
    @classmethod
    def _key(cls, value: str) -> str:
        if value and (
            len(value) % 2
            or not 32 <= len(value) <= 128
            or any(c not in "0123456789abcdefABCDEF" for c in value)
        ):
            raise ValueError("expected 32..128 hex digits (16..64 bytes), or empty")
        return value

    def key_bytes(self) -> bytes | None:
        """The command key as bytes; None when none is configured."""
        return bytes.fromhex(self.command_key) if self.command_key else None


class Settings(Section):
    """Everything the gateway needs. Every section and key is optional; defaults are safe."""

    battery: BatterySettings = Field(default_factory=BatterySettings, description="the battery")
    buses: BusesSettings = Field(default_factory=BusesSettings, description="the CAN buses")
    timing: TimingSettings = Field(default_factory=TimingSettings, description="timing")
    strategy: StrategySettings = Field(
        default_factory=StrategySettings, description="the charge strategy"
    )
    soc: SocSettings = Field(default_factory=SocSettings, description="state-of-charge estimation")
    inverter: InverterSettings = Field(
        default_factory=InverterSettings, description="the inverter and its protocol"
    )
    persistence: PersistenceSettings = Field(
        default_factory=PersistenceSettings, description="where state is kept"
    )
    web: WebSettings = Field(default_factory=WebSettings, description="the web page and API")

    @model_validator(mode="after")
    def _buses_distinct(self) -> Self:
        inverter = self.buses.inverter
        if inverter is not None and inverter == self.buses.battery:
            raise ValueError(
                "buses.inverter is the same as buses.battery: leave buses.inverter out to share "
                "one bus"
            )
        return self


class ConfigError(Exception):
    """A configuration file that cannot be used. str() names the keys and the reasons."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: " + "; ".join(problems))

    def report(self) -> str:
        lines = [f"{self.source}: invalid configuration"]
        lines += [f"  {p}" for p in self.problems]
        return "\n".join(lines)


def _loc(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc) or "(top level)"


def validate(data: object, source: str = "configuration") -> Settings:
    """Validate already-parsed configuration data."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(source, ["the file must contain a mapping of sections (key: value)"])
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            reason = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                reason = "unknown key"
            problems.append(f"{_loc(err['loc'])}: {reason}")
        raise ConfigError(source, problems) from None


def load_config(path: Path) -> Settings:
    """Read and validate a YAML configuration file."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(str(path), [f"cannot read: {exc.strerror or exc}"]) from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(str(path), [f"file is larger than {MAX_CONFIG_BYTES} bytes"])
    try:
        data: Any = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(str(path), [f"{where}YAML syntax: {problem}"]) from None
    return validate(data, str(path))


def dump(settings: Settings) -> dict[str, Any]:
    """Settings as plain data (JSON/YAML safe), every default filled in."""
    data: dict[str, Any] = settings.model_dump(mode="json")
    return data

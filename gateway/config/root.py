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

from gateway.config import yamlsafe
from gateway.config.sections import (
    BusesSettings,
    PersistenceSettings,
    TimingSettings,
    WebSettings,
)
from gateway.contracts.chemistry import Chemistry, ChemistrySpec, spec_of
from gateway.contracts.section import Section
from gateway.contracts.topology import TopologySettings
from gateway.outputs.inverter.settings import InverterSettings
from gateway.outputs.settings import OutputsSettings
from gateway.soc import SocSettings
from gateway.sources.packs.settings import PackSettings, pack_problems
from gateway.strategy.settings import StrategySettings

MAX_CONFIG_BYTES = 1_000_000


class PackRating(Section):
    """What the pack's maker allows, per string. Left out: the chemistry's conservative
    C-rate times the string's capacity (LFP and NMC 1 C, LTO 4 C)."""

    charge_current_a: float | None = Field(
        None, gt=0, le=100_000, description="rated continuous charge current of one string (A)"
    )
    discharge_current_a: float | None = Field(
        None,
        gt=0,
        le=100_000,
        description="rated continuous discharge current of one string (A)",
    )


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
    packs: dict[int, PackSettings] = Field(
        default_factory=dict,
        description="ids of the topology that are commercial packs with their own BMS (JBD, "
        "JK, Daly, Pylontech CAN), and how to reach each; every other id is a moat-bms node "
        "(docs/sources.md)",
    )
    rating: PackRating = Field(
        default_factory=PackRating,
        description="the pack's current rating: no current limit is ever above it",
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

    @property
    def node_ids(self) -> list[int]:
        """The ids of the topology that are moat-bms nodes (not commercial packs)."""
        return [n for n in self.topology.nodes if n not in self.packs]

    def key_bytes(self) -> bytes | None:
        """The command key as bytes; None when none is configured."""
        return bytes.fromhex(self.command_key) if self.command_key else None

    def current_bounds(self) -> tuple[float, float]:
        """Highest charge and discharge current the whole battery may carry (A): every
        string's rating (or the chemistry's C-rate times its capacity), all strings."""
        chem = spec_of(self.chemistry)
        capacity = self.topology.capacity_ah
        strings = len(self.topology.strings)
        charge = self.rating.charge_current_a or chem.max_charge_c * capacity
        discharge = self.rating.discharge_current_a or chem.max_discharge_c * capacity
        return charge * strings, discharge * strings


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
    outputs: OutputsSettings = Field(
        default_factory=OutputsSettings, description="outputs beside the inverter's CAN frames"
    )

    @field_validator("outputs", mode="before")
    @classmethod
    def _no_outputs(cls, value: object) -> object:
        # `outputs:` with every output in it commented out (as in the example) is YAML null.
        return {} if value is None else value

    @model_validator(mode="after")
    def _buses_distinct(self) -> Self:
        inverter = self.buses.inverter
        if inverter is not None and inverter == self.buses.battery:
            raise ValueError(
                "buses.inverter is the same as buses.battery: leave buses.inverter out to share "
                "one bus"
            )
        return self

    @model_validator(mode="after")
    def _packs_placed(self) -> Self:
        """Cross-field: every commercial pack is placed in a string, none shares a port or a
        CAN id range with another (one message per offending key)."""
        problems = pack_problems(self.battery.packs, self.battery.topology.nodes)
        if problems:
            raise ValueError("\n".join(problems))
        return self

    @model_validator(mode="after")
    def _within_the_cells(self) -> Self:
        """Cross-field: every voltage within the chemistry's hard cell limits, every current
        within the pack rating (one message per offending key; they all count)."""
        problems = _cell_and_pack_problems(self)
        if problems:
            raise ValueError("\n".join(problems))
        return self

    def bounded_strategy(self) -> StrategySettings:
        """The strategy with its maximum currents at most the pack rating (a default of
        100 A on a smaller pack means the pack's rating; a value set above it is refused)."""
        charge, discharge = self.battery.current_bounds()
        strategy = self.strategy
        return strategy.model_copy(
            update={
                "max_charge_current_a": min(strategy.max_charge_current_a, charge),
                "max_discharge_current_a": min(strategy.max_discharge_current_a, discharge),
            }
        )


def _cell_and_pack_problems(settings: Settings) -> list[str]:
    chem = spec_of(settings.battery.chemistry)
    name = chem.chemistry.value.upper()
    strategy = settings.strategy
    problems = []
    for key, value in strategy.voltages.model_dump().items():
        if value is None:
            continue
        if value > chem.max_charge_v:
            problems.append(
                f"strategy.voltages.{key}: {value} V is above the {name} charge cut-off "
                f"{chem.max_charge_v} V per cell"
            )
        elif value <= chem.hard_min_v:
            problems.append(
                f"strategy.voltages.{key}: {value} V is at or below the {name} damage limit "
                f"{chem.hard_min_v} V per cell"
            )
    effective: ChemistrySpec | None = None
    if not problems:
        try:
            effective = strategy.apply(chem)
        except ValueError as exc:
            # "lfp: min_cell_v (3.6 V) must be below empty_cell_v (3.0 V)": name the key set.
            reason = str(exc).split(": ", 1)[-1]
            given = [k for k, v in strategy.voltages.model_dump().items() if v is not None]
            named = [k for k in given if k in reason] or given or [""]
            key = ".".join(filter(None, ("strategy.voltages", named[0])))
            problems.append(f"{key}: {reason} (the others at the {name} defaults)")
    dvl = strategy.dvl_cell_v
    if dvl is not None:
        top = effective.float_v if effective else chem.float_v
        if not chem.hard_min_v <= dvl < top:
            problems.append(
                f"strategy.dvl_cell_v: {dvl} V must be within the {name} damage limit "
                f"{chem.hard_min_v} V and the float voltage {top} V per cell"
            )
    cells = settings.battery.topology.cells_in_series
    if settings.inverter.dvl is not None and effective is not None:
        low, high = cells * chem.hard_min_v, cells * effective.charge_target_v
        if not low <= settings.inverter.dvl < high:
            problems.append(
                f"inverter.dvl: {settings.inverter.dvl} V must be within {low:.2f} V and "
                f"{high:.2f} V ({cells} {name} cells between the damage limit and the charge "
                "target)"
            )
    charge, discharge = settings.battery.current_bounds()
    stated = strategy.model_fields_set
    for key, bound, rated in (
        ("max_charge_current_a", charge, settings.battery.rating.charge_current_a),
        ("max_discharge_current_a", discharge, settings.battery.rating.discharge_current_a),
    ):
        value = getattr(strategy, key)
        if key in stated and value > bound:
            why = (
                "battery.rating"
                if rated is not None
                else f"{name} at {bound / len(settings.battery.topology.strings):.0f} A per "
                "string of "
                f"{settings.battery.topology.capacity_ah:g} Ah; state battery.rating if the "
                "pack allows more"
            )
            problems.append(
                f"strategy.{key}: {value} A is above the pack rating {bound:.0f} A ({why})"
            )
    return problems


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
            if not err["loc"] and err["type"] == "value_error":
                problems += reason.splitlines()  # cross-field: each line names its key
                continue
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
    return validate(parse_yaml(raw, str(path)), str(path))


def parse_yaml(raw: bytes, source: str) -> Any:
    """A configuration file's YAML, strictly (no duplicate keys, no aliases, bounded
    nesting: gateway/config/yamlsafe.py). Raises ConfigError naming the line."""
    try:
        return yamlsafe.load(raw)
    except yaml.YAMLError as exc:
        raise ConfigError(source, [f"YAML syntax: {yamlsafe.describe(exc)}"]) from None
    except RecursionError:  # belt and braces: the loader bounds nesting itself
        raise ConfigError(source, ["YAML: nested too deeply"]) from None


def dump(settings: Settings) -> dict[str, Any]:
    """Settings as plain data (JSON/YAML safe), every default filled in."""
    data: dict[str, Any] = settings.model_dump(mode="json")
    return data

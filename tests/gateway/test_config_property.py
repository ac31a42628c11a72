"""Issue 13: whole configurations, generated from the schema (every editable key, extreme
and non-finite numbers included), through the one validator.

- `config check` accepts a file if and only if `run` starts with it (settings and the
  whole gateway built, no exception);
- every accepted one yields limits within the chemistry's hard cell limits and the pack
  rating, tick after tick, whatever the cells read.
"""

from __future__ import annotations

import enum
import math
import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from gateway.cli import build_parser
from gateway.cli import run as run_command
from gateway.config.doc import walk
from gateway.config.root import ConfigError, Settings, load_config
from gateway.contracts.chemistry import spec_of
from gateway.runtime.service import Gateway
from gateway.sim import nodeframes as nf
from gateway.web.configedit import _bounds, _kind

SKIPPED_SECTIONS = ("buses", "persistence", "web")  # set by the test: no real bus or file
TOPOLOGIES = ([[0]], [[0], [1]], [[0, 1]], [[0, 1], [2, 3]], [[0, 0]], [])


def _floats(bounds: dict[str, float], default: object) -> st.SearchStrategy[float]:
    edges: list[float] = [0.0, -1.0, 1e308, -1e308, 1e-308]
    for value in bounds.values():
        edges += [value, value * 1.0001, value * 0.9999, value + 1, value - 1]
    near: list[float] = []
    if isinstance(default, int | float) and not isinstance(default, bool):
        near = [default, default * 1.1, default * 0.9, default * 2, default / 2]
        edges += [default * 1000]
    return st.one_of(
        st.sampled_from(near or edges),  # mostly plausible values: many files pass
        st.sampled_from(edges),
        st.floats(allow_nan=True, allow_infinity=True),
        st.floats(min_value=-10, max_value=10),  # cell voltages and small factors
    )


def _leaf(path: tuple[str, ...], info: Any, default: object) -> st.SearchStrategy[Any] | None:
    key = ".".join(path)
    if key == "battery.topology.strings":
        return st.sampled_from(TOPOLOGIES)
    if key == "battery.topology.cells":
        return st.dictionaries(st.integers(0, 4), st.integers(-1, 70), max_size=3)
    kind, optional, choices = _kind(info.annotation)
    bounds = _bounds(info.metadata)
    value: st.SearchStrategy[Any]
    if kind == "float":
        value = _floats(bounds, default)
    elif kind == "int":
        ints = [int(v) for v in bounds.values()] + [0, -1, 1, 2**31]
        value = st.one_of(st.sampled_from(ints), st.integers(-5, 100))
    elif kind == "bool":
        value = st.booleans()
    elif kind == "enum":
        assert choices is not None
        value = st.sampled_from([*choices, "LFP", "nmc ", "none"])
    elif kind == "str":
        value = st.sampled_from(["pylontech", "victron", "deye", "sma-sunny-island", "x" * 20])
    else:
        return None  # tables and mappings: their own tests
    return st.one_of(value, st.none()) if optional else value


def _schema_leaves() -> dict[str, st.SearchStrategy[Any]]:
    leaves = {}
    for path, info, nested, default in walk(Settings, Settings()):
        if nested is not None or path[0] in SKIPPED_SECTIONS:
            continue
        strategy = _leaf(path, info, default)
        if strategy is not None:
            leaves[".".join(path)] = strategy
    return leaves


LEAVES = _schema_leaves()


def _nest(flat: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in flat.items():
        node = out
        *parents, last = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    return out


KEYS = sorted(LEAVES)


@st.composite
def configurations(draw: st.DrawFn) -> dict[str, Any]:
    """A few keys per file (so that many files are valid), every key over the examples."""
    keys = draw(st.lists(st.sampled_from(KEYS), max_size=8, unique=True))
    return _nest({key: draw(LEAVES[key]) for key in keys})


def _write(directory: Path, data: dict[str, Any]) -> Path:
    data = {
        **data,
        "buses": {"battery": {"interface": "virtual", "channel": "property"}},
        "persistence": {"state_file": str(directory / "state.json")},
        "web": {"enabled": False},
    }
    path = directory / "moat-bms.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    return path


def _check_accepts(path: Path) -> Settings | None:
    try:
        return load_config(path)
    except ConfigError:
        return None


def _run_starts(path: Path) -> Gateway | None:
    """What `moat-bms run --config PATH` does before its event loop: any exception other
    than a ConfigError (reported with exit 2) is a bug the test shows."""
    args = build_parser().parse_args(["run", "--config", str(path), "--no-web"])
    try:
        settings_ = run_command.settings_from(args)
    except ConfigError:
        return None
    return Gateway(settings_, config_path=path)


def _check_limits(gateway: Gateway) -> None:
    """Tick the gateway with healthy nodes whose cells sweep the whole range."""
    s = gateway.settings
    chem = spec_of(s.battery.chemistry)
    topo = s.battery.topology
    cells = topo.cells_in_series
    charge_bound, discharge_bound = s.battery.current_bounds()
    core = gateway.core
    t = 1_800_000_000.0
    sweep = [chem.hard_min_v - 0.2, chem.min_cell_v, chem.nominal_v, chem.charge_target_v,
             chem.max_charge_v, chem.hard_max_v + 0.2]  # fmt: skip
    for step in range(60):
        volts = sweep[step % len(sweep)]
        counter = step + 1
        for node in topo.nodes:
            n = topo.cells_of(node)
            for frame in (
                nf.node_state(node, counter),
                nf.pack_status(node, n * volts, 0.0),
                nf.cell_extremes(node, volts - 0.01, volts),
                nf.temperature_extremes(node, 20.0, 22.0),
            ):
                core.on_battery_frame(frame, t)
        t += 1.0
        core.tick(t)
        for limits in (core.decision.limits, core.report.limits):  # type: ignore[union-attr]
            assert 0.0 <= limits.ccl <= charge_bound + 1e-6, (limits, charge_bound)
            assert 0.0 <= limits.dcl <= discharge_bound + 1e-6, (limits, discharge_bound)
            assert 0.0 < limits.cvl <= cells * chem.max_charge_v + 0.1, limits
            assert math.isfinite(limits.dvl) and limits.dvl > 0, limits
        assert core.decision is not None
        assert core.decision.limits.dvl >= cells * chem.hard_min_v - 1e-6


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=configurations())
def test_config_check_accepts_exactly_what_run_starts_with_and_limits_stay_bounded(
    data: dict[str, Any],
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = _write(Path(tmp), data)
        accepted = _check_accepts(path)
        gateway = _run_starts(path)
        assert (accepted is not None) == (gateway is not None), data
        event("accepted" if accepted is not None else "refused")
        if gateway is not None:
            _check_limits(gateway)


def test_generated_configurations_cover_every_editable_number() -> None:
    numbers = [k for k, v in LEAVES.items() if "max_charge_current_a" in k or "_v" in k]
    assert "strategy.voltages.charge_target_v" in numbers
    assert "strategy.max_charge_current_a" in numbers
    assert len(LEAVES) > 80
    assert not any(isinstance(v, enum.Enum) for v in LEAVES)

"""Build node frames for gateway tests with the generated (cantools-checked) codec."""

from __future__ import annotations

from gateway.codec import moat_bms as codec
from gateway.contracts.snapshot import ProtectionKind


def node_state(
    node: int,
    counter: int,
    *,
    state: int = 2,
    relay: int = 1,
    faults: frozenset[ProtectionKind] = frozenset(),
    warnings: frozenset[ProtectionKind] = frozenset(),
    infos: frozenset[ProtectionKind] = frozenset(),
    trip_cleared: int = 0,
) -> tuple[int, bytes]:
    fields = dict.fromkeys(codec.NodeState._fields, 0)
    fields.update(
        state=state,
        relay_state=relay,
        alive_counter=counter % 16,
        gateway_link=1,
        trip_cleared=trip_cleared,
    )
    for prefix, kinds in (("fault", faults), ("warn", warnings), ("info", infos)):
        for kind in kinds:
            snake = "".join("_" + c.lower() if c.isupper() else c for c in kind.value).lstrip("_")
            fields[f"{prefix}_{snake}"] = 1
    return codec.FRAME_IDS["NodeState"] | node, codec.encode_node_state(codec.NodeState(**fields))


def pack_status(node: int, volts: float, amps: float) -> tuple[int, bytes]:
    data = codec.encode_pack_status(codec.PackStatus(volts, amps, 0))
    return codec.FRAME_IDS["PackStatus"] | node, data


def cell_extremes(node: int, vmin: float, vmax: float, nmin: int = 1, nmax: int = 2):
    data = codec.encode_cell_extremes(
        codec.CellExtremes(vmin, vmax, nmin, nmax, round((vmin + vmax) / 2, 3))
    )
    return codec.FRAME_IDS["CellExtremes"] | node, data


def temperature_extremes(node: int, tmin: float, tmax: float) -> tuple[int, bytes]:
    data = codec.encode_temperature_extremes(codec.TemperatureExtremes(tmin, tmax, 1, 2, 25.0))
    return codec.FRAME_IDS["TemperatureExtremes"] | node, data


def cell_voltages(node: int, group: int, volts: tuple[float, float, float, float]):
    data = codec.encode_cell_voltages(codec.CellVoltages(group, volts))
    return codec.FRAME_IDS["CellVoltages"] | node, data

"""Settings of the commercial packs (`battery.packs`): which ids of the topology are packs
with their own BMS, and how to reach each.

Pack ids share the node id space of `battery.topology.strings` (0..15): an id listed here is a
commercial pack, every other id of the topology a moat-bms node, so one string may mix both.
Cells per pack come from the topology as for a node (`cells_per_node`, `cells`); what the BMS
reports is checked against it at run time.
"""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, model_validator

from gateway.contracts.section import Section

# The serial protocols (one module per BMS family in this folder, a link per family in
# gateway/runtime/) and the CAN one (pylontech_can.py).
SERIAL_SOURCES = ("jbd", "jk", "jk-modbus", "daly")
CAN_SOURCES = ("pylontech-can",)
SourceName = Literal["jbd", "jk", "jk-modbus", "daly", "pylontech-can"]


class PackBusSettings(Section):
    """The python-can bus a CAN battery is on (a bus of its own, or shared by id offsets)."""

    interface: str = Field(..., description="python-can interface: socketcan, slcan, virtual, ...")
    channel: str | int = Field(..., description="python-can channel: can1, /dev/ttyACM1, ...")
    bitrate: int | None = Field(
        500_000, ge=10_000, le=1_000_000, description="bit rate (Pylontech LV CAN: 500000)"
    )

    def bus_kwargs(self) -> dict[str, str | int]:
        kwargs: dict[str, str | int] = {"interface": self.interface, "channel": self.channel}
        if self.bitrate is not None:
            kwargs["bitrate"] = self.bitrate
        return kwargs


class PackSettings(Section):
    """One commercial pack: its protocol and where it is connected."""

    source: SourceName = Field(
        ..., description="the BMS's protocol: jbd, jk, jk-modbus, daly or pylontech-can"
    )
    port: str | None = Field(
        None, description="serial port of a jbd/jk/jk-modbus/daly BMS (/dev/ttyUSB0, ...)"
    )
    address: int | None = Field(
        None, ge=0, le=255, description="the BMS's address on a shared RS485 line, if any"
    )
    baudrate: int | None = Field(
        None, ge=1200, le=921_600, description="serial speed; left out: the protocol's default"
    )
    bus: PackBusSettings | None = Field(None, description="the CAN bus of a pylontech-can battery")
    id_offset: int = Field(
        0,
        ge=0,
        le=0x80,
        description="pylontech-can: the battery's frames at 0x351+offset.. (and the keepalive "
        "at 0x305+offset), for several batteries on one bus",
    )
    keepalive: bool = Field(
        True, description="pylontech-can: answer the battery with the inverter's 0x305 keepalive"
    )
    poll_s: float = Field(1.0, ge=0.1, le=60.0, description="how often the pack is read, s")
    timeout_s: float = Field(
        5.0,
        ge=0.5,
        le=120.0,
        description="a pack without a good reading for this long is missing (its string stops), s",
    )
    control: bool = Field(
        True,
        description="let the gateway switch the BMS's charge/discharge MOSFETs off (and on "
        "again when it reports no fault), as a node's relay",
    )

    @model_validator(mode="after")
    def _reachable(self) -> Self:
        if self.source in SERIAL_SOURCES:
            if self.port is None:
                raise ValueError(f"port: a {self.source} BMS needs its serial port")
            if self.bus is not None:
                raise ValueError(f"bus: a {self.source} BMS is on a serial port, not a CAN bus")
        else:
            if self.bus is None:
                raise ValueError(f"bus: a {self.source} battery needs its CAN bus")
            if self.port is not None or self.address is not None or self.baudrate is not None:
                raise ValueError(
                    f"port/address/baudrate: a {self.source} battery is on a CAN bus, not serial"
                )
        if self.poll_s * 2 > self.timeout_s:
            raise ValueError(
                f"timeout_s: {self.timeout_s} s must be at least two polls ({2 * self.poll_s} s)"
            )
        return self


def pack_problems(packs: dict[int, PackSettings], topology_nodes: list[int]) -> list[str]:
    """Cross-section checks of `battery.packs` against the topology, one line per offending
    key: an id not in any string; two packs on one port or one CAN id range."""
    problems = []
    for pack in sorted(packs):
        if pack not in topology_nodes:
            problems.append(
                f"battery.packs.{pack}: pack {pack} is in no string of battery.topology.strings"
            )
    on_port: dict[str, list[int]] = {}
    buses: dict[tuple[str, str | int, int], int] = {}
    for pack, cfg in sorted(packs.items()):
        if cfg.port is not None:
            sharing = on_port.setdefault(cfg.port, [])
            for other in sharing:
                address = packs[other].address
                if cfg.address is None or address is None or address == cfg.address:
                    problems.append(
                        f"battery.packs.{pack}.address: pack {other} is on {cfg.port} too: "
                        "packs sharing a port each need an address of their own"
                    )
                    break
            sharing.append(pack)
        if cfg.bus is not None:
            bkey = (cfg.bus.interface, cfg.bus.channel, cfg.id_offset)
            if bkey in buses:
                problems.append(
                    f"battery.packs.{pack}.id_offset: pack {buses[bkey]} already uses offset "
                    f"{cfg.id_offset} on {cfg.bus.interface} {cfg.bus.channel}"
                )
            buses.setdefault(bkey, pack)
    return problems

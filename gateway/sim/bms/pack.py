"""The state of one emulated commercial pack, shared by the protocol emulators of this folder:
what its BMS measures, the MOSFET switches the host commanded, and the protection flags the
BMS raises (in its own protocol's bits, see each emulator's BLOCKS).

A MOSFET conducts when the host left it switched on and no raised protection flag holds it
off: a BMS refuses to switch on into its own fault.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class PackState:
    cells_mv: list[int] = field(default_factory=lambda: [3300] * 16)
    temps_c: list[int] = field(default_factory=lambda: [25, 26])
    current_ma: int = 0  # + = charging
    capacity_mah: int = 100_000
    remaining_mah: int = 50_000
    cycles: int = 0
    charge_switch: bool = True  # the host's command
    discharge_switch: bool = True
    alarms: int = 0  # raised protection flags, in the emulated protocol's bit order

    @property
    def voltage_mv(self) -> int:
        return sum(self.cells_mv)

    @property
    def soc(self) -> int:
        """Per cent, as a BMS's coulomb counter reports it."""
        return round(100 * self.remaining_mah / self.capacity_mah) if self.capacity_mah else 0

    def conducts(self, blocks: dict[int, tuple[bool, bool]]) -> tuple[bool, bool]:
        """(charge on, discharge on) given which alarm bits hold which MOSFET off
        (bit -> (blocks charge, blocks discharge))."""
        charge, discharge = self.charge_switch, self.discharge_switch
        for bit, (holds_charge, holds_discharge) in blocks.items():
            if self.alarms >> bit & 1:
                charge = charge and not holds_charge
                discharge = discharge and not holds_discharge
        return charge, discharge


class Emulator:
    """A BMS's serial protocol: splits the host's byte stream into requests and answers each
    one (respond is pure of I/O: state in, bytes out; switch commands change the state)."""

    pack: PackState
    CHECKSUM_FROM_END = 1  # where the last checksum byte of an answer sits, from the end

    def split(self, buf: bytearray) -> list[bytes]:
        """Take the complete requests off the front of buf (noise before a request dropped)."""
        raise NotImplementedError

    def respond(self, request: bytes) -> bytes:
        """The answer to one request (b"" for none: wrong checksum, another address)."""
        raise NotImplementedError

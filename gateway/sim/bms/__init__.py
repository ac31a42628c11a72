"""Commercial BMSes as their serial ports answer, written from the same protocol documents as
gateway/sources/packs (and independently of that code, so that each checks the other): one
emulator per protocol over a shared pack state (pack.py), and a pseudo-terminal server
(pty.py) that answers on one side of an os.openpty pair with injectable faults, for the
tests and the simulator."""

from __future__ import annotations

from gateway.sim.bms.daly import DalyEmulator
from gateway.sim.bms.jbd import JbdEmulator
from gateway.sim.bms.jk import JkEmulator
from gateway.sim.bms.jk_modbus import JkModbusEmulator
from gateway.sim.bms.pack import Emulator, PackState


def emulator(protocol: str, pack: PackState | None = None, address: int | None = None) -> Emulator:
    """The emulator of a protocol named as gateway.runtime.packlink.open_link names it, with
    `address` meaning what it means there (JK terminal number, JK-PB Modbus address, Daly
    board number; JBD has none)."""
    if protocol == "jbd":
        if address is not None:
            raise ValueError("jbd has no address: one BMS per port")
        return JbdEmulator(pack)
    if protocol == "jk":
        return JkEmulator(pack, terminal=address or 0)
    if protocol == "jk-modbus":
        return JkModbusEmulator(pack, address=1 if address is None else address)
    if protocol == "daly":
        return DalyEmulator(pack, board=address or 0)
    raise ValueError(f"no emulator for BMS protocol {protocol!r}")

"""A machine.I2C bus with fake chips on it, and the faults a real bus has.

    bus = FakeI2C()
    bus.attach(chip)              # chip.address: its 7-bit address
    bus.readfrom_mem_into(0x40, 0x01, buf)
    bus.nack = True               # every transaction fails as on a disconnected bus

A chip implements read_mem(memaddr, buf) and write_mem(memaddr, buf): one I2C transaction
each (register address, then a repeated start for the read), as machine.I2C does them.
Errors are raised as MicroPython's I2C raises them: OSError with errno ENODEV (no device
acknowledged the address) or ETIMEDOUT.
"""

ENODEV = 19
ETIMEDOUT = 110


class FakeI2C:
    """The methods of machine.I2C the drivers use, routed to the chips by address."""

    def __init__(self) -> None:
        self.chips: dict[int, object] = {}
        self.nack = False  # no device answers (wire off, chip unpowered)
        self.transactions = 0

    def attach(self, chip: object) -> None:
        self.chips[chip.address] = chip  # type: ignore[attr-defined]

    def _chip(self, addr: int) -> object:
        if self.nack or addr not in self.chips:
            raise OSError(ENODEV)
        self.transactions += 1
        return self.chips[addr]

    def readfrom_mem_into(self, addr: int, memaddr: int, buf: bytearray, addrsize: int = 8) -> None:
        self._chip(addr).read_mem(memaddr, buf)  # type: ignore[attr-defined]

    def writeto_mem(
        self, addr: int, memaddr: int, buf: bytes | bytearray, addrsize: int = 8
    ) -> None:
        self._chip(addr).write_mem(memaddr, buf)  # type: ignore[attr-defined]

    def scan(self) -> list[int]:
        return [] if self.nack else sorted(self.chips)

"""The chips' checksums, computed bit by bit as their datasheets describe them (independent
of the table-driven code of the drivers)."""


def crc8(crc: int, byte: int) -> int:
    """CRC-8, polynomial x^8 + x^2 + x + 1, MSB first (TI BQ769x0 / BQ769x2 I2C)."""
    crc ^= byte
    for _ in range(8):
        crc = ((crc << 1) ^ 0x07) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


def pec15(data: bytes | bytearray, start: int = 0, end: int = -1) -> int:
    """LTC681x packet error code: the 15-bit register of the datasheet's Figure (PEC
    computation circuit), seeded 000000000010000, x^15+x^14+x^10+x^8+x^7+x^4+x^3+1, one
    input bit at a time, returned with a 0 appended (16 bits)."""
    if end < 0:
        end = len(data)
    pec = 0x0010
    for k in range(start, end):
        byte = data[k]
        for bit in range(7, -1, -1):
            din = (byte >> bit) & 1
            in0 = din ^ ((pec >> 14) & 1)
            in3 = in0 ^ ((pec >> 2) & 1)
            in4 = in0 ^ ((pec >> 3) & 1)
            in7 = in0 ^ ((pec >> 6) & 1)
            in8 = in0 ^ ((pec >> 7) & 1)
            in10 = in0 ^ ((pec >> 9) & 1)
            in14 = in0 ^ ((pec >> 13) & 1)
            pec = (
                ((pec << 1) & 0x7FFF & ~(1 << 14 | 1 << 10 | 1 << 8 | 1 << 7 | 1 << 4 | 1 << 3 | 1))
                | in14 << 14
                | in10 << 10
                | in8 << 8
                | in7 << 7
                | in4 << 4
                | in3 << 3
                | in0
            )
    return pec << 1

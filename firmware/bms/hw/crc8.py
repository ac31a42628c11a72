"""CRC-8 with the polynomial x^8 + x^2 + x + 1 (0x07), initial value 0, no reflection.

The I2C CRC of TI's battery monitors: BQ76920/30/40 (datasheet SLUSBK2, section 8.5.1.1.2
"Communications Subsystem: CRC") and BQ769x2 (BQ76952 technical reference manual SLUUBY2,
"I2C Communications Subsystem"; worked examples in application note SLUAA11B section 4 "I2C
With CRC": [0x10 0x3E 0x22] -> 0x63, [0x10 0x14 0x11 0x68] -> 0x33, [0x0B] -> 0x31).
Table-driven; the table is built once at import.
"""


def _table():
    table = bytearray(256)
    for i in range(256):
        crc = i
        for _ in range(8):
            crc = ((crc << 1) ^ 0x07) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
        table[i] = crc
    return bytes(table)


TABLE = _table()


def crc8(crc, byte):
    """The CRC after one more byte."""
    return TABLE[crc ^ byte]


def crc8_of(buf, start=0, end=-1, crc=0):
    """CRC over buf[start:end] (end -1: to the end), without slicing."""
    if end < 0:
        end = len(buf)
    for i in range(start, end):
        crc = TABLE[crc ^ buf[i]]
    return crc

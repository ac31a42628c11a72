"""End-to-end protection of gateway commands: CRC-8/SAE-J1850 and an alive counter.

This is the reference implementation; the node and the gateway both use it.

A protected frame carries the CRC in byte 0 and a 4-bit alive counter in the low nibble of
byte 1. The CRC covers the 11-bit frame id (as two bytes, little-endian) followed by bytes
1..7, so a frame cannot be replayed onto another node's id or another message, and a
corrupted payload is caught. The counter catches a stuck sender (the same frame over and
over) and stale repeats.

CRC-8/SAE-J1850: polynomial 0x1D, initial value 0xFF, no reflection, final XOR 0xFF; the
check value of b"123456789" is 0x4B.

Runs unchanged on MicroPython: no allocation after import.
"""

POLY = 0x1D
INIT = 0xFF
XOR_OUT = 0xFF
COUNTER_MODULO = 16


def _make_table() -> bytearray:
    table = bytearray(256)
    for i in range(256):
        crc = i
        for _ in range(8):
            crc = ((crc << 1) ^ POLY) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
        table[i] = crc
    return table


_TABLE = _make_table()


def crc8(data: bytes | bytearray, start: int = 0, end: int = -1, crc: int = INIT) -> int:
    """CRC-8/SAE-J1850 of data[start:end] (end -1 = to the end), final XOR applied."""
    if end < 0:
        end = len(data)
    table = _TABLE
    for i in range(start, end):
        crc = table[crc ^ data[i]]
    return crc ^ XOR_OUT


def frame_crc(frame_id: int, data: bytes | bytearray) -> int:
    """CRC of a protected frame: frame id (2 bytes, little-endian), then data[1:8]."""
    table = _TABLE
    crc = table[INIT ^ (frame_id & 0xFF)]
    crc = table[crc ^ ((frame_id >> 8) & 0xFF)]
    if len(data) == 8:  # every protected frame: its seven bytes written out, no loop
        crc = table[crc ^ data[1]]
        crc = table[crc ^ data[2]]
        crc = table[crc ^ data[3]]
        crc = table[crc ^ data[4]]
        crc = table[crc ^ data[5]]
        crc = table[crc ^ data[6]]
        crc = table[crc ^ data[7]]
    else:
        for i in range(1, len(data)):
            crc = table[crc ^ data[i]]
    return crc ^ XOR_OUT


def seal(frame_id: int, buf: bytearray, counter: int) -> None:
    """Put the counter into buf[1] (low nibble) and the CRC into buf[0], in place."""
    buf[1] = (buf[1] & 0xF0) | (counter & 0x0F)
    buf[0] = frame_crc(frame_id, buf)


def crc_ok(frame_id: int, data: bytes | bytearray) -> bool:
    return len(data) >= 2 and data[0] == frame_crc(frame_id, data)


# Results of AliveCheck.check
ACCEPT = 0
REPEATED = 1  # same counter again: stuck or duplicated sender
JUMPED = 2  # counter skipped more than allowed: lost frames or a restarted sender


class AliveCheck:
    """Alive-counter check for one protected stream (one message id).

    A counter is accepted when it advances by 1..max_delta (modulo 16). A repeated counter
    is rejected. After a jump (a restarted gateway starts again at 0) the stream resyncs:
    the next counter that follows the jumped one by exactly 1 is accepted again, so two
    consecutive good frames are needed after a disturbance.
    """

    def __init__(self, max_delta: int = 2) -> None:
        self.max_delta = max_delta
        self.last = -1  # last accepted counter; -1 before the first frame
        self.pending = -1  # counter seen after a jump, waiting for its successor

    def reset(self) -> None:
        self.last = -1
        self.pending = -1

    def check(self, counter: int) -> int:
        counter &= 0x0F
        if self.last < 0:
            self.last = counter
            self.pending = -1
            return ACCEPT
        delta = (counter - self.last) % COUNTER_MODULO
        if delta == 0:
            return REPEATED
        if delta <= self.max_delta:
            self.last = counter
            self.pending = -1
            return ACCEPT
        if self.pending >= 0 and (counter - self.pending) % COUNTER_MODULO == 1:
            self.last = counter
            self.pending = -1
            return ACCEPT
        self.pending = counter
        return JUMPED

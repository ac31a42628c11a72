"""CAN backend for a Microchip MCP2515 stand-alone controller on SPI (e.g. on an RP2040).

    from machine import SPI, Pin
    spi = SPI(0, baudrate=8_000_000, sck=Pin(2), mosi=Pin(3), miso=Pin(4))
    bus = Mcp2515Bus(spi, Pin(5, Pin.OUT, value=1), crystal_hz=16_000_000, bitrate=500_000)

A pure-Python driver of the chip's registers (datasheet DS20001801): RESET, bit timing
(CNF1..3) for 8 or 16 MHz crystals at 125/250/500/1000 kbit/s, normal mode, the three
transmit buffers, the two receive buffers with roll-over, acceptance filters and masks, and
the error flags. Every SPI transfer uses buffers allocated here, so sending and receiving
does not allocate.

Receiving: the chip holds two frames. The gateway sends a burst of up to four frames to a
node (heartbeat, relay command, two balance groups above 32 cells) within about a
millisecond, so a node that only polls once a cycle loses the rest. Wire the chip's INT pin
and pass it as int_pin: every received frame then raises the interrupt, whose handler moves
the chip's buffers into a software queue of rx_queue frames (a soft IRQ, scheduled between
bytecodes; a handler that finds the driver in the middle of an SPI transfer leaves the
draining to the end of that transfer). recv() takes from that queue. Frames lost in the chip
(EFLG RXnOVR) or to a full queue are counted in rx_overruns.

Transmitting: frames leave in the order they were sent. The chip sends the pending buffer
of highest priority first and, among equal priorities, the highest buffer number, so each
frame loaded while others wait gets a lower TXP priority than theirs (3, 2, 1, 0); when a
fourth level would be needed send() reports the buffers full and NodeCanPort queues the frame.

tec and rec are the transmit and receive error counters, read with the error state.

After RESET the driver waits OSC_STARTUP_MS for the oscillator start-up timer before it
touches a register. The chip leaves bus-off by itself after 128 x 11 recessive bits;
restart() re-initialises it completely, which also clears its error counters. A chip that
reset itself (a brown-out puts it back into configuration mode, silently off the bus) is
reported as bus-off too, so that NodeCanPort re-initialises it.
"""

from bms.can import (
    FLAG_EXT_ID,
    FLAG_RTR,
    STATE_ACTIVE,
    STATE_BUS_OFF,
    STATE_PASSIVE,
    STATE_WARNING,
    Frame,
    FrameRing,
)
from bms.compat import const, sleep_ms

# SPI instructions
RESET = const(0xC0)
READ = const(0x03)
WRITE = const(0x02)
BIT_MODIFY = const(0x05)
READ_STATUS = const(0xA0)
RTS = const(0x80)  # | 1 << buffer
READ_RX_BUFFER = const(0x90)  # 0x90: RXB0 from SIDH, 0x94: RXB1 from SIDH
LOAD_TX_BUFFER = const(0x40)  # 0x40 / 0x42 / 0x44: TXB0 / TXB1 / TXB2 from SIDH

# Registers
CANSTAT = const(0x0E)
CANCTRL = const(0x0F)
CNF3 = const(0x28)
CNF2 = const(0x29)
CNF1 = const(0x2A)
CANINTE = const(0x2B)
CANINTF = const(0x2C)
EFLG = const(0x2D)
TEC = const(0x1C)
REC = const(0x1D)
TXB_CTRL = (0x30, 0x40, 0x50)  # TXBnCTRL: TXREQ bit 3, TXP priority bits 1:0
RXB0CTRL = const(0x60)
RXB1CTRL = const(0x70)
# Acceptance filters RXF0..RXF5 and masks RXM0, RXM1 (4 registers each: SIDH SIDL EID8 EID0).
FILTER_ADDR = (0x00, 0x04, 0x08, 0x10, 0x14, 0x18)
MASK_ADDR = (0x20, 0x24)

# Operating modes (REQOP in CANCTRL 7:5, OPMOD in CANSTAT 7:5)
MODE_NORMAL = const(0x00)
MODE_LOOPBACK = const(0x40)
MODE_CONFIG = const(0x80)
MODE_MASK = const(0xE0)

# EFLG bits
EFLG_RX1OVR = const(0x80)
EFLG_RX0OVR = const(0x40)
EFLG_TXBO = const(0x20)
EFLG_TXEP = const(0x10)
EFLG_RXEP = const(0x08)
EFLG_EWARN = const(0x01)

# READ STATUS bits
STATUS_RX0IF = const(0x01)
STATUS_RX1IF = const(0x02)
STATUS_TXREQ = (0x04, 0x10, 0x40)  # TXB0, TXB1, TXB2

RXBCTRL_RXM_ANY = const(0x60)  # masks and filters off: receive every frame
RXBCTRL_BUKT = const(0x04)  # RXB0 rolls over into RXB1 when full
SIDL_EXIDE = const(0x08)
SIDL_SRR = const(0x10)  # standard frame received as remote request
DLC_RTR = const(0x40)

MODE_RETRIES = const(50)
OSC_STARTUP_MS = const(5)  # after RESET: the oscillator start-up timer (datasheet 8.1)
CANINTE_RX = const(0x03)  # RX0IE | RX1IE: INT falls when a receive buffer fills
RX_QUEUE = const(16)
TX_PRIORITY_TOP = const(3)


def bit_timing(crystal_hz, bitrate, sample_point=75):
    """(CNF1, CNF2, CNF3) for a bit rate with the sample point nearest sample_point %.

    Datasheet section 5: TQ = 2 (BRP + 1) / Fosc; a bit is SyncSeg (1 TQ) + PropSeg +
    PS1 + PS2, 8 to 25 TQ, with PropSeg and PS1 of 1..8 TQ, PS2 of 2..8 TQ,
    PropSeg + PS1 >= PS2 and PS2 > SJW (SJW = 1 TQ here). The smallest prescaler (the most
    time quanta per bit) that divides the crystal exactly wins. Raises ValueError when no
    setting meets the rules (an 8 MHz crystal cannot do 1 Mbit/s).
    """
    for brp in range(64):
        tq, rem = divmod(crystal_hz, 2 * (brp + 1) * bitrate)
        if rem:
            continue
        if tq > 25:
            continue
        if tq < 8:
            break
        ps2 = tq - (tq * sample_point + 50) // 100
        ps2 = min(max(ps2, 2), 8)
        seg = tq - 1 - ps2  # PropSeg + PS1
        ps1 = seg // 2
        prop = seg - ps1
        if prop > 8:
            prop = 8
            ps1 = seg - 8
        if ps1 < 1 or ps1 > 8 or seg < ps2:
            continue
        cnf1 = brp  # SJW = 1 TQ (bits 7:6 = 0)
        cnf2 = 0x80 | ((ps1 - 1) << 3) | (prop - 1)  # BTLMODE: PS2 from CNF3; one sample
        cnf3 = ps2 - 1
        return cnf1, cnf2, cnf3
    raise ValueError("MCP2515: no bit timing for this crystal and bit rate")


def _encode_id(buf, at, can_id, ext):
    """SIDH, SIDL, EID8, EID0 of an identifier (filter, mask or frame) into buf[at:at+4]."""
    if ext:
        buf[at] = (can_id >> 21) & 0xFF
        buf[at + 1] = (((can_id >> 18) & 0x07) << 5) | SIDL_EXIDE | ((can_id >> 16) & 0x03)
        buf[at + 2] = (can_id >> 8) & 0xFF
        buf[at + 3] = can_id & 0xFF
    else:
        buf[at] = (can_id >> 3) & 0xFF
        buf[at + 1] = (can_id & 0x07) << 5
        buf[at + 2] = 0
        buf[at + 3] = 0


class Mcp2515Bus:
    """MCP2515 backend (see bms.can for the interface); counts rx_overruns."""

    def __init__(
        self,
        spi,
        cs,
        crystal_hz=16000000,
        bitrate=500000,
        loopback=False,
        int_pin=None,
        rx_queue=RX_QUEUE,
    ):
        self.spi = spi
        self.cs = cs
        self.int_pin = int_pin
        self.tec = 0
        self.rec = 0
        self._queue = FrameRing(rx_queue)
        self._scratch = Frame()
        self._busy = False  # inside an SPI transfer sequence: the IRQ handler must wait
        self._pending = False  # the IRQ fired while busy: drain when the sequence ends
        self._priority = TX_PRIORITY_TOP
        self.cnf = bit_timing(crystal_hz, bitrate)
        self.mode = MODE_LOOPBACK if loopback else MODE_NORMAL
        self.filters = None
        self.rx_overruns = 0
        self._one = bytearray(1)
        self._reg_out = bytearray(3)
        self._reg_in = bytearray(3)
        self._modify = bytearray(4)
        self._status_out = bytearray(2)
        self._status_in = bytearray(2)
        self._regs = bytearray(6)  # WRITE, address, 4 registers (a filter or a mask)
        self._tx = bytearray(14)  # LOAD TX BUFFER + SIDH SIDL EID8 EID0 DLC D0..D7
        self._rx_out = bytearray(14)
        self._rx_in = bytearray(14)
        cs.value(1)
        self._enter()
        try:
            self.init()
        finally:
            self._leave()
        if int_pin is not None:
            # The bound method is made once here: the handler itself does not allocate.
            int_pin.irq(handler=self._on_int, trigger=int_pin.IRQ_FALLING)

    # ---- receive interrupt and the guard around SPI sequences ----

    def _enter(self):
        self._busy = True

    def _leave(self):
        self._busy = False
        if self._pending:
            self._pending = False
            self._busy = True
            try:
                self._drain()
            finally:
                self._busy = False

    def _on_int(self, pin):
        """INT pin handler: move received frames into the queue (later, if mid-transfer)."""
        if self._busy:
            self._pending = True
            return
        self._busy = True
        try:
            self._drain()
        except OSError:  # a bus error: the next poll sees the chip's state
            pass
        finally:
            self._busy = False

    def _drain(self):
        """Every frame waiting in the chip into the software queue (counted when full)."""
        scratch = self._scratch
        queue = self._queue
        while self._read_rx(scratch):
            if not queue.put(scratch.id, scratch.data, scratch.dlc, scratch.flags):
                self.rx_overruns += 1

    # ---- SPI primitives ----

    def _command(self, instruction):
        self._one[0] = instruction
        self.cs.value(0)
        self.spi.write(self._one)
        self.cs.value(1)

    def read_register(self, address):
        """One register (READ instruction)."""
        out = self._reg_out
        out[0] = READ
        out[1] = address
        out[2] = 0
        self.cs.value(0)
        self.spi.write_readinto(out, self._reg_in)
        self.cs.value(1)
        return self._reg_in[2]

    def write_register(self, address, value):
        """One register (WRITE instruction)."""
        out = self._reg_out
        out[0] = WRITE
        out[1] = address
        out[2] = value
        self.cs.value(0)
        self.spi.write(out)
        self.cs.value(1)

    def modify_register(self, address, mask, value):
        """Change the bits of mask in a register (BIT MODIFY instruction)."""
        buf = self._modify
        buf[0] = BIT_MODIFY
        buf[1] = address
        buf[2] = mask
        buf[3] = value
        self.cs.value(0)
        self.spi.write(buf)
        self.cs.value(1)

    def read_status(self):
        """READ STATUS: receive flags and transmit requests in one byte."""
        out = self._status_out
        out[0] = READ_STATUS
        out[1] = 0
        self.cs.value(0)
        self.spi.write_readinto(out, self._status_in)
        self.cs.value(1)
        return self._status_in[1]

    def _write_id(self, address, can_id, ext, is_mask=False):
        buf = self._regs
        buf[0] = WRITE
        buf[1] = address
        _encode_id(buf, 2, can_id, ext)
        if is_mask:  # a mask has no EXIDE bit: the filter decides the frame type
            buf[3] &= ~SIDL_EXIDE
        self.cs.value(0)
        self.spi.write(buf)
        self.cs.value(1)

    # ---- configuration ----

    def set_mode(self, mode):
        """Request an operating mode and wait until the chip reports it (OSError if not)."""
        self.modify_register(CANCTRL, MODE_MASK, mode)
        for _ in range(MODE_RETRIES):
            if self.read_register(CANSTAT) & MODE_MASK == mode:
                return
        raise OSError(110)  # ETIMEDOUT: no chip, no clock or a broken SPI connection

    def init(self):
        """Reset the chip, set bit timing, filters and interrupts, and go on the bus."""
        self._command(RESET)
        sleep_ms(OSC_STARTUP_MS)  # no register access before the oscillator runs
        self._priority = TX_PRIORITY_TOP
        for _ in range(MODE_RETRIES):  # the oscillator start-up timer runs after a reset
            if self.read_register(CANSTAT) & MODE_MASK == MODE_CONFIG:
                break
        else:
            raise OSError(19)  # ENODEV
        cnf1, cnf2, cnf3 = self.cnf
        self.write_register(CNF1, cnf1)
        self.write_register(CNF2, cnf2)
        self.write_register(CNF3, cnf3)
        self.write_register(CANINTE, CANINTE_RX if self.int_pin is not None else 0)
        self.write_register(CANINTF, 0)
        self._apply_filters()
        self.set_mode(self.mode)

    def _apply_filters(self):
        """Program masks and filters for self.filters (configuration mode only)."""
        plan = _filter_plan(self.filters)
        if plan is None:
            self.write_register(RXB0CTRL, RXBCTRL_RXM_ANY | RXBCTRL_BUKT)
            self.write_register(RXB1CTRL, RXBCTRL_RXM_ANY)
            return
        masks, slots = plan
        for i in range(2):
            mask, ext = masks[i]
            self._write_id(MASK_ADDR[i], mask, ext, True)
        for i in range(6):
            fid, ext = slots[i]
            self._write_id(FILTER_ADDR[i], fid, ext)
        self.write_register(RXB0CTRL, RXBCTRL_BUKT)
        self.write_register(RXB1CTRL, 0)

    # ---- backend interface ----

    def set_filters(self, filters):
        """Program acceptance filters (see bms.can); more than the chip can hold -> all."""
        self.filters = filters
        self._enter()
        try:
            self.set_mode(MODE_CONFIG)
            self._apply_filters()
            self.set_mode(self.mode)
        finally:
            self._leave()

    def send(self, can_id, data, flags):
        """Load a free transmit buffer, below the waiting ones in priority, and request it."""
        self._enter()
        try:
            return self._send(can_id, data, flags)
        finally:
            self._leave()

    def _send(self, can_id, data, flags):
        status = self.read_status()
        if not status & (STATUS_TXREQ[0] | STATUS_TXREQ[1] | STATUS_TXREQ[2]):
            self._priority = TX_PRIORITY_TOP  # nothing waits: start from the top again
        priority = self._priority
        if priority < 0:
            return False  # no lower priority left: wait until the buffers drain
        for n in range(3):
            if not status & STATUS_TXREQ[n]:
                break
        else:
            return False
        dlc = len(data)
        buf = self._tx
        buf[0] = LOAD_TX_BUFFER | (n << 1)
        _encode_id(buf, 1, can_id, flags & FLAG_EXT_ID)
        buf[5] = dlc | (DLC_RTR if flags & FLAG_RTR else 0)
        for i in range(8):
            buf[6 + i] = data[i] if i < dlc else 0
        self.cs.value(0)
        self.spi.write(buf)
        self.cs.value(1)
        self.write_register(TXB_CTRL[n], priority)
        self._priority = priority - 1
        self._command(RTS | (1 << n))
        return True

    def recv(self, frame):
        """The oldest received frame: the chip's buffers are moved into the queue first."""
        self._enter()
        try:
            self._drain()
        finally:
            self._leave()
        return self._queue.get(frame)

    def _read_rx(self, frame):
        """Read the oldest full receive buffer (RXB0 first); reading clears its flag."""
        status = self.read_status()
        if status & STATUS_RX0IF:
            instruction = READ_RX_BUFFER
        elif status & STATUS_RX1IF:
            instruction = READ_RX_BUFFER | 0x04
        else:
            return False
        out = self._rx_out
        out[0] = instruction
        self.cs.value(0)
        self.spi.write_readinto(out, self._rx_in)
        self.cs.value(1)
        b = self._rx_in  # b[1..4] SIDH SIDL EID8 EID0, b[5] DLC, b[6..13] data
        sidl = b[2]
        can_id = (b[1] << 3) | (sidl >> 5)
        flags = 0
        if sidl & SIDL_EXIDE:
            can_id = (can_id << 18) | ((sidl & 0x03) << 16) | (b[3] << 8) | b[4]
            flags = FLAG_EXT_ID
            if b[5] & DLC_RTR:
                flags |= FLAG_RTR
        elif sidl & SIDL_SRR:
            flags = FLAG_RTR
        dlc = b[5] & 0x0F
        dlc = min(dlc, 8)
        frame.id = can_id
        frame.flags = flags
        frame.dlc = dlc
        data = frame.data
        for i in range(8):
            data[i] = b[6 + i] if i < dlc else 0
        return True

    def state(self):
        """Error state from EFLG; a chip out of its operating mode counts as bus-off."""
        self._enter()
        try:
            return self._state()
        finally:
            self._leave()

    def _state(self):
        if self.read_register(CANSTAT) & MODE_MASK != self.mode:
            return STATE_BUS_OFF
        self.tec = self.read_register(TEC)
        self.rec = self.read_register(REC)
        eflg = self.read_register(EFLG)
        if eflg & (EFLG_RX0OVR | EFLG_RX1OVR):
            self.rx_overruns += 1
            self.modify_register(EFLG, EFLG_RX0OVR | EFLG_RX1OVR, 0)
        if eflg & EFLG_TXBO:
            return STATE_BUS_OFF
        if eflg & (EFLG_TXEP | EFLG_RXEP):
            return STATE_PASSIVE
        if eflg & EFLG_EWARN:
            return STATE_WARNING
        return STATE_ACTIVE

    def restart(self):
        """Re-initialise the chip: clears bus-off, error counters and pending frames."""
        self._enter()
        try:
            self.init()
        finally:
            self._leave()


def _filter_plan(filters):
    """Map (id, mask, flags) filters onto the chip's 2 masks and 6 filters, or None (all).

    RXB0 has mask 0 with filters 0..1, RXB1 has mask 1 with filters 2..5. Filters that
    share a mask go to the same buffer; unused filter slots repeat a used one.
    """
    if filters is None or len(filters) == 0 or len(filters) > 6:
        return None
    groups = []
    for fid, mask, flags in filters:
        key = (mask, flags & FLAG_EXT_ID)
        for group in groups:
            if group[0] == key:
                group[1].append((fid, flags & FLAG_EXT_ID))
                break
        else:
            groups.append((key, [(fid, flags & FLAG_EXT_ID)]))
    if len(groups) == 1:
        key, ids = groups[0]
        first, second = ids[:2], ids[2:] or ids[:2]
        groups = [(key, first), (key, second)]
    elif len(groups) == 2:
        if len(groups[0][1]) > 2:
            groups.reverse()
    else:
        return None
    (mask0, ids0), (mask1, ids1) = groups
    if len(ids0) > 2 or len(ids1) > 4:
        return None
    slots = [ids0[i % len(ids0)] for i in range(2)] + [ids1[i % len(ids1)] for i in range(4)]
    return (mask0, mask1), slots

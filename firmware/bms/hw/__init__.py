"""Hardware abstraction: what the node measures and drives, in integer units.

A hardware backend is an object with these attributes, refreshed by sample():

    cells, temps        number of series cells and of cell temperature sensors
    cell_mv             list of cells ints: cell voltages, mV
    temp_dc             list of temps ints: cell temperatures, 0.1 degC
    pack_mv             pack voltage at the node's terminals, mV
    current_ma          pack current, mA, positive = charging
    balancer_temp_dc    balancer (bleed resistor) temperature, 0.1 degC
    relay_drive         True while the relay coil is driven (as last set)
    relay_closed        relay feedback contact: True when the relay reports closed
    open_wire           cells whose sense wire the cell monitor found open, a bit mask
                        (bit i = cell i + 1); 0 when none or when the monitor cannot tell

Any reading that is missing (open thermistor, failed conversion, no such sensor) holds
NOT_AVAILABLE. And these methods:

    sample(now_ms) -> bool
        Refresh the readings. True when the cell monitor delivered a fresh conversion; a
        monitor that stops converting (hung chip, broken isolated link) returns False and the
        node raises SensorFault once no fresh data arrived for sensor_stale_ms. May raise
        OSError on a bus error, which counts as no fresh data.
    set_relay(closed, now_ms) -> None
        Drive the relay coil.
    set_balance(words) -> None
        Switch the balancer outputs: words[k] bit b = bleed cell 16 k + b + 1 (4 words).

A cell with an open sense wire has no usable reading, whatever its register says: the node
counts it as unreadable (SensorFault, and its limits keep their previous verdict).

Everything is an int (floats allocate on MicroPython). Backends: sim.SimHardware (tests and
the system simulator) and board.BoardHardware (machine.ADC and machine.Pin, with the cell
voltages, temperatures and balancer outputs from a cell-monitor object; see
docs/firmware.md for what a cell-monitor driver must implement).
"""

from bms.compat import const

# A reading that is not available. Far outside every physical range, and a small int on
# MicroPython (no allocation).
NOT_AVAILABLE = const(-0x10000000)
BALANCE_WORDS = const(4)


class CellMonitor:
    """Base of cell-monitor drivers (BQ769x0, LTC681x, ...) used by board.BoardHardware.

    A driver sets cells and temps and implements read, balancer_temp_dc and set_balance
    (docs/firmware.md, "Cell-monitor drivers"); open_wire is optional.
    """

    cells = 0
    temps = 0

    def read(self, cell_mv, temp_dc):
        """Fill cell_mv (mV) and temp_dc (0.1 degC); False when no fresh conversion."""
        raise NotImplementedError

    def balancer_temp_dc(self):
        """Balancer temperature, 0.1 degC, or NOT_AVAILABLE."""
        return NOT_AVAILABLE

    def set_balance(self, words):
        """Switch the bleed outputs: 4 words, bit b of word k = cell 16 k + b + 1."""
        raise NotImplementedError

    def open_wire(self):
        """Cells with an open sense wire as a bit mask (bit i = cell i + 1); 0 = none found.

        Called every cycle: a driver runs its open-wire test (LTC681x ADOW pull-up/pull-down
        pair, BQ769x0 cell-balancing trick) at its own pace and returns the result of the
        last one, kept as a stored int so that the call does not allocate. The default says
        that this monitor cannot tell.
        """
        return 0

"""Hardware backend for a real board: machine.ADC, machine.Pin and a cell-monitor driver.

    from machine import ADC, Pin
    hw = BoardHardware(
        monitor,                                   # cell-monitor driver, see below
        relay_pin=Pin(15, Pin.OUT, value=0),
        feedback_pin=Pin(14, Pin.IN, Pin.PULL_UP), feedback_active_high=False,
        pack_adc=ADC(26), pack_uv_per_count=1007,  # 66 V full scale through a divider
        current_adc=ADC(27), current_zero=32768, current_ua_per_count=7629,  # +-250 A hall
    )

Pack voltage: ADC.read_u16() counts (averaged over adc_samples) x pack_uv_per_count / 1000
gives mV. Current: (counts - current_zero) x current_ua_per_count / 1000 gives mA, positive
= charging (use a negative factor if the sensor is mounted the other way round). A current
reading at either end of the ADC range is a saturated or disconnected sensor and reads
NOT_AVAILABLE (SensorFault). All arithmetic stays within MicroPython's small ints.

The cell monitor (BQ769x0, LTC681x, ...) is an object with:
    cells, temps                         counts it measures
    read(cell_mv, temp_dc) -> bool       fill both lists (mV, 0.1 degC, NOT_AVAILABLE for a
                                         missing value); False if no fresh conversion
    balancer_temp_dc() -> int            0.1 degC or NOT_AVAILABLE
    set_balance(words) -> None           4 words, bit b of word k = cell 16 k + b + 1
    open_wire() -> int                   optional: cells with an open sense wire, bit i =
                                         cell i + 1 (bms.hw.CellMonitor has the default 0)
"""

from bms.hw import NOT_AVAILABLE

ADC_FULL_SCALE = 65535
_SCALE_LIMIT = 16384  # keeps counts x factor below 2**30


class BoardHardware:
    """Hardware backend on machine.ADC / machine.Pin (see bms.hw and the module docstring)."""

    def __init__(
        self,
        monitor,
        relay_pin,
        pack_adc,
        pack_uv_per_count,
        current_adc,
        current_zero,
        current_ua_per_count,
        feedback_pin=None,
        relay_active_high=True,
        feedback_active_high=True,
        adc_samples=4,
    ):
        if not 0 < pack_uv_per_count < _SCALE_LIMIT or not 0 < abs(current_ua_per_count) < (
            _SCALE_LIMIT
        ):
            raise ValueError("ADC scale factor out of range (1..16383)")
        if not 1 <= adc_samples <= 16:
            raise ValueError("adc_samples must be 1..16")
        self.monitor = monitor
        self.cells = monitor.cells
        self.temps = monitor.temps
        self.cell_mv = [NOT_AVAILABLE] * monitor.cells
        self.temp_dc = [NOT_AVAILABLE] * monitor.temps
        self.pack_mv = NOT_AVAILABLE
        self.current_ma = NOT_AVAILABLE
        self.balancer_temp_dc = NOT_AVAILABLE
        self.relay_pin = relay_pin
        self.feedback_pin = feedback_pin
        self.relay_on = 1 if relay_active_high else 0
        self.feedback_on = 1 if feedback_active_high else 0
        self.pack_adc = pack_adc
        self.pack_uv_per_count = pack_uv_per_count
        self.current_adc = current_adc
        self.current_zero = current_zero
        self.current_ua_per_count = current_ua_per_count
        self.adc_samples = adc_samples
        self.relay_drive = False
        self.relay_closed = False
        self.open_wire = 0
        # Looked up once: a bound method stored here is called without allocating.
        self._open_wire = getattr(monitor, "open_wire", None)
        relay_pin.value(1 - self.relay_on)  # open until the node decides otherwise

    def _average(self, adc):
        total = 0
        for _ in range(self.adc_samples):
            total += adc.read_u16()
        return total // self.adc_samples

    def sample(self, now_ms):
        """Read the ADCs, the relay feedback and the cell monitor."""
        counts = self._average(self.pack_adc)
        if counts >= ADC_FULL_SCALE:
            self.pack_mv = NOT_AVAILABLE
        else:
            self.pack_mv = counts * self.pack_uv_per_count // 1000
        counts = self._average(self.current_adc)
        if counts <= 0 or counts >= ADC_FULL_SCALE:
            self.current_ma = NOT_AVAILABLE
        else:
            self.current_ma = (counts - self.current_zero) * self.current_ua_per_count // 1000
        if self.feedback_pin is None:
            self.relay_closed = self.relay_drive
        else:
            self.relay_closed = self.feedback_pin.value() == self.feedback_on
        self.balancer_temp_dc = self.monitor.balancer_temp_dc()
        fresh = self.monitor.read(self.cell_mv, self.temp_dc)
        if self._open_wire is not None:
            self.open_wire = self._open_wire()
        return fresh

    def set_relay(self, closed, now_ms):
        """Drive the relay output."""
        self.relay_drive = closed
        self.relay_pin.value(self.relay_on if closed else 1 - self.relay_on)

    def set_balance(self, words):
        """Pass the balancer outputs on to the cell monitor."""
        self.monitor.set_balance(words)

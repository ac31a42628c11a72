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

With a shunt monitor instead (shunt=Ina226(...) or Ina228(...), bms.hw.ina22x) the current
comes from it and current_adc is left out; without a pack_adc the pack voltage is the
shunt monitor's bus voltage too (wire VBUS to the pack's positive terminal).

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
        pack_adc=None,
        pack_uv_per_count=1,
        current_adc=None,
        current_zero=32768,
        current_ua_per_count=1,
        feedback_pin=None,
        relay_active_high=True,
        feedback_active_high=True,
        adc_samples=4,
        shunt=None,
    ):
        if not 0 < pack_uv_per_count < _SCALE_LIMIT or not 0 < abs(current_ua_per_count) < (
            _SCALE_LIMIT
        ):
            raise ValueError("ADC scale factor out of range (1..16383)")
        if shunt is None and (pack_adc is None or current_adc is None):
            raise ValueError("pack_adc and current_adc are needed without a shunt monitor")
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
        self.shunt = shunt
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
        """Read the cell monitor, the ADCs (or the shunt monitor) and the relay feedback.

        The cell monitor first: a monitor that also serves as the shunt monitor (BQ769x0)
        hands out the pack voltage and current of the conversion read just now.
        """
        fresh = self.monitor.read(self.cell_mv, self.temp_dc)
        if self.pack_adc is None:
            self.pack_mv = self.shunt.read_bus_mv()
        else:
            counts = self._average(self.pack_adc)
            if counts >= ADC_FULL_SCALE:
                self.pack_mv = NOT_AVAILABLE
            else:
                self.pack_mv = counts * self.pack_uv_per_count // 1000
        if self.shunt is not None:
            self.current_ma = self.shunt.read_current_ma()
        else:
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

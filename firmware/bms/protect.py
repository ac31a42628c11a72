"""Local protection: table-driven limit checks with up/down debounce and release hysteresis.

Every cycle the node fills Protection.measure from the summarised readings and calls
update(now_ms). Each row of the table checks one measure against one limit at one level
(info = MOL, warning = RSL, fault = MSL) of one protection kind:

* A sample is bad when the measure is beyond the limit (above an upper limit, below a lower
  one); once the row is active it stays bad until the measure is back inside the limit by
  the row's hysteresis, so a value hovering at the limit does not chatter.
* An up/down counter in milliseconds: while consecutive samples are bad it counts up by the
  time between them, while consecutive good samples it counts down; the first sample after
  a change counts nothing. The row sets when the counter reaches the debounce time and
  clears when it is back at 0. So a condition sets debounce ms after the first sample that
  shows it (a fault opens the relay within debounce + one cycle of its onset) and clears
  debounce ms after the first sample without it; a sensor flickering between good and bad
  never builds up a count.

The kinds and their bit order are NodeState's protection flags (docs/protocol.md). faults,
warnings and infos are the active rows as bit masks of those kinds. The node adds CommLoss
and the Internal fault itself (they depend on time and configuration, not on readings).

Temperature kinds: the info and warning levels of the charge limits are checked whatever
the current direction, so the gateway learns that it must not charge before it starts; the
fault level (the relay opens) applies only while charging (current above charge_detect_a).
Likewise the discharge limits' fault level applies only while discharging or idle.
"""

from bms.compat import const, ticks_diff

# Protection kinds: bit k = flag k of each level in NodeState.
CELL_OVER_VOLTAGE = const(0x0001)
CELL_UNDER_VOLTAGE = const(0x0002)
PACK_OVER_VOLTAGE = const(0x0004)
PACK_UNDER_VOLTAGE = const(0x0008)
CHARGE_OVER_TEMP = const(0x0010)
CHARGE_UNDER_TEMP = const(0x0020)
DISCHARGE_OVER_TEMP = const(0x0040)
DISCHARGE_UNDER_TEMP = const(0x0080)
CHARGE_OVER_CURRENT = const(0x0100)
DISCHARGE_OVER_CURRENT = const(0x0200)
SENSOR_FAULT = const(0x0400)
PLAUSIBILITY = const(0x0800)
COMM_LOSS = const(0x1000)
BALANCER_OVER_TEMP = const(0x2000)
RELAY_FAULT = const(0x4000)
INTERNAL = const(0x8000)

KIND_NAMES = (
    "CellOverVoltage",
    "CellUnderVoltage",
    "PackOverVoltage",
    "PackUnderVoltage",
    "ChargeOverTemp",
    "ChargeUnderTemp",
    "DischargeOverTemp",
    "DischargeUnderTemp",
    "ChargeOverCurrent",
    "DischargeOverCurrent",
    "SensorFault",
    "Plausibility",
    "CommLoss",
    "BalancerOverTemp",
    "RelayFault",
    "Internal",
)

INFO = const(0)
WARNING = const(1)
FAULT = const(2)

# Measures (indices into Protection.measure). A measure that cannot be evaluated (no usable
# reading, or a direction that does not apply) holds NONE_HIGH for lower-limit checks and
# NONE_LOW for upper-limit checks, so the check sees a good sample; missing readings are
# SensorFault's business.
M_CELL_MAX = const(0)
M_CELL_MIN = const(1)
M_PACK_HIGH = const(2)
M_PACK_LOW = const(3)
M_TEMP_MAX = const(4)
M_TEMP_MIN = const(5)
M_CHARGE_TEMP_MAX = const(6)
M_CHARGE_TEMP_MIN = const(7)
M_DISCHARGE_TEMP_MAX = const(8)
M_DISCHARGE_TEMP_MIN = const(9)
M_CHARGE_CURRENT = const(10)
M_DISCHARGE_CURRENT = const(11)
M_SENSOR_CRITICAL = const(12)
M_SENSOR_ANY = const(13)
M_PLAUSIBILITY = const(14)
M_BALANCER_TEMP = const(15)
M_RELAY_MISMATCH = const(16)
M_OVERRUN = const(17)
MEASURES = const(18)

NONE_LOW = const(-0x8000000)
NONE_HIGH = const(0x8000000)


class Protection:
    """The protection table of one node, built from its Config; see the module docstring."""

    def __init__(self, config):
        self.config = config
        self.measure = [0] * MEASURES
        self.faults = 0
        self.warnings = 0
        self.infos = 0
        self.charging = False
        self._last_ms = 0
        self._started = False
        # One row per (kind, level) check, in parallel lists.
        self.kind = []
        self.level = []
        self.source = []
        self.upper = []
        self.limit = []
        self.hysteresis = []
        self.debounce = []
        self.count = []
        self.was_bad = []
        self.active = []
        c = config
        volt = c.debounce_voltage_ms
        temp = c.debounce_temperature_ms
        amps = c.debounce_current_ms
        cell_hyst = c.hysteresis_cell_mv
        pack_hyst = c.hysteresis_pack_mv
        self._levels(CELL_OVER_VOLTAGE, M_CELL_MAX, True, c.cell_over_mv, cell_hyst, volt)
        self._levels(CELL_UNDER_VOLTAGE, M_CELL_MIN, False, c.cell_under_mv, cell_hyst, volt)
        self._levels(PACK_OVER_VOLTAGE, M_PACK_HIGH, True, c.pack_over_mv, pack_hyst, volt)
        self._levels(PACK_UNDER_VOLTAGE, M_PACK_LOW, False, c.pack_under_mv, pack_hyst, volt)
        hyst = c.hysteresis_dc
        for kind, upper, limits, advisory, fault in (
            (CHARGE_OVER_TEMP, True, c.charge_over_dc, M_TEMP_MAX, M_CHARGE_TEMP_MAX),
            (CHARGE_UNDER_TEMP, False, c.charge_under_dc, M_TEMP_MIN, M_CHARGE_TEMP_MIN),
            (DISCHARGE_OVER_TEMP, True, c.discharge_over_dc, M_TEMP_MAX, M_DISCHARGE_TEMP_MAX),
            (DISCHARGE_UNDER_TEMP, False, c.discharge_under_dc, M_TEMP_MIN, M_DISCHARGE_TEMP_MIN),
        ):
            self._row(kind, INFO, advisory, upper, limits[INFO], hyst, temp)
            self._row(kind, WARNING, advisory, upper, limits[WARNING], hyst, temp)
            self._row(kind, FAULT, fault, upper, limits[FAULT], hyst, temp)
        amps_hyst = c.hysteresis_ma
        self._levels(CHARGE_OVER_CURRENT, M_CHARGE_CURRENT, True, c.charge_over_ma, amps_hyst, amps)
        self._levels(
            DISCHARGE_OVER_CURRENT, M_DISCHARGE_CURRENT, True, c.discharge_over_ma, amps_hyst, amps
        )
        sensor = c.debounce_sensor_ms
        self._row(SENSOR_FAULT, WARNING, M_SENSOR_ANY, True, 0, 0, sensor)
        self._row(SENSOR_FAULT, FAULT, M_SENSOR_CRITICAL, True, 0, 0, sensor)
        plaus = c.debounce_plausibility_ms
        self._levels(PLAUSIBILITY, M_PLAUSIBILITY, True, c.plausibility_mv, pack_hyst, plaus)
        if c.balancer_temp_sensor:
            self._levels(BALANCER_OVER_TEMP, M_BALANCER_TEMP, True, c.balancer_over_dc, hyst, temp)
        self._row(RELAY_FAULT, FAULT, M_RELAY_MISMATCH, True, 0, 0, c.relay_feedback_delay_ms)
        self._row(INTERNAL, WARNING, M_OVERRUN, True, 0, 0, 0)
        self.rows = len(self.kind)

    def _row(self, kind, level, source, upper, limit, hysteresis, debounce):
        self.kind.append(kind)
        self.level.append(level)
        self.source.append(source)
        self.upper.append(upper)
        self.limit.append(limit)
        self.hysteresis.append(hysteresis)
        self.debounce.append(debounce)
        self.count.append(0)
        self.was_bad.append(False)
        self.active.append(False)

    def _levels(self, kind, source, upper, limits, hysteresis, debounce):
        for level in (INFO, WARNING, FAULT):
            self._row(kind, level, source, upper, limits[level], hysteresis, debounce)

    def measure_from(self, summary, hw, stale, overrun):
        """Fill the measures from a Summary and the hardware's pack, current and relay."""
        m = self.measure
        c = self.config
        if summary.cell_max_no:
            m[M_CELL_MAX] = summary.cell_max_mv
            m[M_CELL_MIN] = summary.cell_min_mv
        else:
            m[M_CELL_MAX] = NONE_LOW
            m[M_CELL_MIN] = NONE_HIGH
        if summary.pack_ok:
            m[M_PACK_HIGH] = hw.pack_mv
            m[M_PACK_LOW] = hw.pack_mv
        else:
            m[M_PACK_HIGH] = NONE_LOW
            m[M_PACK_LOW] = NONE_HIGH
        current = hw.current_ma if summary.current_ok else 0
        charging = current > c.charge_detect_ma
        self.charging = charging
        m[M_CHARGE_CURRENT] = current if current > 0 else 0
        m[M_DISCHARGE_CURRENT] = -current if current < 0 else 0
        if summary.temp_max_no:
            hi = summary.temp_max_dc
            lo = summary.temp_min_dc
        else:
            hi = NONE_LOW
            lo = NONE_HIGH
        m[M_TEMP_MAX] = hi
        m[M_TEMP_MIN] = lo
        m[M_CHARGE_TEMP_MAX] = hi if charging else NONE_LOW
        m[M_CHARGE_TEMP_MIN] = lo if charging else NONE_HIGH
        m[M_DISCHARGE_TEMP_MAX] = NONE_LOW if charging else hi
        m[M_DISCHARGE_TEMP_MIN] = NONE_HIGH if charging else lo
        critical = (
            stale
            or summary.cells_bad > 0
            or summary.temps_bad > 0
            or not summary.pack_ok
            or not summary.current_ok
        )
        balancer_missing = c.balancer_temp_sensor and not summary.balancer_ok
        m[M_SENSOR_CRITICAL] = 1 if critical else 0
        m[M_SENSOR_ANY] = 1 if critical or balancer_missing else 0
        if summary.cells_bad == 0 and summary.pack_ok:
            diff = summary.cell_sum_mv - hw.pack_mv
            m[M_PLAUSIBILITY] = diff if diff >= 0 else -diff
        else:
            m[M_PLAUSIBILITY] = NONE_LOW
        m[M_BALANCER_TEMP] = hw.balancer_temp_dc if summary.balancer_ok else NONE_LOW
        m[M_RELAY_MISMATCH] = 1 if hw.relay_drive != hw.relay_closed else 0
        m[M_OVERRUN] = 1 if overrun else 0

    def update(self, now_ms):
        """Run every row on the current measures; recompute faults, warnings and infos."""
        if self._started:
            dt = ticks_diff(now_ms, self._last_ms)
            dt = max(dt, 0)
        else:
            dt = 0
            self._started = True
        self._last_ms = now_ms
        m = self.measure
        source = self.source
        upper = self.upper
        limit = self.limit
        hysteresis = self.hysteresis
        debounce = self.debounce
        count = self.count
        was_bad = self.was_bad
        active = self.active
        kind = self.kind
        level = self.level
        faults = warnings = infos = 0
        for r in range(self.rows):
            value = m[source[r]]
            on = active[r]
            if upper[r]:
                bad = value > (limit[r] - hysteresis[r] if on else limit[r])
            else:
                bad = value < (limit[r] + hysteresis[r] if on else limit[r])
            n = count[r]
            if bad:
                if was_bad[r]:
                    n += dt
                was_bad[r] = True
                if n >= debounce[r]:
                    n = debounce[r]
                    on = True
            else:
                if not was_bad[r]:
                    n -= dt
                was_bad[r] = False
                if n <= 0:
                    n = 0
                    on = False
            count[r] = n
            active[r] = on
            if on:
                lv = level[r]
                if lv == FAULT:
                    faults |= kind[r]
                elif lv == WARNING:
                    warnings |= kind[r]
                else:
                    infos |= kind[r]
        self.faults = faults
        self.warnings = warnings
        self.infos = infos

"""Local protection: table-driven limit checks with a leaky debounce and release hysteresis.

Every cycle the node fills Protection.measure (and Protection.unknown) from the summarised
readings and calls update(now_ms). Each row of the table checks one measure against one
limit at one level (info = MOL, warning = RSL, fault = MSL) of one protection kind:

* A sample is bad when the measure is beyond the limit (above an upper limit, below a lower
  one); once the row is active it stays bad until the measure is back inside the limit by
  the row's hysteresis, so a value hovering at the limit does not chatter.
* A sample whose measure is unknown (a reading it depends on is unavailable or stale) and
  not beyond the limit repeats the row's previous verdict: an unreadable sample never counts
  as good for the limit it guards.
* A leaky counter of milliseconds: the time from one sample to the next counts up in full
  when the earlier sample was bad and down by a quarter (LEAK_SHIFT) when it was good. The
  row sets when the counter reaches the debounce time D and clears when it is back at 0.
  So a condition that stays bad sets D ms after its first sample (the relay opens within
  D + one cycle of its onset); one that is bad in a share p > 1/5 of the time, however it
  alternates, sets within 4 D / (5 p - 1) (bad half the time: 2.7 D; a third: 6 D); an
  active row clears 4 D after the condition is gone (the counter is capped at D). A row
  with D = 0 follows its samples.

The kinds and their bit order are NodeState's protection flags (docs/protocol.md). faults,
warnings and infos are the active rows as bit masks of those kinds. The node adds CommLoss
and the Internal fault itself (they depend on time and configuration, not on readings).

Temperature kinds: the info and warning levels of the charge limits are checked whatever
the current direction, so the gateway learns that it must not charge before it starts; the
fault level (the relay opens) applies while charging (bms.plausible: the charge above
charge_detect_a has reached charge_detect_as).
Likewise the discharge limits' fault level applies while discharging or idle. When the
direction is unknown (no usable or no plausible current reading) both fault levels apply:
a pack outside its charge window must not be charged by a current the node cannot see.
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
# NONE_LOW for upper-limit checks, so the value itself is never beyond a limit; when a
# reading it depends on is missing, Protection.unknown[measure] is 1 and the rows on it keep
# their previous verdict (a direction that does not apply is known: unknown stays 0).
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
M_DEADLINE = const(18)
M_TEMP_SPREAD = const(19)
MEASURES = const(20)

# A good sample counts the time to the next one down by 1 / 2**LEAK_SHIFT: a bad share above
# 1 / (2**LEAK_SHIFT + 1) = 1/5 always builds up (module docstring). The counters hold
# 2**LEAK_SHIFT units per millisecond so that the leak is exact.
LEAK_SHIFT = const(2)

NONE_LOW = const(-0x8000000)
NONE_HIGH = const(0x8000000)
# Bounds of a row's quiet band (Protection._rows) beyond every measure, NONE_* included,
# and still small integers on MicroPython (no allocation): a band [_BELOW_ALL, _NEVER] holds
# no value, so a row that is not quiet always takes the full path. As a measure's bound
# (Protection.update), _NEVER lies below every value and _ABOVE_ALL above every value, so
# a measure with a row that is not quiet always runs its rows.
_BELOW_ALL = const(-0x10000000)
_ABOVE_ALL = const(0x10000000)
_NEVER = const(-0x10000001)


ALL = (INFO, WARNING, FAULT)
ABOVE = True  # an upper limit: bad above it
BELOW = False  # a lower limit: bad below it

# The protection table (docs/safety.md, "Node protection"): one line per kind, a row per
# level. The measure of the info and warning rows, then of the fault row (the temperature
# faults apply only in the current's direction, their advisory levels always); the limit,
# release hysteresis and debounce are Config attributes (a per-level list is indexed by the
# level; None is 0); the last column names a Config switch the line depends on.
# fmt: off
TABLE = (
    # kind                  levels       info/warning measure   fault measure           limit                  hysteresis              debounce                    only if
    (CELL_OVER_VOLTAGE,      ALL,        M_CELL_MAX,            M_CELL_MAX,             ABOVE, "cell_over_mv",       "hysteresis_cell_mv",   "debounce_voltage_ms",      None),
    (CELL_UNDER_VOLTAGE,     ALL,        M_CELL_MIN,            M_CELL_MIN,             BELOW, "cell_under_mv",      "hysteresis_cell_mv",   "debounce_voltage_ms",      None),
    (PACK_OVER_VOLTAGE,      ALL,        M_PACK_HIGH,           M_PACK_HIGH,            ABOVE, "pack_over_mv",       "hysteresis_pack_mv",   "debounce_voltage_ms",      None),
    (PACK_UNDER_VOLTAGE,     ALL,        M_PACK_LOW,            M_PACK_LOW,             BELOW, "pack_under_mv",      "hysteresis_pack_mv",   "debounce_voltage_ms",      None),
    (CHARGE_OVER_TEMP,       ALL,        M_TEMP_MAX,            M_CHARGE_TEMP_MAX,      ABOVE, "charge_over_dc",     "hysteresis_dc",        "debounce_temperature_ms",  None),
    (CHARGE_UNDER_TEMP,      ALL,        M_TEMP_MIN,            M_CHARGE_TEMP_MIN,      BELOW, "charge_under_dc",    "hysteresis_charge_cold_dc", "debounce_temperature_ms", None),
    (DISCHARGE_OVER_TEMP,    ALL,        M_TEMP_MAX,            M_DISCHARGE_TEMP_MAX,   ABOVE, "discharge_over_dc",  "hysteresis_dc",        "debounce_temperature_ms",  None),
    (DISCHARGE_UNDER_TEMP,   ALL,        M_TEMP_MIN,            M_DISCHARGE_TEMP_MIN,   BELOW, "discharge_under_dc", "hysteresis_dc",        "debounce_temperature_ms",  None),
    (CHARGE_OVER_CURRENT,    ALL,        M_CHARGE_CURRENT,      M_CHARGE_CURRENT,       ABOVE, "charge_over_ma",     "hysteresis_ma",        "debounce_current_ms",      None),
    (DISCHARGE_OVER_CURRENT, ALL,        M_DISCHARGE_CURRENT,   M_DISCHARGE_CURRENT,    ABOVE, "discharge_over_ma",  "hysteresis_ma",        "debounce_current_ms",      None),
    (SENSOR_FAULT,           (WARNING,), M_SENSOR_ANY,          M_SENSOR_ANY,           ABOVE, None,                 None,                   "debounce_sensor_ms",       None),
    (SENSOR_FAULT,           (FAULT,),   M_SENSOR_CRITICAL,     M_SENSOR_CRITICAL,      ABOVE, None,                 None,                   "debounce_sensor_ms",       None),
    # The cell temperature sensors checked against each other: one far from the others is
    # drifting, loose or misplaced (or one cell is heating: the relay opens either way).
    (SENSOR_FAULT,           (FAULT,),   M_TEMP_SPREAD,         M_TEMP_SPREAD,          ABOVE, "temp_spread_dc",     "hysteresis_dc",        "debounce_temperature_ms",  None),
    (PLAUSIBILITY,           ALL,        M_PLAUSIBILITY,        M_PLAUSIBILITY,         ABOVE, "plausibility_mv",    "hysteresis_pack_mv",   "debounce_plausibility_ms", None),
    (BALANCER_OVER_TEMP,     ALL,        M_BALANCER_TEMP,       M_BALANCER_TEMP,        ABOVE, "balancer_over_dc",   "hysteresis_dc",        "debounce_temperature_ms",  "balancer_temp_sensor"),
    (RELAY_FAULT,            (FAULT,),   M_RELAY_MISMATCH,      M_RELAY_MISMATCH,       ABOVE, None,                 None,                   "relay_feedback_delay_ms",  None),
    (INTERNAL,               (WARNING,), M_OVERRUN,             M_OVERRUN,              ABOVE, None,                 None,                   None,                       None),
    # A task-timing violation opens the relay (foxBMS does too): the readings the protection
    # acted on are older than its bounds assume.
    (INTERNAL,               (FAULT,),   M_DEADLINE,            M_DEADLINE,             ABOVE, None,                 None,                   None,                       None),
)
# fmt: on


def _setting(config, name, level):
    """A table cell: the Config attribute `name` (a per-level list indexed by level), or 0."""
    if name is None:
        return 0
    value = getattr(config, name)
    return value[level] if isinstance(value, list) else value


class Protection:
    """The protection table of one node, built from its Config; see the module docstring."""

    def __init__(self, config):
        self.config = config
        self.measure = [0] * MEASURES
        self.unknown = bytearray(MEASURES)
        self.faults = 0
        self.warnings = 0
        self.infos = 0
        self.charging = False
        # True while the relay feedback may still lag a drive change (set by the node): a
        # mismatch then is the relay's own switching time, not a fault.
        self.feedback_settling = False
        self._last_ms = 0
        self._started = False
        # One row per (kind, level) check, in parallel lists, grouped by measure: the rows
        # on measure s are first[s] .. first[s + 1] - 1.
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
        # A row is quiet when it is off, its last sample was good and its counter is at 0:
        # then a good sample changes nothing. quiet_lo / quiet_hi bound the good values of a
        # quiet row; quiet_hi is _NEVER while the row is not quiet.
        self.quiet_lo = []
        self.quiet_hi = []
        self._quiet_hi = []  # quiet_hi of the row when quiet
        c = config
        self.first = [0] * (MEASURES + 1)
        for s in range(MEASURES):  # the rows on each measure in table order
            for kind, levels, advisory, fault, upper, limit, hysteresis, debounce, only_if in TABLE:
                if only_if is not None and not getattr(c, only_if):
                    continue
                for level in levels:
                    if (fault if level == FAULT else advisory) == s:
                        self._row(
                            kind,
                            level,
                            s,
                            upper,
                            _setting(c, limit, level),
                            _setting(c, hysteresis, level),
                            _setting(c, debounce, level),
                        )
            self.first[s + 1] = len(self.kind)
        self.rows = len(self.kind)
        # Every row on a measure has the same kind of limit (the table's measures are upper
        # or lower ones), so one bound per measure says when all its rows are quiet and its
        # value good for each: at or below bound[s] for an upper measure, at or above it for
        # a lower one. update() passes such a measure after one comparison instead of one
        # per row. A measure without rows counts as an upper one that is always quiet.
        for r in range(self.rows):
            if self.upper[r] != self.upper[self.first[self.source[r]]]:
                raise ValueError("protection table: upper and lower limits on one measure")
        self.lower_measures = tuple(
            s
            for s in range(MEASURES)
            if self.first[s] < self.first[s + 1] and not self.upper[self.first[s]]
        )
        self.upper_measures = tuple(s for s in range(MEASURES) if s not in self.lower_measures)
        self.bound = [0] * MEASURES
        for s in range(MEASURES):
            self._band(s)

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
        self.quiet_lo.append(_BELOW_ALL if upper else limit)
        self.quiet_hi.append(limit if upper else _ABOVE_ALL)
        self._quiet_hi.append(limit if upper else _ABOVE_ALL)

    def _band(self, s):
        """bound[s] from the quiet bands of the rows on measure s (their intersection)."""
        lo = _BELOW_ALL
        hi = _ABOVE_ALL
        for r in range(self.first[s], self.first[s + 1]):
            lo = max(lo, self.quiet_lo[r])
            hi = min(hi, self.quiet_hi[r])
        if lo > hi:  # a row is not quiet: no value passes
            self.bound[s] = _ABOVE_ALL if s in self.lower_measures else _NEVER
        else:
            self.bound[s] = lo if s in self.lower_measures else hi

    def measure_from(self, summary, hw, stale, overrun, late, check):
        """Fill the measures from a Summary, the hardware's pack and relay and the current
        as bms.plausible's CurrentCheck has it (check, updated this cycle).

        stale: no fresh cell-monitor data (the readings are frozen, so unknown); overrun: a
        late cycle; late: a cycle beyond its deadline. From check: the current less its
        zero, whether the pack is charging, offset (the current read beyond its rest limit
        with the relay open: a sensor fault) and direction_doubtful (the pack voltage
        contradicts the current's direction), which make the direction unknown.
        """
        m = self.measure
        u = self.unknown
        c = self.config
        cells_unknown = 1 if stale or summary.cells_bad else 0
        if summary.cell_max_no:
            m[M_CELL_MAX] = summary.cell_max_mv
            m[M_CELL_MIN] = summary.cell_min_mv
        else:
            m[M_CELL_MAX] = NONE_LOW
            m[M_CELL_MIN] = NONE_HIGH
        u[M_CELL_MAX] = u[M_CELL_MIN] = cells_unknown
        if summary.pack_ok:
            m[M_PACK_HIGH] = hw.pack_mv
            m[M_PACK_LOW] = hw.pack_mv
            u[M_PACK_HIGH] = u[M_PACK_LOW] = 0
        else:
            m[M_PACK_HIGH] = NONE_LOW
            m[M_PACK_LOW] = NONE_HIGH
            u[M_PACK_HIGH] = u[M_PACK_LOW] = 1
        current_ok = summary.current_ok
        current = check.current_ma
        charging = check.charging
        current_offset = check.offset
        self.charging = charging
        m[M_CHARGE_CURRENT] = current if current > 0 else 0
        m[M_DISCHARGE_CURRENT] = -current if current < 0 else 0
        u[M_CHARGE_CURRENT] = u[M_DISCHARGE_CURRENT] = 0 if current_ok else 1
        if summary.temp_max_no:
            hi = summary.temp_max_dc
            lo = summary.temp_min_dc
        else:
            hi = NONE_LOW
            lo = NONE_HIGH
        temps_unknown = 1 if stale or summary.temps_bad else 0
        m[M_TEMP_MAX] = hi
        m[M_TEMP_MIN] = lo
        direction_known = current_ok and not current_offset and not check.direction_doubtful
        charge_window = charging or not direction_known
        discharge_window = not charging or not direction_known
        m[M_CHARGE_TEMP_MAX] = hi if charge_window else NONE_LOW
        m[M_CHARGE_TEMP_MIN] = lo if charge_window else NONE_HIGH
        m[M_DISCHARGE_TEMP_MAX] = hi if discharge_window else NONE_LOW
        m[M_DISCHARGE_TEMP_MIN] = lo if discharge_window else NONE_HIGH
        m[M_TEMP_SPREAD] = hi - lo if summary.temp_max_no else NONE_LOW
        u[M_TEMP_MAX] = u[M_TEMP_MIN] = u[M_CHARGE_TEMP_MAX] = u[M_CHARGE_TEMP_MIN] = temps_unknown
        u[M_DISCHARGE_TEMP_MAX] = u[M_DISCHARGE_TEMP_MIN] = u[M_TEMP_SPREAD] = temps_unknown
        critical = (
            stale
            or summary.cells_bad > 0
            or summary.temps_bad > 0
            or not summary.pack_ok
            or not current_ok
            or current_offset
        )
        balancer_missing = c.balancer_temp_sensor and not summary.balancer_ok
        m[M_SENSOR_CRITICAL] = 1 if critical else 0
        m[M_SENSOR_ANY] = 1 if critical or balancer_missing else 0
        if summary.cells_bad == 0 and summary.pack_ok:
            diff = summary.cell_sum_mv - hw.pack_mv
            m[M_PLAUSIBILITY] = diff if diff >= 0 else -diff
            u[M_PLAUSIBILITY] = 0
        else:
            m[M_PLAUSIBILITY] = NONE_LOW
            u[M_PLAUSIBILITY] = 1
        if summary.balancer_ok:
            m[M_BALANCER_TEMP] = hw.balancer_temp_dc
            u[M_BALANCER_TEMP] = 0
        else:
            m[M_BALANCER_TEMP] = NONE_LOW
            u[M_BALANCER_TEMP] = 1
        mismatch = hw.relay_drive != hw.relay_closed and not self.feedback_settling
        m[M_RELAY_MISMATCH] = 1 if mismatch else 0
        m[M_OVERRUN] = 1 if overrun else 0
        m[M_DEADLINE] = 1 if late else 0

    def update(self, now_ms):
        """Run every row on the current measures; recompute faults, warnings and infos."""
        if self._started:
            dt = ticks_diff(now_ms, self._last_ms)
            dt = max(dt, 0)
        else:
            dt = 0
            self._started = True
        self._last_ms = now_ms
        self.faults = self.warnings = self.infos = 0
        m = self.measure
        bound = self.bound
        # Most measures have every row quiet and a good sample: nothing changes, and an off
        # row adds no bit (_rows would give the same).
        for s in self.upper_measures:
            if m[s] > bound[s]:
                self._rows(s, m[s], dt)
        for s in self.lower_measures:
            if m[s] < bound[s]:
                self._rows(s, m[s], dt)

    def _rows(self, s, value, dt):
        """Run the rows on measure s (value) after dt ms; add the active ones' kinds."""
        rise = dt << LEAK_SHIFT
        unknown = self.unknown[s]
        upper = self.upper
        limit = self.limit
        hysteresis = self.hysteresis
        debounce = self.debounce
        count = self.count
        was_bad = self.was_bad
        active = self.active
        quiet_lo = self.quiet_lo
        quiet_hi = self.quiet_hi
        for r in range(self.first[s], self.first[s + 1]):
            if quiet_lo[r] <= value <= quiet_hi[r]:
                continue  # this row is quiet and its sample good, as above
            on = active[r]
            if upper[r]:
                bad = value > (limit[r] - hysteresis[r] if on else limit[r])
            else:
                bad = value < (limit[r] + hysteresis[r] if on else limit[r])
            before = was_bad[r]
            if not bad and unknown:
                bad = before  # an unreadable sample never counts as good
            # The time since the previous sample counts by that sample's verdict.
            n = count[r] + rise if before else count[r] - dt
            was_bad[r] = bad
            d = debounce[r] << LEAK_SHIFT
            if d == 0:
                n = 0
                on = bad
            elif n >= d:
                n = d
                on = True
            elif n <= 0:
                n = 0
                on = False
            count[r] = n
            active[r] = on
            quiet_hi[r] = self._quiet_hi[r] if n == 0 and not on and not bad else _NEVER
            if on:
                lv = self.level[r]
                if lv == FAULT:
                    self.faults |= self.kind[r]
                elif lv == WARNING:
                    self.warnings |= self.kind[r]
                else:
                    self.infos |= self.kind[r]
        self._band(s)

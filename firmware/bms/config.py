"""Node configuration: a JSON object on the board's flash (/bms.json), validated at start.

    config = load_config({"node_id": 2, "cells": 16, "chemistry": "LFP"})
    config = load_config_file("/bms.json")
    settings = default_config("NMC")        # every key with its NMC default, as a dict
    settings.update(node_id=3, cells=14)
    config = load_config(settings)

Every key is optional; missing keys take the defaults of the configured chemistry (LFP, NMC
or LTO). Level lists are [info, warning, fault] (MOL, RSL, MSL): ascending for upper limits,
descending for lower limits. docs/firmware.md lists every key with its unit and defaults.

Validation never raises: unknown keys, wrong types, values out of range and inconsistent
limits give a Config whose error holds every reason, and the node then stays in ConfigError
with its relay open. Values are converted once, here, to the integer units of the hot path
(mV, mA, 0.1 degC, ms).
"""

import json

from bms.auth import parse_key
from bms.compat import const

CHEMISTRIES = ("LFP", "NMC", "LTO")  # index = NodeInfo.Chemistry code
COMM_LOSS_ACTIONS = ("keep", "open")
AUTO_RECLOSE_MIN_MS = const(5000)
DEADLINE_CYCLES = const(10)  # cycle_deadline_ms 0: this many cycles (500 ms at 50 ms)

_INT = const(0)
_NUMBER = const(1)
_LEVELS = const(2)
_CHOICE = const(3)
_BOOL = const(4)
_KEY = const(5)

_UPPER = const(1)  # level list ascending: info < warning < fault
_LOWER = const(-1)  # level list descending: info > warning > fault

# key, kind, then for _INT/_NUMBER/_LEVELS the allowed range (and _UPPER/_LOWER for levels),
# for _CHOICE the allowed values.
SCHEMA = (
    ("node_id", _INT, 0, 15),
    ("cells", _INT, 1, 64),
    ("temp_sensors", _INT, 1, 64),
    ("chemistry", _CHOICE, CHEMISTRIES),
    ("capacity_ah", _NUMBER, 0.1, 6553.5),
    ("cycle_ms", _INT, 10, 1000),
    ("cycle_deadline_ms", _INT, 0, 60000),
    ("settle_ms", _INT, 0, 60000),
    ("cell_over_mv", _LEVELS, 1000, 5000, _UPPER),
    ("cell_under_mv", _LEVELS, 500, 4500, _LOWER),
    ("pack_over_mv_per_cell", _LEVELS, 1000, 5000, _UPPER),
    ("pack_under_mv_per_cell", _LEVELS, 500, 4500, _LOWER),
    ("charge_over_temp_c", _LEVELS, -40, 100, _UPPER),
    ("charge_under_temp_c", _LEVELS, -50, 60, _LOWER),
    ("discharge_over_temp_c", _LEVELS, -40, 100, _UPPER),
    ("discharge_under_temp_c", _LEVELS, -50, 60, _LOWER),
    ("charge_over_current_a", _LEVELS, 0.1, 5000, _UPPER),
    ("discharge_over_current_a", _LEVELS, 0.1, 5000, _UPPER),
    ("charge_detect_a", _NUMBER, 0, 100),
    ("charge_detect_as", _NUMBER, 0, 100),
    ("current_rest_limit_a", _NUMBER, 0.1, 100),
    ("charge_rise_mv_per_cell", _INT, 0, 500),
    ("plausibility_mv", _LEVELS, 10, 100000, _UPPER),
    ("balancer_over_temp_c", _LEVELS, 20, 150, _UPPER),
    ("temp_spread_c", _NUMBER, 5, 100),
    ("hysteresis_cell_mv", _INT, 0, 500),
    ("hysteresis_temp_c", _NUMBER, 0, 30),
    ("hysteresis_charge_cold_c", _NUMBER, 0, 30),
    ("hysteresis_current_a", _NUMBER, 0, 500),
    ("debounce_voltage_ms", _INT, 0, 60000),
    ("debounce_temperature_ms", _INT, 0, 60000),
    ("debounce_current_ms", _INT, 0, 60000),
    ("debounce_sensor_ms", _INT, 0, 60000),
    ("debounce_plausibility_ms", _INT, 0, 60000),
    ("sensor_stale_ms", _INT, 100, 60000),
    ("gateway_timeout_ms", _INT, 1000, 600000),
    ("comm_loss_action", _CHOICE, COMM_LOSS_ACTIONS),
    ("auto_reclose_ms", _INT, 0, 86400000),
    ("auto_reclose_per_hour", _INT, 1, 10),
    ("relay_feedback_delay_ms", _INT, 10, 5000),
    ("balance_floor_mv", _INT, 500, 5000),
    ("balance_hysteresis_mv", _INT, 0, 200),
    ("balance_timeout_ms", _INT, 1500, 60000),
    ("balancer_temp_sensor", _BOOL),
    ("watchdog_ms", _INT, 0, 8000),
    ("command_key", _KEY),
)

COMMON_DEFAULTS = {
    "node_id": 0,
    "cells": 16,
    "temp_sensors": 4,
    "capacity_ah": 100,
    "cycle_ms": 50,
    "cycle_deadline_ms": 0,
    "settle_ms": 2000,
    "charge_over_current_a": [50, 90, 100],
    "discharge_over_current_a": [80, 95, 100],
    "charge_detect_a": 0.5,
    "charge_detect_as": 2,
    "current_rest_limit_a": 5,
    "charge_rise_mv_per_cell": 15,
    "plausibility_mv": [500, 1000, 2000],
    "balancer_over_temp_c": [60, 70, 85],
    "temp_spread_c": 25,
    "hysteresis_cell_mv": 20,
    "hysteresis_temp_c": 5,
    # Warming after a cold night is slow and steady (no chatter to damp), and the plating
    # risk is the present temperature: a band as wide as the others' held the LFP warning
    # (3 degC) to 8 degC, hours past the gateway's own re-open point (0 degC + 5 K).
    "hysteresis_charge_cold_c": 2,
    "hysteresis_current_a": 5,
    "debounce_voltage_ms": 200,
    "debounce_temperature_ms": 1000,
    "debounce_current_ms": 100,
    "debounce_sensor_ms": 500,
    "debounce_plausibility_ms": 1000,
    "sensor_stale_ms": 1000,
    "gateway_timeout_ms": 5000,
    "comm_loss_action": "keep",
    "auto_reclose_ms": 0,
    "auto_reclose_per_hour": 3,
    "relay_feedback_delay_ms": 250,
    "balance_hysteresis_mv": 10,
    "balance_timeout_ms": 3000,
    "balancer_temp_sensor": True,
    "watchdog_ms": 5000,
    "command_key": "",
}

CHEMISTRY_DEFAULTS = {
    "LFP": {
        "cell_over_mv": [3550, 3600, 3650],
        "cell_under_mv": [2900, 2700, 2500],
        "pack_over_mv_per_cell": [3550, 3600, 3650],
        "pack_under_mv_per_cell": [2900, 2700, 2500],
        "charge_over_temp_c": [35, 40, 45],
        "charge_under_temp_c": [10, 3, 0],
        "discharge_over_temp_c": [45, 50, 55],
        "discharge_under_temp_c": [-10, -15, -20],
        "balance_floor_mv": 3100,
    },
    "NMC": {
        "cell_over_mv": [4150, 4200, 4250],
        "cell_under_mv": [3300, 3200, 3000],
        "pack_over_mv_per_cell": [4150, 4200, 4250],
        "pack_under_mv_per_cell": [3300, 3200, 3000],
        "charge_over_temp_c": [35, 40, 45],
        "charge_under_temp_c": [10, 3, 0],
        "discharge_over_temp_c": [45, 50, 55],
        "discharge_under_temp_c": [-10, -15, -20],
        "balance_floor_mv": 3500,
    },
    "LTO": {
        "cell_over_mv": [2750, 2800, 2850],
        "cell_under_mv": [2100, 2000, 1900],
        "pack_over_mv_per_cell": [2750, 2800, 2850],
        "pack_under_mv_per_cell": [2100, 2000, 1900],
        "charge_over_temp_c": [40, 45, 50],
        "charge_under_temp_c": [-20, -25, -30],
        "discharge_over_temp_c": [45, 50, 55],
        "discharge_under_temp_c": [-30, -35, -40],
        "balance_floor_mv": 2100,
    },
}

# Debounce keys a fault present at start-up must pass before the relay may first close.
_BOOT_DEBOUNCES = (
    "debounce_voltage_ms",
    "debounce_temperature_ms",
    "debounce_current_ms",
    "debounce_sensor_ms",
    "debounce_plausibility_ms",
)
# Lower and upper limit pairs: every lower level must lie below every upper level.
_LIMIT_PAIRS = (
    ("cell_under_mv", "cell_over_mv"),
    ("pack_under_mv_per_cell", "pack_over_mv_per_cell"),
    ("charge_under_temp_c", "charge_over_temp_c"),
    ("discharge_under_temp_c", "discharge_over_temp_c"),
)


def default_config(chemistry="LFP"):
    """Every configuration key with its default for a chemistry, as a new dict."""
    out = {}
    for source in (COMMON_DEFAULTS, CHEMISTRY_DEFAULTS[chemistry]):
        for key, value in source.items():
            out[key] = list(value) if isinstance(value, list) else value
    out["chemistry"] = chemistry
    return out


def _is_int(value):
    return type(value) is int  # bool is not an int here


def _is_number(value):
    return type(value) is int or type(value) is float


def _range(rule):
    return str(rule[2]) + ".." + str(rule[3])


def _check(key, value, rule, errors):
    kind = rule[1]
    if kind in (_INT, _NUMBER):
        ok_type = _is_int(value) if kind == _INT else _is_number(value)
        if not ok_type:
            errors.append(key + ": expected " + ("an integer" if kind == _INT else "a number"))
        elif not rule[2] <= value <= rule[3]:
            errors.append(key + ": " + str(value) + " outside " + _range(rule))
    elif kind == _LEVELS:
        if not isinstance(value, list) or len(value) != 3 or not all(_is_number(v) for v in value):
            errors.append(key + ": expected [info, warning, fault] numbers")
            return
        for v in value:
            if not rule[2] <= v <= rule[3]:
                errors.append(key + ": " + str(v) + " outside " + _range(rule))
                return
        sign = rule[4]
        if not (sign * value[0] < sign * value[1] < sign * value[2]):
            order = "info < warning < fault" if sign == _UPPER else "info > warning > fault"
            errors.append(key + ": levels must be " + order)
    elif kind == _CHOICE:
        if value not in rule[2]:
            errors.append(key + ": expected one of " + ", ".join(rule[2]))
    elif kind == _BOOL and type(value) is not bool:
        errors.append(key + ": expected true or false")
    elif kind == _KEY:
        if type(value) is not str:
            errors.append(key + ": expected a hex string")
            return
        try:
            parse_key(value)
        except ValueError as exc:
            errors.append(str(exc))


def _cross_checks(values, errors):
    for lower, upper in _LIMIT_PAIRS:
        if values[lower][0] >= values[upper][0]:
            errors.append(lower + " must lie below " + upper)
    floor = values["balance_floor_mv"]
    if not values["cell_under_mv"][2] < floor < values["cell_over_mv"][2]:
        errors.append("balance_floor_mv must lie between the cell under- and over-voltage faults")
    longest = 0
    for key in _BOOT_DEBOUNCES:
        longest = max(longest, values[key])
    if values["settle_ms"] < longest:
        errors.append("settle_ms must be at least the longest debounce (" + str(longest) + " ms)")
    deadline = values["cycle_deadline_ms"]
    if deadline and deadline < 2 * values["cycle_ms"]:
        errors.append("cycle_deadline_ms must be 0 (ten cycles) or at least two cycles")
    if values["sensor_stale_ms"] < 2 * values["cycle_ms"]:
        errors.append("sensor_stale_ms must be at least two cycles")
    reclose = values["auto_reclose_ms"]
    if reclose and reclose < AUTO_RECLOSE_MIN_MS:
        errors.append(
            "auto_reclose_ms must be 0 (off) or at least "
            + str(AUTO_RECLOSE_MIN_MS)
            + " ms (a relay that recloses faster wears out against a persistent fault)"
        )
    watchdog = values["watchdog_ms"]
    if watchdog and watchdog < 4 * values["cycle_ms"]:
        errors.append("watchdog_ms must be 0 (off) or at least four cycles")


def _validate(settings):
    """(values, errors): settings merged over the chemistry's defaults, and what is wrong."""
    if not isinstance(settings, dict):
        return None, ["the configuration must be a JSON object"]
    errors = []
    known = {}
    for rule in SCHEMA:
        known[rule[0]] = rule
    for key in settings:
        if key not in known:
            errors.append("unknown key " + repr(key))
    chemistry = settings.get("chemistry", "LFP")
    if chemistry not in CHEMISTRIES:
        errors.append("chemistry: expected one of " + ", ".join(CHEMISTRIES))
        return None, errors
    values = default_config(chemistry)
    for key, value in settings.items():
        if key in known:
            _check(key, value, known[key], errors)
            values[key] = value
    if errors:
        return None, errors
    _cross_checks(values, errors)
    if errors:
        return None, errors
    return values, errors


def _dc(celsius):
    """Degrees Celsius (int or float) to 0.1 degC."""
    return round(celsius * 10)


def _levels(values, scale):
    return [round(v * scale) for v in values]


class Config:
    """Validated node configuration in hot-path units; error is None or every reason."""

    def __init__(self, values, error=None, node_id_valid=True):
        self.error = error
        # False when the node id itself is not known (no readable configuration): such a
        # node must not transmit, since node_id is only a stand-in.
        self.node_id_valid = node_id_valid
        self.settings = values  # the merged key/value settings, as in /bms.json
        v = values
        cells = v["cells"]
        self.node_id = v["node_id"]
        self.cells = cells
        self.temp_sensors = v["temp_sensors"]
        self.chemistry = v["chemistry"]
        self.chemistry_code = CHEMISTRIES.index(v["chemistry"])
        self.capacity_dah = round(v["capacity_ah"] * 10)
        self.cycle_ms = v["cycle_ms"]
        self.cycle_deadline_ms = v["cycle_deadline_ms"] or DEADLINE_CYCLES * v["cycle_ms"]
        self.settle_ms = v["settle_ms"]
        self.cell_over_mv = _levels(v["cell_over_mv"], 1)
        self.cell_under_mv = _levels(v["cell_under_mv"], 1)
        self.pack_over_mv = _levels(v["pack_over_mv_per_cell"], cells)
        self.pack_under_mv = _levels(v["pack_under_mv_per_cell"], cells)
        self.charge_over_dc = _levels(v["charge_over_temp_c"], 10)
        self.charge_under_dc = _levels(v["charge_under_temp_c"], 10)
        self.discharge_over_dc = _levels(v["discharge_over_temp_c"], 10)
        self.discharge_under_dc = _levels(v["discharge_under_temp_c"], 10)
        self.charge_over_ma = _levels(v["charge_over_current_a"], 1000)
        self.discharge_over_ma = _levels(v["discharge_over_current_a"], 1000)
        self.charge_detect_ma = round(v["charge_detect_a"] * 1000)
        self.charge_detect_mams = round(v["charge_detect_as"] * 1000000)  # mA x ms
        self.current_rest_limit_ma = round(v["current_rest_limit_a"] * 1000)
        self.charge_rise_mv_per_cell = v["charge_rise_mv_per_cell"]
        self.plausibility_mv = _levels(v["plausibility_mv"], 1)
        self.balancer_over_dc = _levels(v["balancer_over_temp_c"], 10)
        self.temp_spread_dc = _dc(v["temp_spread_c"])
        self.hysteresis_cell_mv = v["hysteresis_cell_mv"]
        self.hysteresis_pack_mv = v["hysteresis_cell_mv"] * cells
        self.hysteresis_dc = _dc(v["hysteresis_temp_c"])
        self.hysteresis_charge_cold_dc = _dc(v["hysteresis_charge_cold_c"])
        self.hysteresis_ma = round(v["hysteresis_current_a"] * 1000)
        self.debounce_voltage_ms = v["debounce_voltage_ms"]
        self.debounce_temperature_ms = v["debounce_temperature_ms"]
        self.debounce_current_ms = v["debounce_current_ms"]
        self.debounce_sensor_ms = v["debounce_sensor_ms"]
        self.debounce_plausibility_ms = v["debounce_plausibility_ms"]
        self.sensor_stale_ms = v["sensor_stale_ms"]
        self.gateway_timeout_ms = v["gateway_timeout_ms"]
        self.comm_loss_opens = v["comm_loss_action"] == "open"
        self.auto_reclose_ms = v["auto_reclose_ms"]
        self.auto_reclose_per_hour = v["auto_reclose_per_hour"]
        self.relay_feedback_delay_ms = v["relay_feedback_delay_ms"]
        self.balance_floor_mv = v["balance_floor_mv"]
        self.balance_hysteresis_mv = v["balance_hysteresis_mv"]
        self.balance_timeout_ms = v["balance_timeout_ms"]
        self.balancer_temp_sensor = v["balancer_temp_sensor"]
        self.watchdog_ms = v["watchdog_ms"]
        self.command_key = parse_key(v["command_key"])  # bytes or None: never on the bus


def load_config(settings):
    """Validate a settings dict (as read from /bms.json) into a Config; never raises."""
    try:
        values, errors = _validate(settings)
    except Exception as exc:  # a malformed structure must still end in ConfigError
        values, errors = None, ["invalid configuration: " + repr(exc)]
    if values is not None:
        return Config(values)
    # Safe stand-in values so that the node can run (relay open) and report the error under
    # its own id when that much is valid.
    fallback = default_config("LFP")
    valid_id = False
    if isinstance(settings, dict):
        node_id = settings.get("node_id", 0)  # an absent key means the default id, 0
        if _is_int(node_id) and 0 <= node_id <= 15:
            fallback["node_id"] = node_id
            valid_id = True
    return Config(fallback, "; ".join(errors), valid_id)


def load_config_file(path="/bms.json"):
    """Read and validate a JSON configuration file; a missing or broken file is an error."""
    try:
        with open(path) as f:
            settings = json.load(f)
    except OSError:
        return error_config("cannot read " + path)
    except ValueError:
        return error_config(path + " is not valid JSON")
    return load_config(settings)


def error_config(reason):
    """A ConfigError configuration carrying reason, without a node id (listen-only)."""
    return Config(default_config("LFP"), reason, node_id_valid=False)

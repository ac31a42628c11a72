"""A simulated hybrid inverter that listens to the battery like a real one.

It reads the battery's Pylontech-compatible frames (decoded with gateway.codec.pylontech_lv)
and decides, each step, the current it pushes into the battery (A, + = charging):

- PV surplus charges, a deficit discharges (the grid covers the rest), within CCL / DCL and
  its own maximum; force charge (0x35C) charges from the grid at `force_charge_a`.
- A voltage loop honours CVL and DVL: the current allowed is gain * (CVL - V) on charge
  and gain * (V - DVL) on discharge, so charging tapers off as the battery nears CVL. The
  current follows its target through a first-order lag (`response_tau_s`): like a real
  inverter, it does not jump, so the battery's CVL feedback is tested with a real lag.
  Given the battery's resistance (`battery_ohm`), the loop aims at the current where it
  settles, V being the battery's voltage at that current: a real loop runs far faster than
  the simulator's step and settles within it, where a loop evaluated once a step swings
  between charge and discharge on a cold, resistive battery.
- Enable bits and protection / alarm flags (0x35C, 0x359, 0x35A) stop a direction.
- No 0x351 for `battery_timeout_s` (3 s, like Victron): switch off at once, no current
  either way (or keep the last limits, `missing_battery_action="keep_last"`); it recovers
  when 0x351 returns, ramping up through the lag.
- Its family (`family`, else the gateway's inverter profile; see SimSystem) decides how it
  reads the frames: "sol-ark" ignores any frame shorter than eight bytes and reads the
  0x356 voltage in 0.1 V (Sol-Ark V1.3); "luxpower" reads 0x355 bytes 4-7 as the highest
  and lowest cell mV (`cell_mv`) and, with `shutdown_request` set, sends 0x300 with bit 0
  (shut the battery down) beside its keepalive (Luxpower V04.2); "growatt-lv" reads
  Growatt's own big-endian 0x311 (limits), 0x312 (protection bits stop a direction), 0x313
  (measurements) and 0x319 (enable / force-charge bits), eight bytes each, and sends the
  0x301 heartbeat instead of 0x305; "pylontech-hv" polls with the 29-bit 0x4200 and reads
  the answers, "sma-sunny-island" goes to fault on any 0x35A alarm and to F952 after 60 s
  without 0x355 (both in gateway/sim/families.py); every other family reads the frames as
  V1.2 does.
- Quirks: `ignores_zero_ccl` keeps charging at `trickle_a` with CCL 0 (a Victron Multi),
  `honours_request_flags=False` ignores 0x35C (Victron), `voltage_offset_v` mis-reads the
  battery voltage, `ccl_overshoot` charges above CCL, `follows_ccl=False` ignores CCL,
  `pv_ignores_ccl` lets its DC-coupled MPPTs charge the PV surplus whatever CCL says, and
  `pulls_down_to_cvl` discharges to bring the battery down to a lowered CVL. Named
  combinations, the inverters met in the field, are in gateway/sim/zoo.py.

Use (the simulator, once per tick, with simulated time `now` in seconds):

    inverter = SimInverter(SimInverterSettings())
    inverter.on_frame(frame_id, data, now)          # every frame from the battery
    for frame_id, data in inverter.due_frames(now): # its 0x305 keepalive, once a second
        send(frame_id, data)
    current_a = inverter.step(now, battery.bus_voltage, pv_w, load_w, battery.bus_ohm())
    battery.step(dt, current_a)

Set `silent = True` to stop its keepalive (fault injection). What it last received is in
`limits`, `soc`, `measurements`, `protection`, `alarms`, `flags` and `raw`; counters in
`frames`, `garbage` and `unknown`; its own state in `current_a`, `grid_w`, `battery_missing`,
`battery_lost_count` and `status`.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from gateway.codec.pylontech_lv import (
    CYCLE_MS,
    DECODERS,
    FRAME_IDS,
    LENGTHS,
    AlarmsWarnings,
    AlarmsWarningsChoice,
    BatteryLimits,
    BatteryMeasurements,
    BatterySoc,
    InverterKeepalive,
    ProtectionAlarms,
    RequestFlags,
    decode_alarms_warnings,
    decode_battery_limits,
    decode_battery_measurements,
    decode_battery_soc,
    decode_protection_alarms,
    decode_request_flags,
    encode_inverter_keepalive,
)
from gateway.contracts.frame import Frame
from gateway.sim.families import PylontechHv, SunnyIsland

__all__ = ["SimInverter", "SimInverterSettings"]

LIMITS_ID = FRAME_IDS["BatteryLimits"]
SOC_ID = FRAME_IDS["BatterySoc"]
MEASUREMENTS_ID = FRAME_IDS["BatteryMeasurements"]
PROTECTION_ID = FRAME_IDS["ProtectionAlarms"]
ALARMS_ID = FRAME_IDS["AlarmsWarnings"]
FLAGS_ID = FRAME_IDS["RequestFlags"]
KEEPALIVE_ID = FRAME_IDS["InverterKeepalive"]
KEEPALIVE = encode_inverter_keepalive(InverterKeepalive(0, 0, 0, 0))  # eight zero bytes
MAX_DLC = 8
# Smallest current step the 0x351 field carries (0.1 A): below it, CCL counts as zero.
CCL_RESOLUTION_A = 0.1

STOPPED = "battery missing: stopped"

# Flags that stop a direction: field -> (blocks charge, blocks discharge).
PROTECTION_BLOCKS = {
    "protection_cell_over_voltage": (True, False),
    "protection_cell_under_voltage": (False, True),
    "protection_over_temperature": (True, True),
    "protection_under_temperature": (True, True),
    "protection_discharge_over_current": (False, True),
    "protection_charge_over_current": (True, False),
    "protection_system_error": (True, True),
}
ALARM_BLOCKS = {
    "alarm_general": (True, True),
    "alarm_high_voltage": (True, False),
    "alarm_low_voltage": (False, True),
    "alarm_high_temperature": (True, True),
    "alarm_low_temperature": (True, True),
    "alarm_high_temperature_charge": (True, False),
    "alarm_low_temperature_charge": (True, False),
    "alarm_high_discharge_current": (False, True),
    "alarm_high_charge_current": (True, False),
    "alarm_bms_internal": (True, True),
}


# Families whose inverters read the frames differently from V1.2 (see the module docstring).
EIGHT_BYTES_ONLY = frozenset({"sol-ark"})  # a shorter frame is ignored
DECIVOLT_MEASUREMENTS = frozenset({"sol-ark"})  # 0x356 voltage in 0.1 V
CELL_MV_IN_SOC = frozenset({"luxpower"})  # 0x355 bytes 4-7: highest, lowest cell mV
SENDS_REQUESTS = frozenset({"luxpower"})  # 0x300 beside the keepalive
REQUEST_ID = 0x300
GROWATT = "growatt-lv"
GROWATT_HEARTBEAT = 0x301
GROWATT_LIMITS, GROWATT_FAULTS, GROWATT_MEASUREMENTS, GROWATT_FLAGS = 0x311, 0x312, 0x313, 0x319
GROWATT_IDS = frozenset({*range(0x311, 0x31A), 0x320, 0x321})
PYLONTECH_HV, HV_LIMITS = "pylontech-hv", 0x4220
SMA = "sma-sunny-island"
# 0x312 protection bits (byte, bit) -> (blocks charge, blocks discharge).
GROWATT_BLOCKS = {
    (0, 3): (False, True),
    (0, 4): (True, False),
    (0, 6): (True, False),
    (0, 7): (False, True),
    (1, 3): (True, True),
    (1, 4): (True, False),
    (1, 5): (False, True),
    (1, 6): (True, False),
    (1, 7): (False, True),
}


# The frames whose repeated payload moves more than the counts (SimInverter._repeated).
_REPEATS_THAT_MOVE = frozenset((LIMITS_ID, ALARMS_ID))


class SimInverterSettings(BaseModel):
    """Behaviour of the simulated hybrid inverter."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    family: str | None = Field(
        None,
        description="The inverter family it behaves as (an inverter profile name); None: "
        "the gateway's inverter profile.",
    )

    max_charge_a: float = Field(100.0, gt=0, description="Most the inverter can charge with, A.")
    max_discharge_a: float = Field(
        100.0, gt=0, description="Most the inverter can discharge with, A."
    )
    force_charge_a: float = Field(
        20.0, ge=0, description="Charge current from the grid while force charge is asked, A."
    )
    force_charge_bit: Literal["I", "II", "either"] = Field(
        "either",
        description="Which 0x35C force-charge bit it watches: I (bit 5), II (bit 4, the one "
        "Pylontech recommends) or either.",
    )
    efficiency: float = Field(
        0.96, gt=0, le=1, description="Conversion efficiency between AC and battery, 0..1."
    )
    response_tau_s: float = Field(
        1.5, gt=0, description="Time constant of the lag with which the current follows, s."
    )
    voltage_gain_a_per_v: float = Field(
        200.0,
        gt=0,
        description="Voltage loop gain: current allowed per volt of headroom below CVL "
        "(above DVL), A/V. Evaluated once a step, it is stable at any step when given the "
        "battery's resistance (step's battery_ohm); without, for steps up to about tau / "
        "(gain * battery ohms).",
    )
    voltage_offset_v: float = Field(
        0.0, description="Error of the inverter's battery voltage reading (quirk), V."
    )
    battery_timeout_s: float = Field(
        3.0, gt=0, description="Time without 0x351 after which the battery is missing, s."
    )
    missing_battery_action: Literal["stop", "keep_last"] = Field(
        "stop",
        description="With the battery missing: stop both directions, or keep using the "
        "last limits received (an inverter that should not be trusted).",
    )
    honours_request_flags: bool = Field(
        True, description="Obey the 0x35C enable and force-charge bits (Victron does not)."
    )
    honours_alarms: bool = Field(
        True, description="Stop a direction on 0x359 protection or 0x35A alarm flags."
    )
    ignores_zero_ccl: bool = Field(
        False, description="Keep charging at trickle_a when CCL is 0 (Victron Multi quirk)."
    )
    trickle_a: float = Field(
        0.5, ge=0, description="Charge current kept with CCL 0 when ignores_zero_ccl, A."
    )
    keepalive_period_s: float = Field(
        CYCLE_MS[KEEPALIVE_ID] / 1000.0, gt=0, description="Period of the 0x305 keepalive, s."
    )
    # How it follows the limits electrically (gateway/sim/zoo.py names the combinations).
    ccl_overshoot: float = Field(
        0.0, ge=0, le=1, description="Charges up to CCL times (1 + this): 0.1 overshoots 10 %."
    )
    follows_ccl: bool = Field(
        True, description="False: ignores CCL, charges up to its own maximum (CVL only)."
    )
    pv_ignores_ccl: bool = Field(
        False,
        description="Its DC-coupled MPPTs charge the PV surplus whatever CCL says (CVL only); "
        "charging from the grid still follows CCL.",
    )
    pulls_down_to_cvl: bool = Field(
        False,
        description="Above CVL it discharges (into the loads, then the grid) to bring the "
        "battery down to it, at the voltage loop's gain, within DCL.",
    )


class SimInverter:
    """A hybrid inverter on the battery's CAN bus (see the module docstring)."""

    def __init__(self, settings: SimInverterSettings | None = None) -> None:
        self.settings = settings if settings is not None else SimInverterSettings()
        self.silent = False
        self.limits: BatteryLimits | None = None
        self.soc: BatterySoc | None = None
        self.measurements: BatteryMeasurements | None = None
        self.protection: ProtectionAlarms | None = None
        self.alarms: AlarmsWarnings | None = None
        self.flags: RequestFlags | None = None
        self.shutdown_request = False  # Luxpower: ask the battery to shut down (0x300)
        self.cell_mv: tuple[int, int] | None = None  # Luxpower 0x355: highest, lowest
        self.growatt_blocks = (False, False)  # Growatt 0x312: charge, discharge stopped
        # (protection, alarms, what they stop) as _alarm_blocks last worked it out.
        self._blocks_known: (
            tuple[ProtectionAlarms | None, AlarmsWarnings | None, tuple[bool, bool]] | None
        ) = None
        family = self.settings.family
        self.hv = PylontechHv() if family == PYLONTECH_HV else None
        self.sunny_island = SunnyIsland() if family == SMA else None
        # A family that reads Pylontech LV's frames (V1.2 and its variants): a repeated
        # payload of one of those is decoded already (on_frame).
        self._reads_lv = family not in (GROWATT, PYLONTECH_HV)
        # The frame whose absence means the battery is missing (_watch_battery).
        self._limits_id = {GROWATT: GROWATT_LIMITS, PYLONTECH_HV: HV_LIMITS}.get(
            family or "", LIMITS_ID
        )
        self.raw: dict[int, bytes] = {}  # last accepted payload per known frame id
        self.last_seen: dict[int, float] = {}
        self.frames: dict[int, int] = {}  # accepted frames per id
        self.garbage = 0  # frames of a known id that could not be decoded
        self.unknown = 0  # frames of ids it does not listen to
        self.current_a = 0.0  # into the battery, + = charging
        self.grid_w = 0.0  # from the grid, + = import
        self.battery_missing = True
        self.battery_lost_count = 0  # times the battery went missing after being seen
        self.status = "waiting for the battery"
        self._last_step: float | None = None
        self._next_keepalive: float | None = None

    # -- CAN side --

    def on_frame(self, frame_id: object, data: object, now: float) -> None:
        """Take one frame from the bus. Unknown ids and garbage are counted, never raised."""
        if (
            type(data) is bytes
            and type(frame_id) is int
            and self._reads_lv
            and self.raw.get(frame_id) == data
        ):
            # The battery repeats most frames unchanged, and a Pylontech LV family's payload
            # kept in `raw` passed every check below: what it says is decoded already (the
            # decoders are pure functions of the payload and the family).
            self._repeated(frame_id, now)
            return
        if not isinstance(frame_id, int) or not isinstance(data, bytes | bytearray):
            self.garbage += 1
            return
        if self.settings.family == GROWATT:
            self._on_growatt_frame(frame_id, bytes(data), now)
            return
        if self.hv is not None:
            self._on_hv_frame(self.hv, frame_id, bytes(data), now)
            return
        if frame_id not in DECODERS or frame_id == KEEPALIVE_ID:
            self.unknown += 1
            return
        payload = bytes(data)
        family = self.settings.family
        shortest = MAX_DLC if family in EIGHT_BYTES_ONLY else LENGTHS[frame_id]
        if not shortest <= len(payload) <= MAX_DLC:
            self.garbage += 1
            return
        if frame_id == LIMITS_ID:
            self.limits = decode_battery_limits(payload)
            self.battery_missing = False
        elif frame_id == SOC_ID and family in CELL_MV_IN_SOC:
            soc, soh, high, low = struct.unpack("<HHHH", payload.ljust(MAX_DLC, b"\0"))
            self.soc = BatterySoc(soc, soh, float(soc))
            self.cell_mv = (high, low)
        elif frame_id == SOC_ID:
            self.soc = decode_battery_soc(payload)
        elif frame_id == MEASUREMENTS_ID and family in DECIVOLT_MEASUREMENTS:
            volts, amps, degc = struct.unpack_from("<hhh", payload)
            self.measurements = BatteryMeasurements(volts / 10, amps / 10, degc / 10)
        elif frame_id == MEASUREMENTS_ID:
            self.measurements = decode_battery_measurements(payload)
        elif frame_id == PROTECTION_ID:
            self.protection = decode_protection_alarms(payload)
        elif frame_id == ALARMS_ID:
            self.alarms = decode_alarms_warnings(payload)
            if self.sunny_island is not None:
                self.sunny_island.on_alarms(self.alarms)
        elif frame_id == FLAGS_ID:
            self.flags = decode_request_flags(payload)
        self.raw[frame_id] = payload
        self.last_seen[frame_id] = now
        self.frames[frame_id] = self.frames.get(frame_id, 0) + 1

    def on_frames(self, frames: Iterable[Frame], now: float) -> None:
        """on_frame for each of a bus's frames, in order. The battery repeats most frames
        unchanged every step: a repeated payload of a frame whose repeat moves nothing but
        the counts (not the limits, not the alarms: see _repeated) is counted here, without
        a call of its own."""
        decoded = self.raw if self._reads_lv else {}  # the repeats on_frame would take
        last_seen = self.last_seen
        counts = self.frames
        for frame in frames:
            frame_id = frame.id
            data = frame.data
            if (
                decoded.get(frame_id) == data
                and frame_id not in _REPEATS_THAT_MOVE
                and type(data) is bytes
            ):
                last_seen[frame_id] = now
                counts[frame_id] = counts.get(frame_id, 0) + 1
            else:
                self.on_frame(frame_id, data, now)

    def _repeated(self, frame_id: int, now: float) -> None:
        """A frame whose payload is the last one of its id (kept in `raw`)."""
        if frame_id == LIMITS_ID:
            self.battery_missing = False
        elif frame_id == ALARMS_ID and self.sunny_island is not None and self.alarms:
            self.sunny_island.on_alarms(self.alarms)  # its fault state may have moved
        self.last_seen[frame_id] = now
        self.frames[frame_id] = self.frames.get(frame_id, 0) + 1

    def _on_growatt_frame(self, frame_id: int, payload: bytes, now: float) -> None:
        """A frame after Growatt's LV protocol (big-endian, eight bytes)."""
        if frame_id not in GROWATT_IDS:
            self.unknown += 1
            return
        if len(payload) != MAX_DLC:
            self.garbage += 1
            return
        if frame_id == GROWATT_LIMITS:
            cvl, ccl, dcl, _ = struct.unpack(">HhhH", payload)
            self.limits = BatteryLimits(cvl / 10, ccl / 10, dcl / 10, 0.0)
            self.battery_missing = False
        elif frame_id == GROWATT_FAULTS:
            charge = discharge = False
            for (byte, bit), (stops_charge, stops_discharge) in GROWATT_BLOCKS.items():
                if payload[byte] >> bit & 1:
                    charge = charge or stops_charge
                    discharge = discharge or stops_discharge
            self.growatt_blocks = (charge, discharge)
        elif frame_id == GROWATT_MEASUREMENTS:
            volts, amps, degc, _, _ = struct.unpack(">HhhBB", payload)
            self.measurements = BatteryMeasurements(volts / 100, amps / 10, degc / 10)
        elif frame_id == GROWATT_FLAGS:
            flags = payload[0]
            self.flags = RequestFlags(
                full_charge_request=0,
                force_charge_ii=0,
                force_charge_i=flags >> 5 & 1,
                discharge_enable=flags >> 6 & 1,
                charge_enable=flags >> 7 & 1,
            )
        self.raw[frame_id] = payload
        self.last_seen[frame_id] = now
        self.frames[frame_id] = self.frames.get(frame_id, 0) + 1

    def _on_hv_frame(self, hv: PylontechHv, frame_id: int, payload: bytes, now: float) -> None:
        """An answer after Pylontech HV (29-bit, eight bytes): kept in the V1.2 shapes."""
        result = hv.read(frame_id, payload)
        if result != "ok":
            self.unknown += result == "unknown"
            self.garbage += result == "garbage"
            return
        if frame_id == HV_LIMITS and hv.limits is not None:
            cvl, ccl, dcl, dvl = hv.limits
            self.limits = BatteryLimits(cvl, ccl, dcl, dvl)
            self.battery_missing = False
        elif hv.voltage is not None and hv.current is not None and hv.temperature is not None:
            self.measurements = BatteryMeasurements(hv.voltage, hv.current, hv.temperature)
            if hv.soc is not None and hv.soh is not None:
                self.soc = BatterySoc(hv.soc, hv.soh, float(hv.soc))
        charge, discharge = hv.allowed()
        self.flags = RequestFlags(
            full_charge_request=0,
            force_charge_ii=0,
            force_charge_i=int(hv.force_charge),
            discharge_enable=int(discharge),
            charge_enable=int(charge),
        )
        self.raw[frame_id] = payload
        self.last_seen[frame_id] = now
        self.frames[frame_id] = self.frames.get(frame_id, 0) + 1

    @property
    def fault(self) -> str | None:
        """The family's fault state (SMA: a BMS alarm, F952), None when running."""
        return None if self.sunny_island is None else self.sunny_island.fault

    def restart(self) -> None:
        """The user restarts the inverter: a latched fault (SMA F952) is confirmed."""
        if self.sunny_island is not None:
            self.sunny_island.restart()

    def due_frames(self, now: float) -> list[tuple[int, bytes]]:
        """Frames to send now: the 0x305 keepalive once per period, none while silent."""
        if self.silent:
            return []
        period = self.settings.keepalive_period_s
        due = self._next_keepalive
        if due is not None and now < due:
            return []
        # Keep the cadence; after a gap (silence, a stalled caller) restart from now.
        self._next_keepalive = now + period if due is None or now - due >= period else due + period
        if self.settings.family == GROWATT:
            return [(GROWATT_HEARTBEAT, bytes(8))]
        if self.hv is not None:
            return self.hv.polls_due()
        if self.settings.family in SENDS_REQUESTS:
            request = bytes([int(self.shutdown_request)]) + bytes(7)
            return [(KEEPALIVE_ID, KEEPALIVE), (REQUEST_ID, request)]
        return [(KEEPALIVE_ID, KEEPALIVE)]

    # -- power side --

    def step(
        self,
        now: float,
        battery_voltage: float | None,
        pv_w: float,
        load_w: float,
        battery_ohm: float = 0.0,
    ) -> float:
        """Advance to `now` (s) and return the battery current (A, + = charging).

        battery_voltage is what the inverter's DC terminals see (None: no battery connected,
        nothing can flow), with the current of the last step flowing; pv_w and load_w are
        the PV power and household load (W); battery_ohm how far the terminals' voltage
        moves per ampere within a step (the battery's and its cables' resistance; 0: a
        stiff battery).
        """
        dt = 0.0 if self._last_step is None else max(now - self._last_step, 0.0)
        self._last_step = now
        self._watch_battery(now)
        s = self.settings
        if battery_voltage is None or not math.isfinite(battery_voltage) or battery_voltage <= 0:
            self.current_a = 0.0
            self.grid_w = load_w - pv_w
            self.status = "no battery on the DC bus"
            return 0.0
        target, self.status = self._target(
            battery_voltage + s.voltage_offset_v, pv_w, load_w, battery_ohm
        )
        if self.status == STOPPED:
            # A mode change, not a regulated limit: the inverter switches off at once.
            self.current_a = 0.0
        else:
            self.current_a += (target - self.current_a) * (1.0 - math.exp(-dt / s.response_tau_s))
        power_w = battery_voltage * self.current_a
        ac_w = power_w / s.efficiency if power_w > 0 else power_w * s.efficiency
        self.grid_w = load_w - pv_w + ac_w
        return self.current_a

    def _watch_battery(self, now: float) -> None:
        seen = self.last_seen.get(self._limits_id)
        if self.sunny_island is not None:
            self.sunny_island.watch(self.last_seen.get(SOC_ID), now)
        fresh = seen is not None and now - seen <= self.settings.battery_timeout_s
        if not fresh and not self.battery_missing:
            self.battery_lost_count += 1
        self.battery_missing = not fresh

    def _allowed(self) -> tuple[bool, bool]:
        """May it charge, may it discharge, by the battery's flags."""
        charge = discharge = True
        if self.fault is not None:  # SMA: fault state, both directions stop
            return False, False
        if self.settings.honours_request_flags and self.flags is not None:
            charge = self.flags.charge_enable == 1
            discharge = self.flags.discharge_enable == 1
        if self.settings.honours_alarms and self.settings.family == GROWATT:
            charge = charge and not self.growatt_blocks[0]
            discharge = discharge and not self.growatt_blocks[1]
        if self.settings.honours_alarms:
            stops_charge, stops_discharge = self._alarm_blocks()
            charge = charge and not stops_charge
            discharge = discharge and not stops_discharge
        return charge, discharge

    def _alarm_blocks(self) -> tuple[bool, bool]:
        """Whether the protection and alarm frames last decoded stop charging, discharging.
        Each step asks; worked out again only when either frame was decoded anew (the
        battery repeats them unchanged for minutes, see on_frame)."""
        protection, alarms = self.protection, self.alarms
        known = self._blocks_known
        if known is not None and known[0] is protection and known[1] is alarms:
            return known[2]
        charge = discharge = False
        for table, frame, active in (
            (PROTECTION_BLOCKS, protection, 1),
            (ALARM_BLOCKS, alarms, AlarmsWarningsChoice.ACTIVE),
        ):
            if frame is None:
                continue
            for name, (stops_charge, stops_discharge) in table.items():
                if getattr(frame, name) == active:
                    charge = charge or stops_charge
                    discharge = discharge or stops_discharge
        self._blocks_known = (protection, alarms, (charge, discharge))
        return charge, discharge

    def _force_charge(self) -> bool:
        flags = self.flags
        if flags is None or not self.settings.honours_request_flags:
            return False
        bit = self.settings.force_charge_bit
        return (bit in ("I", "either") and flags.force_charge_i == 1) or (
            bit in ("II", "either") and flags.force_charge_ii == 1
        )

    def _target(self, volts: float, pv_w: float, load_w: float, ohm: float) -> tuple[float, str]:
        """The current it aims for (A, + = charging) at the battery voltage it reads with
        `current_a` flowing through the battery's `ohm`, and why (the status).

        The voltage loop allows gain * (CVL - V(I)), V(I) = volts + ohm * (I - current_a)
        being the voltage at the current I it lets flow: it settles where the two agree,
        I = gain * (CVL - V(0)) / (1 + gain * ohm); likewise on discharge above DVL."""
        s = self.settings
        limits = self.limits
        if limits is None or (self.battery_missing and s.missing_battery_action == "stop"):
            return 0.0, STOPPED
        status = "battery missing: last limits" if self.battery_missing else "running"
        charge_ok, discharge_ok = self._allowed()
        surplus_w = pv_w - load_w
        if surplus_w > 0:
            wanted = surplus_w * s.efficiency / volts
        else:
            wanted = surplus_w / (s.efficiency * volts)
        pv_a = max(surplus_w, 0.0) * s.efficiency / volts
        if charge_ok and self._force_charge():
            wanted = max(wanted, s.force_charge_a)
            status = "force charge"
        at_rest = volts - ohm * self.current_a
        gain = s.voltage_gain_a_per_v / (1.0 + s.voltage_gain_a_per_v * ohm)
        headroom = gain * (limits.charge_voltage_limit - at_rest)
        if s.pulls_down_to_cvl and headroom < 0 and discharge_ok:
            # Holds the battery at CVL from above too: discharges at least what the voltage
            # loop asks for.
            dcl = max(limits.discharge_current_limit, 0.0)
            pull = max(-headroom, -wanted if wanted < 0 else 0.0)
            return -min(pull, dcl, s.max_discharge_a), "pulling down to CVL"
        if wanted > 0:
            if not charge_ok:
                return 0.0, "charge not allowed"
            ccl = max(limits.charge_current_limit, 0.0)
            if s.ignores_zero_ccl and ccl < CCL_RESOLUTION_A:
                ccl = s.trickle_a
            ccl *= 1.0 + s.ccl_overshoot
            if not s.follows_ccl:
                ccl = math.inf
            elif s.pv_ignores_ccl:
                ccl = max(ccl, pv_a)
            return max(0.0, min(wanted, ccl, s.max_charge_a, headroom)), status
        if wanted < 0:
            if not discharge_ok:
                return 0.0, "discharge not allowed"
            dcl = max(limits.discharge_current_limit, 0.0)
            dvl = limits.discharge_voltage_limit
            floor = gain * (at_rest - dvl) if dvl > 0 else math.inf
            return -max(0.0, min(-wanted, dcl, s.max_discharge_a, floor)), status
        return 0.0, status

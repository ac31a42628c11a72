"""`sma-sunny-island`: SMA Sunny Island with a lithium battery under an external BMS.

0x351 with DVL, 0x355 with the 0.01 % SoC the Sunny Island uses, 0x356, 0x35A, 0x35B
(empty events), 0x35E and 0x35F (battery type, BMS version, capacity, manufacturer id); no
0x359 or 0x35C. Document: SMA Sunny Island 6.0H-11 external BMS (FSS-ConnectingBat-TI-en-10).
Quirks:
- Every frame is sent eight bytes long (padding zero), never faster than every 200 ms,
  stops included (issue 15 item 3).
- The Sunny Island is a 48 V inverter: CVL at most 63 V; DVL within 41..48 V; CCL and DCL
  0..1200 A.
- A CVL below the measured pack voltage makes it discharge and ignore DCL: the CVL is never
  below the pack voltage (rounded up to 0.1 V); raised to it, it comes with CCL 0.
- A measurement never known is sent as "not available" (0x8000 signed, 0xFFFF unsigned),
  the convention of the SMA protocol, instead of a made-up neutral value.
- "Stop charging" also brings the CVL to the present pack voltage, rounded up (the Sunny
  Island regulates AC-coupled PV by frequency shift towards its charge voltage; CCL 0
  alone lets some current through while it settles). "Stop discharging" is DCL 0: raising the DVL to
  the pack voltage is not possible within its 41..48 V window.
"""

from __future__ import annotations

from gateway.codec import pylontech_lv as codec
from gateway.contracts.frame import Frame
from gateway.outputs.inverter import frames
from gateway.outputs.inverter.profile import InverterProfile
from gateway.outputs.inverter.shaping import Outgoing, Quirks

# "Not available" in each field: the physical values of the raw 0x8000 / 0xFFFF patterns,
# taken from the codec rather than recomputed from the scalings.
_NA_MEASUREMENTS = codec.decode_battery_measurements(b"\x00\x80" * 3)
_NA_SOH = float(codec.decode_battery_soc(b"\xff" * 6).soh)
_NA_CAPACITY = float(codec.decode_battery_info(b"\xff" * 8).capacity)

CVL_MAX = 63.0  # V
DVL_WINDOW = (41.0, 48.0)  # V
CURRENT_MAX = 1200.0  # A: CCL and DCL 0..1200 A
NOT_AVAILABLE_U16 = 0xFFFF  # SMA's "not available" in an unsigned 16-bit field


def battery_info(out: Outgoing, capacity_ah: float) -> Frame:
    """0x35F as SMA lays it out (issue 15 item 3): bytes 0-1 battery type, 2-3 BMS version,
    4-5 capacity (1 Ah), 6-7 manufacturer id. A third-party BMS has neither an SMA battery
    type nor an SMA manufacturer id: both are "not available" (0xFFFF). Encoded with the
    generated codec, whose 0x35F fields are named the Victron/Pylontech way (model,
    hardware version, capacity, software version): SMA's BMS version sits in the second."""
    data = codec.encode_battery_info(
        codec.BatteryInfo(
            battery_model=NOT_AVAILABLE_U16,  # SMA: battery type
            hardware_version=out.firmware_version,  # SMA: BMS version
            capacity=round(capacity_ah),
            software_version=NOT_AVAILABLE_U16,  # SMA: manufacturer id
        )
    )
    return Frame(codec.FRAME_IDS["BatteryInfo"], data)


class SmaSunnyIslandProfile(InverterProfile):
    """SMA Sunny Island (LiIon_Ext-BMS)."""

    name = "sma-sunny-island"
    min_interval = 0.2
    strict_min_interval = True  # stops included
    reads_inverter_readings = True  # 0x305 V/I/T/SoC, 0x306 SoH/state/error/CVL setpoint
    pads_to_8 = True
    quirks = Quirks(
        stop_charge_by_cvl=True,
        cvl_max=CVL_MAX,
        dvl_window=DVL_WINDOW,
        cvl_not_below_voltage=True,
        current_max=CURRENT_MAX,
    )

    def encode(self, out: Outgoing) -> list[Frame]:
        na = _NA_MEASUREMENTS
        return [
            frames.battery_limits(out),
            frames.battery_soc(out, _NA_SOH if out.soh is None else out.soh),
            frames.battery_measurements(
                na.voltage if out.voltage is None else out.voltage,
                out.current,
                na.temperature if out.temperature is None else out.temperature,
            ),
            frames.alarms_warnings(out),
            frames.sma_events(),
            frames.manufacturer_name(out.manufacturer),
            battery_info(out, _NA_CAPACITY if out.capacity_ah is None else out.capacity_ah),
        ]

"""Decoders written from each inverter family's own document, not from our DBC or codec.

Each returns {frame id: {field: physical value}} for one frame set and checks the frame
lengths that family reads. Field names are the documents' own, in snake case.
"""

from __future__ import annotations

import struct
from typing import Any

from gateway.contracts.frame import Frame

Decoded = dict[int, dict[str, Any]]


def _flags(byte: int, names: dict[int, str]) -> dict[str, int]:
    return {name: (byte >> bit) & 1 for bit, name in names.items()}


# Sol-Ark "LV battery CAN protocol" V1.3: 0x351 0x355 0x356 0x359 0x35C 0x35E 0x379, every
# frame eight bytes (the inverter reads no shorter one), little-endian.
SOL_ARK_PROTECTION_0 = {1: "cell_ov", 2: "cell_uv", 3: "ot", 4: "ut", 7: "discharge_oc"}
SOL_ARK_PROTECTION_1 = {0: "charge_oc", 3: "system_error"}
SOL_ARK_ALARM_0 = {1: "high_v", 2: "low_v", 3: "high_t", 4: "low_t", 7: "discharge_high_i"}
SOL_ARK_ALARM_1 = {0: "charge_high_i", 3: "comm_fail"}
SOL_ARK_REQUEST = {7: "charge_enable", 6: "discharge_enable", 5: "force_bit5", 4: "force_bit4"}


def sol_ark(frames: list[Frame]) -> Decoded:
    out: Decoded = {}
    for f in frames:
        d = f.data
        assert len(d) == 8, f"Sol-Ark reads only 8-byte frames: {f.id:#x} has {len(d)}"
        assert f.id not in out, f"{f.id:#x} twice"
        if f.id == 0x351:
            cvl, ccl, dcl, dvl = struct.unpack("<HhhH", d)
            out[f.id] = {"cvl": cvl / 10, "ccl": ccl / 10, "dcl": dcl / 10, "dvl": dvl / 10}
        elif f.id == 0x355:
            soc, soh = struct.unpack_from("<HH", d)
            out[f.id] = {"soc": soc, "soh": soh}
        elif f.id == 0x356:
            v, i, t = struct.unpack_from("<hhh", d)  # V1.3: voltage in 0.1 V
            out[f.id] = {"voltage": v / 10, "current": i / 10, "temperature": t / 10}
        elif f.id == 0x359:
            out[f.id] = {
                **{f"protection_{k}": v for k, v in _flags(d[0], SOL_ARK_PROTECTION_0).items()},
                **{f"protection_{k}": v for k, v in _flags(d[1], SOL_ARK_PROTECTION_1).items()},
                **{f"alarm_{k}": v for k, v in _flags(d[2], SOL_ARK_ALARM_0).items()},
                **{f"alarm_{k}": v for k, v in _flags(d[3], SOL_ARK_ALARM_1).items()},
                "modules": d[4],
                "marker": d[5:7],
            }
        elif f.id == 0x35C:
            out[f.id] = _flags(d[0], SOL_ARK_REQUEST)
        elif f.id == 0x35E:
            out[f.id] = {"name": d.decode("ascii").rstrip(" \0")}
        elif f.id == 0x379:
            out[f.id] = {"capacity_ah": struct.unpack_from("<H", d)[0]}
        else:
            raise AssertionError(f"{f.id:#x} is not in Sol-Ark V1.3")
    return out


# Luxpower "battery CAN protocol" V04.2: V1.2 with DVL in 0x351, cell mV in 0x355 bytes 4-7,
# capacity in 0x359 bytes 5-6, 0x379 installed capacity; little-endian.
LUXPOWER_LENGTHS = {0x351: 8, 0x355: 8, 0x356: 6, 0x359: 7, 0x35C: 2, 0x35E: 8, 0x379: 8}


def luxpower(frames: list[Frame]) -> Decoded:
    out: Decoded = {}
    for f in frames:
        d = f.data
        assert f.id in LUXPOWER_LENGTHS, f"{f.id:#x} is not in Luxpower V04.2"
        assert len(d) >= LUXPOWER_LENGTHS[f.id], f"{f.id:#x} too short: {len(d)}"
        assert len(d) <= 8
        assert f.id not in out, f"{f.id:#x} twice"
        if f.id == 0x351:
            cvl, ccl, dcl, dvl = struct.unpack_from("<HhhH", d)
            out[f.id] = {"cvl": cvl / 10, "ccl": ccl / 10, "dcl": dcl / 10, "dvl": dvl / 10}
        elif f.id == 0x355:
            soc, soh, max_mv, min_mv = struct.unpack_from("<HHHH", d)
            out[f.id] = {"soc": soc, "soh": soh, "max_cell_mv": max_mv, "min_cell_mv": min_mv}
        elif f.id == 0x356:
            v, i, t = struct.unpack_from("<hhh", d)
            out[f.id] = {"voltage": v / 100, "current": i / 10, "temperature": t / 10}
        elif f.id == 0x359:
            out[f.id] = {
                **{f"protection_{k}": v for k, v in _flags(d[0], SOL_ARK_PROTECTION_0).items()},
                **{f"protection_{k}": v for k, v in _flags(d[1], SOL_ARK_PROTECTION_1).items()},
                **{f"alarm_{k}": v for k, v in _flags(d[2], SOL_ARK_ALARM_0).items()},
                **{f"alarm_{k}": v for k, v in _flags(d[3], SOL_ARK_ALARM_1).items()},
                "modules": d[4],
                "capacity_ah": struct.unpack_from("<H", d, 5)[0],
            }
        elif f.id == 0x35C:
            out[f.id] = _flags(d[0], SOL_ARK_REQUEST)
        elif f.id == 0x35E:
            out[f.id] = {"name": d.decode("ascii").rstrip(" \0")}
        elif f.id == 0x379:
            out[f.id] = {"capacity_ah": struct.unpack_from("<H", d)[0]}
    return out


# Growatt "BMS CAN-Bus protocol Low Voltage" Rev 04: 0x311-0x321, every frame eight bytes,
# big-endian.
GROWATT_IDS = {0x311, 0x312, 0x313, 0x314, 0x315, 0x316, 0x317, 0x318, 0x319, 0x320, 0x321}
GROWATT_PROTECTION = {
    (0, 3): "cell_uv",
    (0, 4): "cell_ov",
    (0, 6): "charge_oc",
    (0, 7): "discharge_oc",
    (1, 2): "imbalance",
    (1, 3): "system_error",
    (1, 4): "charge_ut",
    (1, 5): "discharge_ut",
    (1, 6): "charge_ot",
    (1, 7): "discharge_ot",
}


def growatt_lv(frames: list[Frame]) -> Decoded:
    out: Decoded = {}
    for f in frames:
        d = f.data
        assert f.id in GROWATT_IDS, f"{f.id:#x} is not in Growatt LV"
        assert len(d) == 8, f"{f.id:#x}: {len(d)} bytes"
        assert f.id not in out, f"{f.id:#x} twice"
        if f.id == 0x311:
            cvl, ccl, dcl, status = struct.unpack(">HhhH", d)
            out[f.id] = {
                "cvl": cvl / 10,
                "ccl": ccl / 10,
                "dcl": dcl / 10,
                "status": status & 0b11,
                "error": (status >> 2) & 1,
                "sp_status": (status >> 10) & 0b11,
            }
        elif f.id == 0x312:
            protection = {n: (d[b] >> bit) & 1 for (b, bit), n in GROWATT_PROTECTION.items()}
            warning = {n: (d[b + 2] >> bit) & 1 for (b, bit), n in GROWATT_PROTECTION.items()}
            out[f.id] = {
                "protection": protection,
                "warning": warning,
                "comm_warning": d[3] & 1,
                "packs": d[4],
                "manufacturer": d[5:7],
                "cells": d[7],
            }
        elif f.id == 0x313:
            v, i, t, soc, soh = struct.unpack(">HhhBB", d)
            out[f.id] = {
                "voltage": v / 100,
                "current": i / 10,
                "temperature": t / 10,
                "soc": soc,
                "soh": soh & 0x7F,
                "unsafe": soh >> 7,
            }
        elif f.id == 0x314:
            rem, full, delta, cycles = struct.unpack(">HHHH", d)
            out[f.id] = {
                "remaining_ah": rem / 100,
                "full_ah": full / 100,
                "delta_mv": delta,
                "cycles": cycles,
            }
        elif f.id == 0x319:
            flags, high, low, n_high, n_low, pack = struct.unpack(">BHHBBB", d)
            out[f.id] = {
                "charge_enable": flags >> 7 & 1,
                "discharge_enable": flags >> 6 & 1,
                "force_charge": flags >> 5 & 1,
                "max_cell_mv": high,
                "min_cell_mv": low,
                "max_cell_number": n_high,
                "min_cell_number": n_low,
                "protect_pack": pack,
            }
        elif f.id == 0x320:
            out[f.id] = {"manufacturer": d[:2], "hw": d[2], "sw": d[3]}
        else:
            out[f.id] = {"raw": d}
    return out


# Pylontech HV (Force H1/H2) as the Sermatec / Deye HV documents lay it out (followed by
# diyBMS pylonforce_canbus.cpp, Battery-Emulator PYLON-CAN, ai-republic inverter-pylon-hv-can):
# 29-bit ids, eight bytes, little-endian; currents 0.1 A offset -3000 A, temperatures
# 0.1 degC offset -100 degC. The inverter polls with 0x4200 (byte 0: 0 ensemble, 2 equipment).
PYLON_HV_ENSEMBLE = {0x4210, 0x4220, 0x4230, 0x4240, 0x4250, 0x4260, 0x4270, 0x4280, 0x4290}
PYLON_HV_EQUIPMENT = {0x7310, 0x7320, 0x7330, 0x7340}
PYLON_HV_BITS = {
    0: "cell_low_v",
    1: "cell_high_v",
    2: "system_low_v",
    3: "system_high_v",
    4: "charge_low_t",
    5: "charge_high_t",
    6: "discharge_low_t",
    7: "discharge_high_t",
    8: "charge_oc",
    9: "discharge_oc",
    10: "module_low_v",
    11: "module_high_v",
}
PYLON_HV_ERRORS = {
    0: "voltage_sensor",
    1: "temperature_sensor",
    2: "internal_comm",
    3: "input_over_voltage",
    4: "input_reversal",
    5: "relay",
    6: "damage",
    7: "other",
}
PYLON_HV_STATUS = {0: "sleep", 1: "charge", 2: "discharge", 3: "idle"}


def _amps(raw: int) -> float:
    return round(raw / 10 - 3000, 1)


def _degc(raw: int) -> float:
    return round(raw / 10 - 100, 1)


def pylontech_hv(frames: list[Frame]) -> Decoded:
    out: Decoded = {}
    for f in frames:
        d = f.data
        assert f.extended, f"{f.id:#x} must be a 29-bit frame"
        assert f.id in PYLON_HV_ENSEMBLE | PYLON_HV_EQUIPMENT, f"{f.id:#x} is not Pylontech HV"
        assert len(d) == 8, f"{f.id:#x}: {len(d)} bytes"
        assert f.id not in out, f"{f.id:#x} twice"
        if f.id == 0x4210:
            v, i, t, soc, soh = struct.unpack("<HHHBB", d)
            out[f.id] = {
                "voltage": v / 10,
                "current": _amps(i),
                "temperature": _degc(t),
                "soc": soc,
                "soh": soh,
            }
        elif f.id == 0x4220:
            cvl, dvl, ccl, dcl = struct.unpack("<HHHH", d)
            out[f.id] = {"cvl": cvl / 10, "dvl": dvl / 10, "ccl": _amps(ccl), "dcl": _amps(dcl)}
        elif f.id == 0x4230:
            hi, lo, n_hi, n_lo = struct.unpack("<HHHH", d)
            out[f.id] = {"max_cell_mv": hi, "min_cell_mv": lo, "max_no": n_hi, "min_no": n_lo}
        elif f.id in (0x4240, 0x4270):
            hi, lo, n_hi, n_lo = struct.unpack("<HHHH", d)
            out[f.id] = {"max_t": _degc(hi), "min_t": _degc(lo), "max_no": n_hi, "min_no": n_lo}
        elif f.id == 0x4250:
            status, cycles, error, alarm, protection = struct.unpack("<BHBHH", d)
            out[f.id] = {
                "status": PYLON_HV_STATUS.get(status & 0b111, "reserved"),
                "force_charge": status >> 3 & 1,
                "balance_charge": status >> 4 & 1,
                "cycles": cycles,
                "errors": {n for b, n in PYLON_HV_ERRORS.items() if error >> b & 1},
                "alarms": {n for b, n in PYLON_HV_BITS.items() if alarm >> b & 1},
                "protections": {n for b, n in PYLON_HV_BITS.items() if protection >> b & 1},
            }
        elif f.id == 0x4260:
            hi, lo, n_hi, n_lo = struct.unpack("<HHHH", d)
            out[f.id] = {"max_module_mv": hi, "min_module_mv": lo, "max_no": n_hi, "min_no": n_lo}
        elif f.id == 0x4280:
            out[f.id] = {
                "charge_forbidden": d[0] == 0xAA,
                "discharge_forbidden": d[1] == 0xAA,
            }
        elif f.id == 0x7320:
            cells, modules, per_module, level, ah = struct.unpack("<HBBHH", d)
            out[f.id] = {
                "cells": cells,
                "modules": modules,
                "cells_per_module": per_module,
                "voltage_level": level,
                "capacity_ah": ah,
            }
        elif f.id in (0x7330, 0x7340):
            out[f.id] = {"name": d.decode("ascii")}
        else:
            out[f.id] = {"raw": d}
    return out


# Sofar LV: V1.2 (Pylontech LV CAN V1.2) with 0x355 bytes 6-7 remaining capacity and 0x356
# bytes 6-7 cycle count (the bytes esphome-yambms marks as Sofar's); little-endian.
SOFAR_LENGTHS = {0x351: 8, 0x355: 8, 0x356: 8, 0x359: 7, 0x35C: 2, 0x35E: 8}


def sofar(frames: list[Frame]) -> Decoded:
    out: Decoded = {}
    for f in frames:
        d = f.data
        assert f.id in SOFAR_LENGTHS, f"{f.id:#x} is not in the Sofar set"
        assert len(d) >= SOFAR_LENGTHS[f.id], f"{f.id:#x} too short: {len(d)}"
        assert f.id not in out, f"{f.id:#x} twice"
        if f.id == 0x351:
            cvl, ccl, dcl, dvl = struct.unpack_from("<HhhH", d)
            out[f.id] = {"cvl": cvl / 10, "ccl": ccl / 10, "dcl": dcl / 10, "dvl": dvl / 10}
        elif f.id == 0x355:
            soc, soh, soc_hr, remaining = struct.unpack_from("<HHHH", d)
            out[f.id] = {"soc": soc, "soh": soh, "soc_hr": soc_hr / 100, "remaining_ah": remaining}
        elif f.id == 0x356:
            v, i, t, cycles = struct.unpack_from("<hhhH", d)
            out[f.id] = {
                "voltage": v / 100,
                "current": i / 10,
                "temperature": t / 10,
                "cycles": cycles,
            }
        elif f.id == 0x359:
            out[f.id] = {
                "protection": d[0] | d[1] << 8,
                "alarm": d[2] | d[3] << 8,
                "modules": d[4],
                "marker": d[5:7],
            }
        elif f.id == 0x35C:
            out[f.id] = _flags(d[0], SOL_ARK_REQUEST)
        else:
            out[f.id] = {"name": d.decode("ascii").rstrip(" \0")}
    return out

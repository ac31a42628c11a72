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

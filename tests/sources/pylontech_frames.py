"""A Pylontech LV CAN battery's frames, encoded with struct from the facts of "Pylon LV CAN
protocol" V1.2 (and the SMA/Victron extensions 0x35A, 0x373), independently of our DBC and
its generated codec: what the gateway's decoder must read.

0x351: charge voltage (u16, 0.1 V), charge and discharge current limits (s16, 0.1 A);
0x355: SoC, SoH (u16, 1 %); 0x356: voltage (s16, 0.01 V), current (s16, 0.1 A), temperature
(s16, 0.1 degC); 0x359: byte 0 protection (bit 1 cell OV, 2 cell UV, 3 OT, 4 UT, 7 discharge
OC), byte 1 protection (bit 0 charge OC, 3 system error), byte 2 alarm (1 high V, 2 low V,
3 high T, 4 low T, 7 discharge high I), byte 3 alarm (0 charge high I, 3 internal comm.),
byte 4 module count, bytes 5-6 "PN"; 0x35C: bit 7 charge enable, 6 discharge enable, 5 force
charge I, 4 force charge II, 3 full charge request; 0x35E: ASCII name; 0x373: lowest and
highest cell voltage (u16 mV), lowest and highest cell temperature (u16 K).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

PROTECTION_0 = {"cell_ov": 1, "cell_uv": 2, "ot": 3, "ut": 4, "discharge_oc": 7}
PROTECTION_1 = {"charge_oc": 0, "system_error": 3}
ALARM_0 = {"high_v": 1, "low_v": 2, "high_t": 3, "low_t": 4, "discharge_high_i": 7}
ALARM_1 = {"charge_high_i": 0, "comm": 3}


@dataclass
class BatteryState:
    cvl: float = 53.2
    ccl: float = 50.0
    dcl: float = 100.0
    soc: int = 60
    soh: int = 98
    voltage: float = 51.23
    current: float = -12.5
    temperature: float = 24.5
    protection: set[str] = field(default_factory=set)
    alarms: set[str] = field(default_factory=set)
    modules: int = 2
    charge_enable: bool = True
    discharge_enable: bool = True
    name: str = "PYLON"
    cells_mv: tuple[int, int] | None = None  # 0x373 lowest, highest
    cells_k: tuple[int, int] = (297, 299)


def _bits(names: set[str], table: dict[str, int]) -> int:
    return sum(1 << bit for name, bit in table.items() if name in names)


def frames(b: BatteryState, offset: int = 0) -> list[tuple[int, bytes]]:
    """One cycle of the battery's frames: (identifier, data)."""
    out = [
        (0x351, struct.pack("<Hhh", round(b.cvl * 10), round(b.ccl * 10), round(b.dcl * 10))),
        (0x355, struct.pack("<HH", b.soc, b.soh)),
        (
            0x356,
            struct.pack(
                "<hhh", round(b.voltage * 100), round(b.current * 10), round(b.temperature * 10)
            ),
        ),
        (
            0x359,
            bytes(
                [
                    _bits(b.protection, PROTECTION_0),
                    _bits(b.protection, PROTECTION_1),
                    _bits(b.alarms, ALARM_0),
                    _bits(b.alarms, ALARM_1),
                    b.modules,
                ]
            )
            + b"PN",
        ),
        (0x35C, bytes([b.charge_enable << 7 | b.discharge_enable << 6, 0])),
        (0x35E, b.name.encode("ascii").ljust(8, b" ")),
    ]
    if b.cells_mv is not None:
        out.append((0x373, struct.pack("<HHHH", *b.cells_mv, *b.cells_k)))
    return [(frame_id + offset, data) for frame_id, data in out]

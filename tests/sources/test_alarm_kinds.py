"""Every alarm name a BMS codec can report (each codec's table, as its document names the
flags) reads as the protection kind it is (gateway/sources/packs/source.py, alarm_kinds): the
direction it blocks, and INTERNAL only for what is the BMS's own business."""

from __future__ import annotations

import pytest

from gateway.contracts.snapshot import BLOCKS_CHARGE, BLOCKS_DISCHARGE
from gateway.contracts.snapshot import ProtectionKind as K
from gateway.sources.packs import daly, jbd, jk, jk_modbus, pylontech_can
from gateway.sources.packs.source import alarm_kinds

COV, CUV, POV, PUV = (
    K.CELL_OVER_VOLTAGE,
    K.CELL_UNDER_VOLTAGE,
    K.PACK_OVER_VOLTAGE,
    K.PACK_UNDER_VOLTAGE,
)
COT, DOT, CUT, DUT = (
    K.CHARGE_OVER_TEMP,
    K.DISCHARGE_OVER_TEMP,
    K.CHARGE_UNDER_TEMP,
    K.DISCHARGE_UNDER_TEMP,
)
COC, DOC = K.CHARGE_OVER_CURRENT, K.DISCHARGE_OVER_CURRENT
SENSOR, PLAUS, COMM, RELAY, INTERNAL = (
    K.SENSOR_FAULT,
    K.PLAUSIBILITY,
    K.COMM_LOSS,
    K.RELAY_FAULT,
    K.INTERNAL,
)

CODECS: dict[str, tuple[str | None, ...]] = {
    "jbd": jbd.PROTECTION,
    "jk": jk.WARNINGS,
    "jk-modbus": jk_modbus.ALARMS,
    "daly": daly.FAILURE_BITS,
    "pylontech-can": (
        *pylontech_can.PROTECTION_NAMES.values(),
        *pylontech_can.ALARM_PAIR_NAMES.values(),
    ),
}

EXPECTED: dict[str, set[K]] = {
    # jbd
    "cell block over-voltage": {COV},
    "cell block under-voltage": {CUV},
    "battery over-voltage": {POV},
    "battery under-voltage": {PUV},
    "charging over-temperature": {COT},
    "charging low temperature": {CUT},
    "discharging over-temperature": {DOT},
    "discharging low temperature": {DUT},
    "charging over-current": {COC},
    "discharging over-current": {DOC},
    "short circuit": {DOC},
    "front-end IC error": {SENSOR},
    # jk
    "low capacity": {PUV},
    "MOS tube over-temperature": {COT, DOT},
    "charging over-voltage": {POV},
    "discharge under-voltage": {PUV},
    "battery over-temperature": {COT, DOT},
    "discharge over-current": {DOC},
    "cell voltage difference": {PLAUS},
    "battery box over-temperature": {COT, DOT},
    "battery low temperature": {CUT, DUT},
    "cell over-voltage": {COV},
    "cell under-voltage": {CUV},
    "309_A protection": {INTERNAL},
    "309_B protection": {INTERNAL},
    # jk-modbus
    "balance wire resistance too high": {SENSOR},
    "MOS over-temperature protection": {COT, DOT},
    "cell count does not match the setting": {PLAUS},
    "current sensor error": {SENSOR},
    "cell over-voltage protection": {COV},
    "battery over-voltage protection": {POV},
    "charge over-current protection": {COC},
    "charge short-circuit protection": {COC},
    "charge over-temperature protection": {COT},
    "charge low-temperature protection": {CUT},
    "internal communication error": {COMM},
    "cell under-voltage protection": {CUV},
    "battery under-voltage protection": {PUV},
    "discharge over-current protection": {DOC},
    "discharge short-circuit protection": {DOC},
    "discharge over-temperature protection": {DOT},
    "charge MOS abnormal": {RELAY},
    "discharge MOS abnormal": {RELAY},
    "GPS disconnected": {COMM},
    "discharge on failed": {RELAY},
    "battery over-temperature alarm": {COT, DOT},
    "temperature sensor anomaly": {SENSOR},
    "parallel module anomaly": {INTERNAL},
    # daly
    "cell volt high level 1": {COV},
    "cell volt high level 2": {COV},
    "cell volt low level 1": {CUV},
    "cell volt low level 2": {CUV},
    "sum volt high level 1": {POV},
    "sum volt high level 2": {POV},
    "sum volt low level 1": {PUV},
    "sum volt low level 2": {PUV},
    "chg temp high level 1": {COT},
    "chg temp high level 2": {COT},
    "chg temp low level 1": {CUT},
    "chg temp low level 2": {CUT},
    "dischg temp high level 1": {DOT},
    "dischg temp high level 2": {DOT},
    "dischg temp low level 1": {DUT},
    "dischg temp low level 2": {DUT},
    "chg overcurrent level 1": {COC},
    "chg overcurrent level 2": {COC},
    "dischg overcurrent level 1": {DOC},
    "dischg overcurrent level 2": {DOC},
    "SOC high level 1": {POV},
    "SOC high level 2": {POV},
    "SOC low level 1": {PUV},
    "SOC low level 2": {PUV},
    "diff volt level 1": {PLAUS},
    "diff volt level 2": {PLAUS},
    "diff temp level 1": {PLAUS},
    "diff temp level 2": {PLAUS},
    "chg MOS temp high alarm": {COT},
    "dischg MOS temp high alarm": {DOT},
    "chg MOS temp sensor err": {SENSOR},
    "dischg MOS temp sensor err": {SENSOR},
    "chg MOS adhesion err": {RELAY},
    "dischg MOS adhesion err": {RELAY},
    "chg MOS open circuit err": {RELAY},
    "dischg MOS open circuit err": {RELAY},
    "AFE collect chip err": {SENSOR},
    "voltage collect dropped": {SENSOR},
    "cell temp sensor err": {SENSOR},
    "EEPROM err": {INTERNAL},
    "RTC err": {INTERNAL},
    "precharge failure": {RELAY},
    "communication failure": {COMM},
    "internal communication failure": {COMM},
    "current module fault": {SENSOR},
    "sum voltage detect fault": {SENSOR},
    "short circuit protect fault": {DOC},
    "low volt forbidden chg fault": {PUV},
    # pylontech-can
    "protection: cell over-voltage": {COV},
    "protection: cell under-voltage": {CUV},
    "protection: over temperature": {COT, DOT},
    "protection: under temperature": {CUT, DUT},
    "protection: discharge over-current": {DOC},
    "protection: charge over-current": {COC},
    "protection: system error": {INTERNAL},
    "alarm: high voltage": {POV},
    "alarm: low voltage": {PUV},
    "alarm: high temperature": {COT, DOT},
    "alarm: low temperature": {CUT, DUT},
    "alarm: discharge high current": {DOC},
    "alarm: charge high current": {COC},
    "alarm: internal communication failure": {COMM},
    "alarm: general": {INTERNAL},
    "alarm: charge high temperature": {COT},
    "alarm: charge low temperature": {CUT},
    "alarm: contactor": {RELAY},
    "alarm: short circuit": {DOC},
    "alarm: bms internal": {INTERNAL},
    "alarm: cell imbalance": {PLAUS},
}
# What the gateway cannot act on beyond "the BMS says something is wrong inside it".
REALLY_INTERNAL = {
    "309_A protection",  # JK: undocumented
    "309_B protection",
    "parallel module anomaly",  # JK-PB: its own parallel-pack coordination
    "EEPROM err",
    "RTC err",
    "protection: system error",
    "alarm: general",
    "alarm: bms internal",
}


def every_name() -> list[tuple[str, str]]:
    return [(codec, name) for codec, names in CODECS.items() for name in names if name]


def test_the_table_covers_every_name_each_codec_can_report() -> None:
    assert {name for _, name in every_name()} == set(EXPECTED)


@pytest.mark.parametrize(("codec", "name"), every_name())
def test_each_alarm_name_is_its_protection_kind(codec: str, name: str) -> None:
    kinds = alarm_kinds([name])
    assert kinds == EXPECTED[name], f"{codec}: {name!r}"
    assert (INTERNAL in kinds) == (name in REALLY_INTERNAL), f"{codec}: {name!r}"


@pytest.mark.parametrize(("codec", "name"), every_name())
def test_a_named_direction_blocks_that_direction_and_never_the_other_only(
    codec: str, name: str
) -> None:
    """An alarm naming charge (discharge) over/under temperature or current blocks charge
    (discharge): read "discharging" as discharge and never as charge."""
    kinds = alarm_kinds([name])
    words = name.lower().replace("-", " ").split()
    if not any(w in words for w in ("temperature", "temp", "current", "overcurrent")):
        return
    if any(w.startswith(("dischg", "discharg")) for w in words):
        assert kinds & BLOCKS_DISCHARGE or kinds <= {SENSOR, RELAY}, f"{codec}: {name!r}"
        assert not kinds & BLOCKS_CHARGE, f"{codec}: {name!r}"
    elif any(w.startswith(("chg", "charg")) for w in words):
        assert kinds & BLOCKS_CHARGE or kinds <= {SENSOR, RELAY}, f"{codec}: {name!r}"
        assert not kinds & BLOCKS_DISCHARGE, f"{codec}: {name!r}"

"""The two DBC files: well-formed, complete, collision-free, documented."""

from __future__ import annotations

import subprocess
import sys

import cantools
import pytest

from gateway.contracts.snapshot import ProtectionKind
from tests.common import DBC_DIR, ROOT
from tools import gen_protocol_doc
from tools.gen_codec import node_addressed, protected

NODE_ID_MASK = 0x7F0


@pytest.mark.parametrize("name", ["moat_bms.dbc", "pylontech_lv.dbc"])
def test_loads_in_strict_mode(name: str) -> None:
    db = cantools.database.load_file(str(DBC_DIR / name), strict=True)
    assert db.messages


def _occupied_bits(signals) -> list[tuple[str, set[int]]]:
    return [(s.name, set(range(s.start, s.start + s.length))) for s in signals]


@pytest.mark.parametrize("name", ["moat_bms.dbc", "pylontech_lv.dbc"])
def test_no_overlapping_signals_in_any_multiplexer_branch(name: str) -> None:
    db = cantools.database.load_file(str(DBC_DIR / name), strict=True)
    for m in db.messages:
        mux_ids: set[int | None] = {None}
        for s in m.signals:
            mux_ids.update(s.multiplexer_ids or ())
        for mux in mux_ids:
            active = [
                s
                for s in m.signals
                if not s.multiplexer_ids or (mux is not None and mux in s.multiplexer_ids)
            ]
            seen: dict[int, str] = {}
            for sname, bits in _occupied_bits(active):
                for b in bits:
                    assert b < 8 * m.length, f"{m.name}.{sname} bit {b} beyond DLC"
                    assert b not in seen, f"{m.name}: {sname} overlaps {seen[b]} at bit {b}"
                    seen[b] = sname


def test_identifiers_never_collide_across_both_dbcs_for_all_16_nodes(moat_db, pylon_db) -> None:
    ids: dict[int, str] = {}
    for m in moat_db.messages:
        nodes = range(16) if node_addressed(moat_db, m) else [0]
        for n in nodes:
            fid = m.frame_id | n
            assert fid not in ids, f"{m.name} node {n} collides with {ids[fid]}"
            ids[fid] = m.name
    for m in pylon_db.messages:
        assert m.frame_id not in ids, f"{m.name} collides with {ids[m.frame_id]}"
        ids[m.frame_id] = m.name
    assert all(fid < 0x800 for fid in ids), "standard 11-bit identifiers only"


def test_node_addressed_messages_leave_the_node_bits_free(moat_db) -> None:
    for m in moat_db.messages:
        assert m.frame_id & ~NODE_ID_MASK == 0, m.name


def test_more_urgent_messages_have_lower_identifiers(moat_db) -> None:
    order = [m.name for m in sorted(moat_db.messages, key=lambda m: m.frame_id)]
    # Faults first, then the gateway's relay command, then measurements, bulk data last.
    assert order.index("NodeState") < order.index("PackStatus") < order.index("CellVoltages")
    assert order.index("RelayCommand") < order.index("BalanceCommand")
    assert order[-1] == "NodeInfo"


@pytest.mark.parametrize("name", ["moat_bms.dbc", "pylontech_lv.dbc"])
def test_every_message_documented_with_a_cycle_time(name: str) -> None:
    db = cantools.database.load_file(str(DBC_DIR / name), strict=True)
    for m in db.messages:
        assert m.comment, f"{m.name} has no comment"
        assert m.cycle_time and m.cycle_time > 0, f"{m.name} has no GenMsgCycleTime"
        for s in m.signals:
            assert s.comment, f"{m.name}.{s.name} has no comment"
            assert s.minimum is not None and s.maximum is not None, f"{m.name}.{s.name} range"
            if s.scale != 1 or s.offset != 0:
                assert s.unit, f"{m.name}.{s.name} is scaled but has no unit"


ENUM_SIGNALS = {
    "NodeState": ["State", "RelayState", "GatewayLink", "RelayRequest"],
    "RelayCommand": ["Request"],
    "GatewayHeartbeat": ["GatewayState"],
    "NodeInfo": ["Chemistry"],
}


def test_enum_signals_have_value_tables(moat_db) -> None:
    for mname, signals in ENUM_SIGNALS.items():
        m = moat_db.get_message_by_name(mname)
        for sname in signals:
            assert m.get_signal_by_name(sname).choices, f"{mname}.{sname}"
    flags = [s for s in moat_db.get_message_by_name("NodeState").signals if s.length == 1]
    assert len(flags) == 2 + 48
    assert all(s.choices for s in flags)


def test_node_state_has_three_levels_for_every_protection_kind(moat_db) -> None:
    names = {s.name for s in moat_db.get_message_by_name("NodeState").signals}
    kinds = [
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
        "CommLoss",
    ]
    for kind in kinds:
        for level in ("Fault", "Warn", "Info"):
            assert f"{level}{kind}" in names


def test_cell_frames_cover_64_cells_and_64_sensors(moat_db) -> None:
    cells = moat_db.get_message_by_name("CellVoltages")
    names = {s.name for s in cells.signals}
    assert {f"Cell{i:02d}Voltage" for i in range(1, 65)} <= names
    assert cells.get_signal_by_name("Cell01Voltage").scale == 0.001  # 1 mV
    temps = moat_db.get_message_by_name("CellTemperatures")
    assert {f"Temperature{i:02d}" for i in range(1, 65)} <= {s.name for s in temps.signals}


def test_protected_messages_carry_crc_and_counter_where_e2e_expects_them(moat_db) -> None:
    prot = [m for m in moat_db.messages if protected(moat_db, m)]
    assert {m.name for m in prot} == {"RelayCommand", "GatewayHeartbeat", "BalanceCommand"}
    for m in prot:
        crc = m.get_signal_by_name("Crc")
        counter = m.get_signal_by_name("Counter")
        assert (crc.start, crc.length) == (0, 8), m.name
        assert (counter.start, counter.length) == (8, 4), m.name
        assert "Gateway" in m.senders


PYLON_IDS = {
    0x305,
    0x306,  # SMA Sunny Island status (issue 15 item 3)
    0x351,
    0x355,
    0x356,
    0x359,
    0x35A,
    0x35B,
    0x35C,
    0x35E,
    0x35F,
    0x370,
    0x371,
    0x372,
    0x373,
    0x374,  # 0x374-0x377: Victron cell names (issue 15 item 4)
    0x375,
    0x376,
    0x377,
    0x378,  # Victron energy charged / discharged (issue 15 item 4)
    0x379,
}


def test_pylontech_dbc_has_the_inverter_frame_set(pylon_db) -> None:
    assert {m.frame_id for m in pylon_db.messages} == PYLON_IDS
    m351 = pylon_db.get_message_by_frame_id(0x351)
    cvl = m351.get_signal_by_name("ChargeVoltageLimit")
    assert (cvl.start, cvl.length, cvl.scale, cvl.is_signed) == (0, 16, 0.1, False)
    m356 = pylon_db.get_message_by_frame_id(0x356)
    assert m356.get_signal_by_name("Voltage").scale == 0.01
    assert m356.get_signal_by_name("Current").is_signed


def _typical(signal) -> float:
    lo, hi = signal.minimum, signal.maximum
    raw = round(((lo + hi) / 2 - signal.offset) / signal.scale)
    return raw * signal.scale + signal.offset


@pytest.mark.parametrize("name", ["moat_bms.dbc", "pylontech_lv.dbc"])
@pytest.mark.parametrize("where", ["minimum", "maximum", "typical"])
def test_round_trip_every_message(name: str, where: str) -> None:
    db = cantools.database.load_file(str(DBC_DIR / name), strict=True)
    for m in db.messages:
        mux_values: list[int | None] = [None]
        for s in m.signals:
            if s.is_multiplexer:
                mux_values = sorted({i for x in m.signals for i in (x.multiplexer_ids or ())})
        for mux in mux_values:
            values = {}
            for s in m.signals:
                if s.multiplexer_ids and mux not in s.multiplexer_ids:
                    continue
                if s.is_multiplexer:
                    values[s.name] = mux
                elif where == "typical":
                    values[s.name] = _typical(s)
                else:
                    values[s.name] = getattr(s, where)
            data = m.encode(values, strict=True)
            assert len(data) == m.length
            decoded = m.decode(data, decode_choices=False)
            for k, v in values.items():
                assert decoded[k] == pytest.approx(v, abs=1e-9), f"{m.name}.{k} at {where}"


def test_protocol_doc_is_current() -> None:
    assert (ROOT / "docs" / "protocol.md").read_text() == gen_protocol_doc.render(), (
        "docs/protocol.md is stale: run `make docs`"
    )


def test_candump_line_of_node_3_cell_voltages_decodes_with_the_documented_mask() -> None:
    # Node 3, cell group 1 (cells 5..8): 3.301 V, 3.302 V, not available, 3.200 V.
    line = "(1700000000.000000) vcan0 183#01E58C39F3FF0332\n"
    out = subprocess.run(
        [sys.executable, "-m", "cantools", "decode", "-m", "0x7F0", str(DBC_DIR / "moat_bms.dbc")],
        input=line,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "CellVoltages(" in out
    assert "Cell05Voltage: 3.301 V" in out
    assert "Cell06Voltage: 3.302 V" in out
    assert "Cell07Voltage: NotAvailable" in out
    assert "Cell08Voltage: 3.2 V" in out


def test_readme_documents_the_mask() -> None:
    assert "cantools decode -m 0x7F0 dbc/moat_bms.dbc" in (ROOT / "README.md").read_text()


def test_protection_kinds_follow_node_state_bit_order(moat_db) -> None:
    m = moat_db.get_message_by_name("NodeState")
    for level, base in (("Fault", 16), ("Warn", 32), ("Info", 48)):
        for bit, kind in enumerate(ProtectionKind):
            assert m.get_signal_by_name(f"{level}{kind.value}").start == base + bit

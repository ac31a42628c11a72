"""The generated codecs: current with the DBC files and identical to cantools."""

from __future__ import annotations

import math

import cantools
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bms import codec as fw
from gateway.codec import moat_bms as gw_moat
from gateway.codec import pylontech_lv as gw_pylon
from gateway.codec import simulation as gw_sim
from tests.common import DBC_DIR
from tools import gen_codec
from tools.gen_codec import snake, upper

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def test_generated_files_are_current() -> None:
    stale = gen_codec.stale(gen_codec.outputs().items())
    assert not stale, f"stale generated files (run `make codec`): {stale}"


def mux_values(message) -> list[int | None]:
    ids = sorted({i for s in message.signals for i in (s.multiplexer_ids or ())})
    return ids or [None]


def active(message, mux):
    return [s for s in message.signals if not s.multiplexer_ids or mux in s.multiplexer_ids]


def raw_range(s) -> tuple[int, int]:
    if s.is_signed:
        return -(1 << (s.length - 1)), (1 << (s.length - 1)) - 1
    return 0, (1 << s.length) - 1


@st.composite
def raw_frame(draw, message):
    """A mux value and random raw values for every signal active with it."""
    mux = draw(st.sampled_from(mux_values(message)))
    values = {}
    for s in active(message, mux):
        lo, hi = raw_range(s)
        values[s.name] = mux if s.is_multiplexer else draw(st.integers(lo, hi))
    return mux, values


def node_sent(db):
    return [m for m in db.messages if "Node" in m.senders]


def gateway_sent(db):
    return [m for m in db.messages if "Gateway" in m.senders]


# ---------------------------------------------------------------- firmware (raw) codec


def test_firmware_codec_has_an_encoder_per_node_frame_and_a_decoder_per_command(moat_db) -> None:
    for m in node_sent(moat_db):
        assert hasattr(fw, f"encode_{snake(m.name)}")
        assert getattr(fw, f"{upper(m.name)}_ID") == m.frame_id
        assert getattr(fw, f"{upper(m.name)}_CYCLE_MS") == m.cycle_time
    for m in gateway_sent(moat_db):
        assert hasattr(fw, f"decode_{snake(m.name)}")


def test_firmware_signal_indices_follow_the_dbc(moat_db) -> None:
    for m in moat_db.messages:
        for i, s in enumerate(gen_codec.ordered_signals(m)):
            assert getattr(fw, f"{upper(m.name)}_{upper(s.name)}") == i
    # The firmware relies on consecutive cell indices.
    assert fw.CELL_VOLTAGES_CELL64_VOLTAGE - fw.CELL_VOLTAGES_CELL01_VOLTAGE == 63
    assert fw.CELL_TEMPERATURES_TEMPERATURE64 - fw.CELL_TEMPERATURES_TEMPERATURE01 == 63


@pytest.mark.parametrize(
    "name",
    [
        "NodeState",
        "PackStatus",
        "CellExtremes",
        "TemperatureExtremes",
        "BalanceState",
        "CellVoltages",
        "CellTemperatures",
        "NodeInfo",
    ],
)
def test_firmware_encoders_match_cantools(moat_db, name: str) -> None:
    message = moat_db.get_message_by_name(name)
    encode = getattr(fw, f"encode_{snake(name)}")

    @SETTINGS
    @given(raw_frame(message))
    def check(frame) -> None:
        _, values = frame
        v = [0] * len(message.signals)
        for i, s in enumerate(gen_codec.ordered_signals(message)):
            v[i] = values.get(s.name, 0)
        buf = bytearray(message.length)
        encode(buf, v)
        expected = message.encode(values, scaling=False, padding=False, strict=False)
        assert bytes(buf) == expected

    check()


def test_firmware_encoder_saturates_instead_of_wrapping(moat_db) -> None:
    message = moat_db.get_message_by_name("PackStatus")
    v = [0] * fw.PACK_STATUS_SIGNALS
    v[fw.PACK_STATUS_PACK_CURRENT] = -10_000_000  # beyond s24: must saturate, not wrap
    buf = bytearray(8)
    fw.encode_pack_status(buf, v)
    assert message.decode(bytes(buf), scaling=False)["PackCurrent"] == -(1 << 23)


@pytest.mark.parametrize("name", ["RelayCommand", "GatewayHeartbeat", "BalanceCommand"])
def test_firmware_decoders_match_cantools(moat_db, name: str) -> None:
    message = moat_db.get_message_by_name(name)
    decode = getattr(fw, f"decode_{snake(name)}")

    @SETTINGS
    @given(raw_frame(message))
    def check(frame) -> None:
        _, values = frame
        data = message.encode(values, scaling=False, padding=False, strict=False)
        v = [None] * len(message.signals)
        assert decode(data, v)
        for i, s in enumerate(gen_codec.ordered_signals(message)):
            if s.name in values:
                assert v[i] == values[s.name], s.name

    check()


def test_firmware_decoder_reports_an_unknown_multiplexer_value() -> None:
    data = bytearray(8)
    data[1] = 0x70  # CellGroup 7 does not exist in BalanceCommand
    assert fw.decode_balance_command(bytes(data), [0] * fw.BALANCE_COMMAND_SIGNALS) is False


# ---------------------------------------------------------------- gateway (typed) codec


MODULES = {"moat_bms": gw_moat, "pylontech_lv": gw_pylon, "simulation": gw_sim}
CASES = [
    (dbname, m.name)
    for dbname in MODULES
    for m in cantools.database.load_file(str(DBC_DIR / f"{dbname}.dbc")).messages
]


@pytest.mark.parametrize(("dbname", "name"), CASES)
def test_gateway_codec_matches_cantools_both_ways(
    moat_db, pylon_db, dbname: str, name: str
) -> None:
    db = {"moat_bms": moat_db, "pylontech_lv": pylon_db}.get(dbname) or cantools.database.load_file(
        str(DBC_DIR / f"{dbname}.dbc"), strict=True
    )
    module = MODULES[dbname]
    message = db.get_message_by_name(name)
    decode = getattr(module, f"decode_{snake(name)}")
    encode = getattr(module, f"encode_{snake(name)}")
    plain = [s for s in gen_codec.ordered_signals(message) if not s.multiplexer_ids]

    def not_available(s, raw: int) -> bool:
        return bool(s.choices) and str(s.choices.get(raw, "")) == "NotAvailable"

    @SETTINGS
    @given(raw_frame(message))
    def check(frame) -> None:
        mux, values = frame
        data = message.encode(values, scaling=False, padding=False, strict=False)
        expected = message.decode(data, decode_choices=False)
        got = decode(data)
        for s in plain:
            value = getattr(got, gen_codec.py_name(s.name))
            if not_available(s, values[s.name]):
                assert math.isnan(value), s.name
            else:
                assert value == expected[s.name], s.name
        if mux is not None:
            muxed = [
                s
                for s in gen_codec.ordered_signals(message)
                if s.multiplexer_ids and mux in s.multiplexer_ids
            ]
            assert len(got.muxed) == len(muxed)
            for s, value in zip(muxed, got.muxed, strict=True):
                if not_available(s, values[s.name]):
                    assert math.isnan(value), s.name
                else:
                    assert value == expected[s.name], s.name
        assert encode(got) == data

    check()


def test_gateway_encoder_refuses_values_that_do_not_fit() -> None:
    limits = gw_pylon.BatteryLimits(
        charge_voltage_limit=6553.6,  # one step beyond u16 at 0.1 V: would wrap to 0 V
        charge_current_limit=10.0,
        discharge_current_limit=10.0,
        discharge_voltage_limit=44.0,
    )
    with pytest.raises(ValueError, match="ChargeVoltageLimit"):
        gw_pylon.encode_battery_limits(limits)


def test_gateway_decoder_maps_not_available_to_nan() -> None:
    data = bytes.fromhex("01E58C39F3FF0332")
    group = gw_moat.decode_cell_voltages(data)
    assert group.cell_group == 1
    assert group.muxed[:2] == (3.301, 3.302)
    assert math.isnan(group.muxed[2])
    assert gw_moat.CELL_VOLTAGES_MUXED_SIGNALS[1][0] == "Cell05Voltage"


def test_gateway_decoder_rejects_an_unknown_multiplexer_value() -> None:
    with pytest.raises(ValueError, match="CellGroup"):
        gw_moat.decode_cell_voltages(bytes([40, 0, 0, 0, 0, 0, 0, 0]))

"""Bus load from the DBC and a topology; `moat-bms config check` warns above 50 %."""

from __future__ import annotations

import cantools
import pytest

from gateway.cli import main
from gateway.contracts.topology import MAX_CELLS, TopologySettings
from gateway.sources.moat_nodes import busload
from tests.common import DBC_DIR

MOAT = cantools.database.load_file(str(DBC_DIR / "moat_bms.dbc"))
PYLON = cantools.database.load_file(str(DBC_DIR / "pylontech_lv.dbc"))


def test_frame_lengths_nominal_and_worst_case() -> None:
    assert busload.frame_bits(8, "none") == 111
    assert busload.frame_bits(8, "worst") == 135
    assert busload.frame_bits(0, "none") == 47
    # The reference figures: about 4,500 and 9,000 frames/s for 8-byte frames.
    assert round(busload.saturated_rate(500_000, 111)) == 4505
    assert round(busload.saturated_rate(1_000_000, 111)) == 9009
    with pytest.raises(ValueError, match=r"0\.\.8"):
        busload.frame_bits(9)


@pytest.mark.parametrize(
    ("frame_id", "data"),
    [
        (0x000, bytes(8)),  # zeros stuff the most
        (0x555, bytes([0x55] * 8)),  # alternating bits: little to stuff
        (0x183, bytes.fromhex("01E58C39F3FF0332")),  # a CellVoltages frame (README)
    ],
)
def test_exact_length_lies_between_nominal_and_worst(frame_id, data) -> None:
    n = busload.exact_frame_bits(frame_id, data)
    assert busload.frame_bits(len(data), "none") <= n <= busload.frame_bits(len(data), "worst")


def test_exact_length_counts_stuff_bits() -> None:
    # Identifier 0x000, no data: SOF + 11 zero bits + RTR/IDE/r0 + DLC 0000 = 19 zeros, which
    # takes stuff bits after the 5th, 9th, 13th and 17th zero (each stuff bit starts a run).
    assert busload.exact_frame_bits(0x000, b"") >= busload.frame_bits(0, "none") + 4
    # An alternating pattern only stuffs where the CRC happens to run.
    assert busload.exact_frame_bits(0x555, bytes([0x55] * 8)) < busload.frame_bits(8, "worst")
    with pytest.raises(ValueError, match="standard"):
        busload.exact_frame_bits(0x800, b"")


def test_streams_follow_the_dbc_cycle_times_and_lengths() -> None:
    topo = TopologySettings(strings=[[0]], cells_per_node=16)
    streams = {s.name: s for s in busload.battery_streams(topo, temp_sensors=4)}
    for name, stream in streams.items():
        msg = MOAT.get_message_by_name(name)
        assert stream.length == msg.length
        per_node = 1000 / msg.cycle_time
        groups = {"CellVoltages": 4, "CellTemperatures": 2}.get(name, 1)
        assert stream.frames_per_s == pytest.approx(per_node * groups), name
    for stream in busload.inverter_streams():
        msg = PYLON.get_message_by_name(stream.name)
        assert stream.length == msg.length
        assert stream.frames_per_s == pytest.approx(1000 / msg.cycle_time)


def test_load_grows_linearly_with_nodes_and_cells() -> None:
    def node_frames(nodes: int, cells: int) -> float:
        topo = TopologySettings(strings=[list(range(nodes))], cells_per_node=cells)
        streams = busload.battery_streams(topo)
        return busload.frames_per_s([s for s in streams if s.sender == "Node"])

    assert node_frames(4, 16) == pytest.approx(4 * node_frames(1, 16))
    # 48 more cells: 12 more CellVoltages groups a second.
    assert node_frames(1, 64) == pytest.approx(node_frames(1, 16) + 12)
    topo = TopologySettings(strings=[[0]], cells_per_node=64)
    balance = next(s for s in busload.battery_streams(topo) if s.name == "BalanceCommand")
    assert balance.frames_per_s == 2  # two groups of 32 cells, once a second


def test_largest_system_fits_500k_but_not_125k() -> None:
    topo = TopologySettings(strings=[list(range(16))], cells_per_node=MAX_CELLS)
    ok = busload.system_load(topo, 500_000, None, shared_bus=True)
    assert len(ok) == 1 and not ok[0].too_high and 0.1 < ok[0].load < 0.5
    slow = busload.system_load(topo, 125_000, None, shared_bus=True)
    assert slow[0].too_high
    assert "125 kbit/s" in slow[0].describe()
    separate = busload.system_load(topo, 125_000, 250_000, shared_bus=False)
    assert [b.bus for b in separate] == ["battery", "inverter"]
    assert separate[0].load < slow[0].load  # the inverter's frames are elsewhere
    assert not separate[1].too_high


def test_bitrate_left_open_is_assumed_500k() -> None:
    topo = TopologySettings()
    (bus,) = busload.system_load(topo, None, None, shared_bus=True)
    assert bus.bitrate == 500_000 and bus.bitrate_assumed
    assert "assumed" in bus.describe()


def test_config_check_warns_above_half_the_bitrate(tmp_path, capsys) -> None:
    nodes = list(range(16))
    busy = tmp_path / "busy.yaml"
    busy.write_text(
        f"battery:\n  topology:\n    strings: [{nodes}]\n    cells_per_node: 64\n"
        "buses:\n  battery:\n    interface: virtual\n    bitrate: 125000\n"
    )
    assert main(["config", "check", str(busy)]) == 0  # a warning, not an error
    captured = capsys.readouterr()
    assert "warning: battery bus" in captured.err and "125 kbit/s" in captured.err
    calm = tmp_path / "calm.yaml"
    calm.write_text("buses:\n  battery:\n    interface: virtual\n    bitrate: 500000\n")
    assert main(["config", "check", str(calm)]) == 0
    captured = capsys.readouterr()
    assert "warning" not in captured.err
    assert "battery bus:" in captured.out and "500 kbit/s" in captured.out

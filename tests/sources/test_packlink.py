"""The serial PackLink end to end: each protocol's emulator (gateway/sim/bms, written from the
same documents) answers on a pseudo-terminal; the link opens the other side through pyserial
by its path, as it would a USB adapter. Faults come from the pty server; the reopen back-off
runs on a simulated clock, so only the read timeouts (short) take real time."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.runtime.packlink import SerialPackLink, open_link
from gateway.sim.bms import emulator as emulator_for
from gateway.sim.bms.jbd import JbdEmulator
from gateway.sim.bms.pack import Emulator, PackState
from gateway.sim.bms.pty import GARBAGE, Fault, PtyServer
from gateway.sources.packs.reading import PackError

TIMEOUT = 0.5  # s per request: short, yet ample for a loaded machine


def pack() -> PackState:
    return PackState(
        cells_mv=[3301, 3302, 3303, 3304],
        temps_c=[21, 22, 23],
        current_ma=-12000,
        capacity_mah=100_000,
        remaining_mah=40_000,
        cycles=9,
    )


PROTOCOLS = ("daly", "jbd", "jk", "jk-modbus")
# An alarm bit of each protocol that holds the charge MOSFET off (cell over-voltage).
CHARGE_BLOCKING = {"jbd": 0, "jk": 10, "jk-modbus": 4, "daly": 1}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


Bms = tuple[str, Emulator, PtyServer, SerialPackLink, Clock]


@pytest.fixture(params=PROTOCOLS)
async def bms(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Bms]:
    protocol: str = request.param
    emulator = emulator_for(protocol, pack())
    clock = Clock()
    with PtyServer(emulator, link=tmp_path / "ttyBMS") as server:
        link = open_link(protocol, server.port, timeout=TIMEOUT, clock=clock)
        assert isinstance(link, SerialPackLink)
        yield protocol, emulator, server, link, clock
        await link.close()


@pytest.mark.anyio
async def test_a_reading_is_the_emulated_pack(bms: Bms) -> None:
    protocol, _, server, link, _ = bms
    r = await link.read()
    assert r.cells == (3.301, 3.302, 3.303, 3.304)
    assert r.voltage == pytest.approx(13.21, abs=0.05)
    assert r.current == pytest.approx(-12.0)
    assert r.soc == pytest.approx(40.0)
    assert (r.charge_on, r.discharge_on) == (True, True)
    assert r.alarms == frozenset()
    assert set(r.temperatures) >= {21.0, 22.0}
    assert link.counters.readings == 1 and link.counters.skipped == 0
    assert server.path.startswith("/dev/pts/")
    assert link.name == f"{protocol} {server.port}"


@pytest.mark.anyio
async def test_garbage_before_answers_is_skipped_and_counted(bms: Bms) -> None:
    _, _, server, link, _ = bms
    server.inject(Fault.GARBAGE, times=10)
    assert (await link.read()).cells[0] == 3.301
    assert link.counters.skipped >= len(GARBAGE)


@pytest.mark.anyio
async def test_stale_bytes_on_the_line_are_flushed_before_a_request(bms: Bms) -> None:
    protocol, _, server, link, _ = bms
    stale = emulator_for(protocol, PackState(cells_mv=[2500] * 4))
    # A complete answer from before, waiting in the input: never taken for the new one.
    server.send(b"".join(stale.respond(r) for r in requests(protocol)))
    assert (await link.read()).cells[0] == 3.301


def requests(protocol: str) -> list[bytes]:
    """The requests of one poll, as the gateway sends them."""
    link = open_link(protocol, "unused")
    assert isinstance(link, SerialPackLink)
    poll = link.protocol.poll()
    return poll.requests


@pytest.mark.anyio
async def test_answers_split_in_two_writes_are_joined(bms: Bms) -> None:
    _, _, server, link, _ = bms
    server.inject(Fault.SPLIT, times=10)
    assert (await link.read()).cells[3] == 3.304
    assert link.counters.bad_frames == 0


@pytest.mark.anyio
async def test_a_truncated_answer_fails_that_read_only(bms: Bms) -> None:
    _, _, server, link, _ = bms
    server.inject(Fault.TRUNCATED)
    with pytest.raises(PackError, match="bytes of a truncated frame"):
        await link.read()
    assert link.counters.timeouts == 1
    assert (await link.read()).soc == pytest.approx(40.0)


@pytest.mark.anyio
async def test_a_wrong_checksum_fails_the_read_and_is_counted(bms: Bms) -> None:
    _, _, server, link, _ = bms
    server.inject(Fault.BAD_CHECKSUM)
    with pytest.raises(PackError, match="wrong checksum"):
        await link.read()
    assert link.counters.bad_frames == 1
    assert (await link.read()).cells[0] == 3.301


@pytest.mark.anyio
async def test_silence_fails_within_the_timeout(bms: Bms) -> None:
    protocol, _, server, link, _ = bms
    server.inject(Fault.SILENCE)
    start = time.monotonic()
    with pytest.raises(PackError, match=f"{protocol} .*: no complete answer to"):
        await link.read()
    assert time.monotonic() - start < 4 * TIMEOUT  # bounded: one request's timeout
    assert link.counters.failed == 1
    await link.read()


@pytest.mark.anyio
async def test_a_port_that_disappears_is_reopened_with_back_off(bms: Bms) -> None:
    _, _, server, link, clock = bms
    await link.read()
    server.close_port()
    with pytest.raises(PackError, match="port lost"):
        await link.read()
    assert not link.is_open
    # Within the back-off no attempt is made: the read fails at once.
    with pytest.raises(PackError, match=r"port down, next attempt in 0\.5 s"):
        await link.read()
    clock.now += 0.5
    with pytest.raises(PackError, match="cannot open the port"):
        await link.read()  # still gone: the back-off doubles
    server.reopen_port()
    clock.now += 0.5
    with pytest.raises(PackError, match=r"port down, next attempt in 0\.5 s"):
        await link.read()
    clock.now += 0.5
    assert (await link.read()).cells[0] == 3.301
    assert link.counters.reopens == 1


@pytest.mark.anyio
async def test_switching_is_confirmed_and_refused_into_a_fault(bms: Bms) -> None:
    protocol, emulator, _, link, _ = bms
    if not link.can_switch:
        with pytest.raises(PackError, match="no MOSFET command"):
            await link.switch(False, True)
        return
    await link.switch(charge=False, discharge=True)
    assert (emulator.pack.charge_switch, emulator.pack.discharge_switch) == (False, True)
    r = await link.read()
    assert (r.charge_on, r.discharge_on) == (False, True)
    assert r.alarms == frozenset()  # our own switch-off is not a fault
    await link.switch(charge=True, discharge=False)
    assert (emulator.pack.charge_switch, emulator.pack.discharge_switch) == (True, False)
    emulator.pack.alarms = 1 << CHARGE_BLOCKING[protocol]
    with pytest.raises(PackError, match="switch not confirmed: asked charge on discharge on"):
        await link.switch(charge=True, discharge=True)
    assert (await link.read()).charge_on is False


def test_open_link_knows_each_protocol_and_its_baud_rate() -> None:
    rates = {}
    for protocol in PROTOCOLS:
        link = open_link(protocol, "/dev/ttyUSB9")
        assert isinstance(link, SerialPackLink) and not link.is_open  # opened at first read
        rates[protocol] = link.baudrate
    assert rates == {"jbd": 9600, "jk": 115200, "jk-modbus": 115200, "daly": 9600}
    with pytest.raises(ValueError, match="no emulator for BMS protocol 'pylon'"):
        emulator_for("pylon")
    link = open_link("jk-modbus", "/dev/ttyUSB9", address=7, baudrate=9600)
    assert isinstance(link, SerialPackLink) and link.baudrate == 9600
    with pytest.raises(ValueError, match="unknown BMS protocol 'pylon'"):
        open_link("pylon", "/dev/ttyUSB9")
    with pytest.raises(ValueError, match="jbd has no address"):
        open_link("jbd", "/dev/ttyUSB9", address=1)
    with pytest.raises(ValueError, match=r"out of 1\.\.247"):
        open_link("jk-modbus", "/dev/ttyUSB9", address=0)


@pytest.mark.anyio
async def test_a_missing_adapter_at_start_is_retried(tmp_path: Path) -> None:
    clock = Clock()
    link = open_link("jbd", str(tmp_path / "absent"), timeout=TIMEOUT, clock=clock)
    with pytest.raises(PackError, match="cannot open the port"):
        await link.read()
    emulator = JbdEmulator()
    with PtyServer(emulator, link=tmp_path / "absent"):
        clock.now += 0.5
        assert (await link.read()).cells == tuple(mv / 1000 for mv in emulator.pack.cells_mv)
    await link.close()

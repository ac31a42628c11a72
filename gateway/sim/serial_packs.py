"""A serial commercial BMS (JBD, JK, JK-PB Modbus, Daly) in the simulator: the protocol's
emulator (gateway/sim/bms/) on a pack of the physics, and the gateway's side that reads it in
process with the same codec the runtime's serial link drives (gateway/sources/packs/, through
gateway/runtime/packlink.PROTOCOLS), without a pseudo-terminal: every request of the codec's
poll goes to the emulator's `respond(request) -> bytes`, and its answer through the codec's
framer and parser. A SimPack (gateway/sim/packs.py), registered in SIM_PACKS under the
protocol's source name.

The BMS's own protection: it raises its cell over-voltage flag at the chemistry's charge
cut-off and its cell under-voltage flag at its hard minimum (the flags in the emulated
protocol's bit order, CELL_FLAGS), which hold that MOSFET off (the emulator's BLOCKS). The
physics has one switch per pack: it conducts while both MOSFETs do, so a BMS that cuts one
direction off, or a gateway that switches both off, opens it.
"""

from __future__ import annotations

import math

from gateway.contracts.chemistry import ChemistrySpec
from gateway.runtime.packlink import PROTOCOLS
from gateway.sim.bms import daly as daly_emulator
from gateway.sim.bms import emulator
from gateway.sim.bms import jbd as jbd_emulator
from gateway.sim.bms import jk as jk_emulator
from gateway.sim.bms import jk_modbus as jk_modbus_emulator
from gateway.sim.bms.pack import PackState
from gateway.sim.physics import Pack
from gateway.sources.packs.framing import PackProtocol, Poll
from gateway.sources.packs.reading import PackError, PackReading

# protocol -> (cell over-voltage flag, cell under-voltage flag, which flag holds which
# MOSFET off), as each emulator numbers its protection flags.
CELL_FLAGS: dict[str, tuple[int, int, dict[int, tuple[bool, bool]]]] = {
    "jbd": (0, 1, jbd_emulator.BLOCKS),  # cell block over- / under-voltage
    "jk": (10, 11, jk_emulator.BLOCKS),  # cell over- / under-voltage (0x8B)
    "jk-modbus": (4, 11, jk_modbus_emulator.BLOCKS),  # cell OV / UV protection
    "daly": (1, 3, daly_emulator.BLOCKS),  # cell volt high / low level 2
}
# The JK families report their MOSFETs' temperature before the pack's sensors.
MOS_SENSOR = frozenset({"jk", "jk-modbus"})


class SimSerialBms:
    """One serial BMS on a pack of the physics, and the gateway's reading of it."""

    def __init__(
        self, protocol: str, pack: Pack, chemistry: ChemistrySpec, address: int | None = None
    ) -> None:
        if protocol not in CELL_FLAGS:
            raise ValueError(f"no simulated serial BMS {protocol!r}")
        self.name = f"simulated {protocol}"
        self.source = protocol
        self.pack = pack
        self.chemistry = chemistry
        self.state = PackState()
        self.emulator = emulator(protocol, self.state, address)
        self.protocol: PackProtocol = PROTOCOLS[protocol][0](address)
        self._ov_flag, self._uv_flag, self._blocks = CELL_FLAGS[protocol]
        self.relay_closed = True
        self.charge_on = self.discharge_on = True
        # Flags a scenario raises by hand (the protocol's bit numbers), beside the cell ones.
        self.extra_alarms = 0
        self.silent = False  # a scenario cuts its cable: every request goes unanswered
        self.requests = 0  # requests the BMS answered
        self.commands: list[tuple[float, bool, bool]] = []  # (t, charge, discharge) received
        self._t = 0.0

    # ------------------------------------------------------------------ the battery

    def step(self, t: float) -> None:
        """Its BMS measures the cells, raises its flags and sets its MOSFETs."""
        self._t = t
        pack, chem, state = self.pack, self.chemistry, self.state
        cells = pack.cell_voltages()
        state.cells_mv = [round(1000 * v) for v in cells]
        temps = [round(x) for x in pack.temperatures() if x is not None and math.isfinite(x)]
        ambient = round(pack.ambient_c)
        if self.source in MOS_SENSOR:
            temps = [round(pack.balancer_temp_c), *temps]
        state.temps_c = temps or [ambient]
        state.current_ma = round(1000 * pack.measured_current_a)
        state.capacity_mah = round(1000 * pack.capacity_ah)
        state.remaining_mah = max(0, min(round(1000 * pack.remaining_ah), state.capacity_mah))
        alarms = self.extra_alarms
        if max(cells) >= chem.max_charge_v:
            alarms |= 1 << self._ov_flag
        if min(cells) <= chem.hard_min_v:
            alarms |= 1 << self._uv_flag
        state.alarms = alarms
        self.charge_on, self.discharge_on = state.conducts(self._blocks)
        self.relay_closed = self.charge_on and self.discharge_on

    # ------------------------------------------------------------------ the gateway's side

    def _exchange(self, poll: Poll) -> None:
        framer = self.protocol.framer()
        while (request := poll.request()) is not None:
            answer = b"" if self.silent else self.emulator.respond(request)
            if answer:
                self.requests += 1
            for frame in framer.feed(answer):
                poll.take(frame)
            if poll.waiting():
                raise PackError(f"{self.name}: no complete answer to {request[:6].hex(' ')}")

    def poll(self, now: float) -> PackReading | PackError:
        """One reading, as the runtime's serial link makes it (a PackError when it fails)."""
        poll = self.protocol.poll()
        try:
            self._exchange(poll)
            return poll.result()
        except PackError as exc:
            return exc

    def switch(self, charge: bool, discharge: bool) -> bool:
        """The gateway's MOSFET command through the protocol's write; False for a BMS that
        has none (Daly) or when it goes unanswered."""
        if not self.protocol.can_switch:
            return False
        self.commands.append((self._t, charge, discharge))
        try:
            self._exchange(self.protocol.switch_poll(charge, discharge))
        except PackError:
            return False
        self.charge_on, self.discharge_on = self.state.conducts(self._blocks)
        self.relay_closed = self.charge_on and self.discharge_on
        return True

    def close(self) -> None:
        """Nothing to release: the emulator lives in this process."""

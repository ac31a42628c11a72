"""Frames the node sends, each at its DBC period (codec <MESSAGE>_CYCLE_MS).

NodeState goes out at once whenever its content changes and at least every
NODE_STATE_CYCLE_MS; its AliveCounter advances with every NodeState frame that is queued.
The multiplexed CellVoltages and CellTemperatures frames are spread evenly over their
period (one group every period / groups ms) instead of bursting all groups at once. Each
node starts its schedule offset by node_id / 16 of every period, so nodes on one bus do not
send in lock-step. A frame the controller cannot take is dropped and counted by NodeCanPort;
after a stall longer than a period the schedule restarts instead of catching up in a burst.
"""

from bms import VERSION, codec
from bms.can import FLAG_UNORDERED
from bms.compat import const, ticks_add, ticks_diff
from bms.measure import CELL_MV_MAX, CELL_MV_MIN, TEMP_DC_MAX, TEMP_DC_MIN

# Streams
S_PACK_STATUS = const(0)
S_CELL_EXTREMES = const(1)
S_TEMPERATURE_EXTREMES = const(2)
S_BALANCE_STATE = const(3)
S_CELL_VOLTAGES = const(4)
S_CELL_TEMPERATURES = const(5)
S_NODE_INFO = const(6)
STREAMS = const(7)

MAX_GROUPS_PER_CYCLE = const(4)  # catch-up limit of a multiplexed stream within one cycle
_FAR = const(0x3FFFFFFF)  # longer than any wait for a stream (the largest small int)

_FAULT_BASE = codec.NODE_STATE_FAULT_CELL_OVER_VOLTAGE
_WARN_BASE = codec.NODE_STATE_WARN_CELL_OVER_VOLTAGE
_INFO_BASE = codec.NODE_STATE_INFO_CELL_OVER_VOLTAGE


class Reports:
    """Transmit side of the protocol for one node; see the module docstring."""

    def __init__(self, config, port):
        self.port = port
        n = config.node_id
        self.node_state_id = codec.NODE_STATE_ID | n
        self.ids = (
            codec.PACK_STATUS_ID | n,
            codec.CELL_EXTREMES_ID | n,
            codec.TEMPERATURE_EXTREMES_ID | n,
            codec.BALANCE_STATE_ID | n,
            codec.CELL_VOLTAGES_ID | n,
            codec.CELL_TEMPERATURES_ID | n,
            codec.NODE_INFO_ID | n,
        )
        self.periods = (
            codec.PACK_STATUS_CYCLE_MS,
            codec.CELL_EXTREMES_CYCLE_MS,
            codec.TEMPERATURE_EXTREMES_CYCLE_MS,
            codec.BALANCE_STATE_CYCLE_MS,
            codec.CELL_VOLTAGES_CYCLE_MS,
            codec.CELL_TEMPERATURES_CYCLE_MS,
            codec.NODE_INFO_CYCLE_MS,
        )
        self.cells = config.cells
        self.temps = config.temp_sensors
        self.cell_groups = (config.cells + 3) // 4
        self.temp_groups = (config.temp_sensors + 2) // 3
        intervals = list(self.periods)
        intervals[S_CELL_VOLTAGES] = self.periods[S_CELL_VOLTAGES] // self.cell_groups
        intervals[S_CELL_TEMPERATURES] = self.periods[S_CELL_TEMPERATURES] // self.temp_groups
        self.intervals = intervals
        self.offsets = [(n * p) // codec.MAX_NODES for p in self.periods]
        self.due = [0] * STREAMS
        self.next_due = 0  # the earliest of due: no stream is due before it
        self.node_state_due = 0
        self.cell_group = 0
        self.temp_group = 0
        self.alive = 0  # AliveCounter of the last NodeState queued
        self.buf = bytearray(8)
        self.node_state = bytearray(8)
        self.node_state_last = bytearray(8)
        self.node_state_sent = False
        # What the NodeState last queued was built from (state, relay state, trip cleared,
        # balancing, link, request, faults, warnings, infos): the same inputs give the same
        # frame, so a cycle whose inputs match and whose period is not over sends nothing
        # without building the frame again.
        self.node_state_from = [-1] * 9
        self.ns = [0] * codec.NODE_STATE_SIGNALS
        self.ps = [0] * codec.PACK_STATUS_SIGNALS
        self.ce = [0] * codec.CELL_EXTREMES_SIGNALS
        self.te = [0] * codec.TEMPERATURE_EXTREMES_SIGNALS
        self.bs = [0] * codec.BALANCE_STATE_SIGNALS
        self.cv = [codec.CELL_VOLTAGES_NOT_AVAILABLE] * codec.CELL_VOLTAGES_SIGNALS
        self.ct = [codec.CELL_TEMPERATURES_NOT_AVAILABLE] * codec.CELL_TEMPERATURES_SIGNALS
        ni = [0] * codec.NODE_INFO_SIGNALS
        ni[codec.NODE_INFO_FIRMWARE_MAJOR] = VERSION[0]
        ni[codec.NODE_INFO_FIRMWARE_MINOR] = VERSION[1]
        ni[codec.NODE_INFO_FIRMWARE_PATCH] = VERSION[2]
        ni[codec.NODE_INFO_CELL_COUNT] = config.cells
        ni[codec.NODE_INFO_TEMPERATURE_SENSOR_COUNT] = config.temp_sensors
        ni[codec.NODE_INFO_CHEMISTRY] = config.chemistry_code
        ni[codec.NODE_INFO_CAPACITY] = config.capacity_dah
        self.ni = ni

    def start(self, now_ms):
        """Begin the schedule at now_ms (the node's first cycle)."""
        for i in range(STREAMS):
            self.due[i] = ticks_add(now_ms, self.offsets[i])
        self._find_next_due()
        self.node_state_due = now_ms

    def _find_next_due(self):
        due = self.due
        first = due[0]
        for i in range(1, STREAMS):
            if ticks_diff(due[i], first) < 0:
                first = due[i]
        self.next_due = first

    # ---- NodeState ----

    def send_node_state(self, now_ms, node):
        """Queue NodeState when its content changed or its period is over."""
        f = self.node_state_from
        if (
            f[0] == node.state
            and f[1] == node.relay_state
            and f[2] == node.trip_cleared
            and f[3] == node.balancing
            and f[4] == node.gateway_link
            and f[5] == node.relay_request
            and f[6] == node.faults
            and f[7] == node.warnings
            and f[8] == node.infos
        ):
            if ticks_diff(now_ms, self.node_state_due) < 0:
                return
            # The period is over and nothing changed: the last frame, next alive counter.
            buf = self.node_state
            last = self.node_state_last
            buf[0:8] = last  # a slice assignment allocates nothing on MicroPython
            alive = (self.alive + 1) & 0x0F
            buf[1] = (last[1] & 0xF0) | alive
            if self.port.send(self.node_state_id, buf):
                self.alive = alive
                last[1] = buf[1]
                self.node_state_due = ticks_add(now_ms, codec.NODE_STATE_CYCLE_MS)
            return
        v = self.ns
        v[codec.NODE_STATE_STATE] = node.state
        v[codec.NODE_STATE_RELAY_STATE] = node.relay_state
        v[codec.NODE_STATE_TRIP_CLEARED] = 1 if node.trip_cleared else 0
        v[codec.NODE_STATE_BALANCING] = 1 if node.balancing else 0
        v[codec.NODE_STATE_ALIVE_COUNTER] = (self.alive + 1) & 0x0F
        v[codec.NODE_STATE_GATEWAY_LINK] = node.gateway_link
        v[codec.NODE_STATE_RELAY_REQUEST] = node.relay_request
        faults = node.faults
        warnings = node.warnings
        infos = node.infos
        for k in range(16):
            bit = 1 << k
            v[_FAULT_BASE + k] = 1 if faults & bit else 0
            v[_WARN_BASE + k] = 1 if warnings & bit else 0
            v[_INFO_BASE + k] = 1 if infos & bit else 0
        buf = self.node_state
        codec.encode_node_state(buf, v)
        last = self.node_state_last
        changed = not self.node_state_sent or (buf[1] & 0xF0) != (last[1] & 0xF0)
        if not changed:
            for i in (0, 2, 3, 4, 5, 6, 7):
                if buf[i] != last[i]:
                    changed = True
                    break
        if not changed and ticks_diff(now_ms, self.node_state_due) < 0:
            return
        if self.port.send(self.node_state_id, buf):
            self.alive = v[codec.NODE_STATE_ALIVE_COUNTER]
            last[0:8] = buf
            self.node_state_sent = True
            self.node_state_due = ticks_add(now_ms, codec.NODE_STATE_CYCLE_MS)
            f[0] = node.state
            f[1] = node.relay_state
            f[2] = node.trip_cleared
            f[3] = node.balancing
            f[4] = node.gateway_link
            f[5] = node.relay_request
            f[6] = faults
            f[7] = warnings
            f[8] = infos

    # ---- periodic frames ----

    def send_periodic(self, now_ms, node):
        """Queue every periodic frame that is due."""
        if ticks_diff(now_ms, self.next_due) < 0:
            return  # most cycles: no stream is due
        port = self.port
        buf = self.buf
        hw = node.hw
        summary = node.summary
        due = self.due
        # One pass over the streams in their order: send each one that is due and advance
        # it, and find the least wait to the next due time (the next cycle's next_due).
        soonest = _FAR
        for s in range(STREAMS):
            wait = ticks_diff(due[s], now_ms)
            if wait > 0:
                pass  # not due: only its wait counts
            elif s == S_CELL_VOLTAGES or s == S_CELL_TEMPERATURES:  # noqa: PLR1714, SIM109
                # Multiplexed: one group per interval, catching up a few at most. Each group
                # advances the stream by its interval, as a wait from now_ms (as below).
                interval = self.intervals[s]
                stalled = -self.periods[s]
                sent = 0
                while wait <= 0 and sent < MAX_GROUPS_PER_CYCLE:
                    wait += interval
                    if wait < stalled:
                        wait = interval  # stalled: no burst to catch up
                    if s == S_CELL_VOLTAGES:
                        self._send_cell_voltages(hw, summary.cells_bad == 0)
                    else:
                        self._send_cell_temperatures(hw)
                    sent += 1
                due[s] = ticks_add(now_ms, wait)
            else:
                if s == S_PACK_STATUS:
                    v = self.ps
                    v[codec.PACK_STATUS_PACK_VOLTAGE] = hw.pack_mv if summary.pack_ok else 0
                    # Less the sensor's zero (bms.plausible): what the protection acts on.
                    v[codec.PACK_STATUS_PACK_CURRENT] = node.current_check.current_ma
                    v[codec.PACK_STATUS_REJECTED_COMMANDS] = node.rejected_commands
                    codec.encode_pack_status(buf, v)
                elif s == S_CELL_EXTREMES:
                    v = self.ce
                    v[codec.CELL_EXTREMES_MIN_CELL_VOLTAGE] = summary.cell_min_mv
                    v[codec.CELL_EXTREMES_MAX_CELL_VOLTAGE] = summary.cell_max_mv
                    v[codec.CELL_EXTREMES_MIN_CELL_NUMBER] = summary.cell_min_no
                    v[codec.CELL_EXTREMES_MAX_CELL_NUMBER] = summary.cell_max_no
                    v[codec.CELL_EXTREMES_MEAN_CELL_VOLTAGE] = summary.cell_mean_mv
                    codec.encode_cell_extremes(buf, v)
                elif s == S_TEMPERATURE_EXTREMES:
                    v = self.te
                    v[codec.TEMPERATURE_EXTREMES_MIN_TEMPERATURE] = summary.temp_min_dc
                    v[codec.TEMPERATURE_EXTREMES_MAX_TEMPERATURE] = summary.temp_max_dc
                    v[codec.TEMPERATURE_EXTREMES_MIN_TEMPERATURE_SENSOR] = summary.temp_min_no
                    v[codec.TEMPERATURE_EXTREMES_MAX_TEMPERATURE_SENSOR] = summary.temp_max_no
                    v[codec.TEMPERATURE_EXTREMES_BALANCER_TEMPERATURE] = (
                        hw.balancer_temp_dc
                        if summary.balancer_ok
                        else codec.TEMPERATURE_EXTREMES_BALANCER_TEMPERATURE_NOT_AVAILABLE
                    )
                    codec.encode_temperature_extremes(buf, v)
                elif s == S_BALANCE_STATE:
                    v = self.bs
                    words = node.balancer.words
                    v[codec.BALANCE_STATE_BLEEDING_CELLS01_TO16] = words[0]
                    v[codec.BALANCE_STATE_BLEEDING_CELLS17_TO32] = words[1]
                    v[codec.BALANCE_STATE_BLEEDING_CELLS33_TO48] = words[2]
                    v[codec.BALANCE_STATE_BLEEDING_CELLS49_TO64] = words[3]
                    codec.encode_balance_state(buf, v)
                else:  # S_NODE_INFO
                    codec.encode_node_info(buf, self.ni)
                port.send(self.ids[s], buf)
                # Advanced by its interval, as a wait from now_ms: a stream stalled for
                # longer than its period starts again from now instead of catching up.
                interval = self.intervals[s]
                wait += interval
                if wait < -self.periods[s]:
                    wait = interval  # stalled: no burst to catch up
                due[s] = ticks_add(now_ms, wait)
            if wait < soonest:  # noqa: PLR1730 (plain ints, no call in the hot path)
                soonest = wait
        self.next_due = ticks_add(now_ms, soonest)

    def _send_cell_voltages(self, hw, in_range):
        """The next group of cells; in_range: every cell reads within CELL_MV_MIN..MAX
        (bms.measure's Summary found no cell without a usable reading)."""
        group = self.cell_group
        v = self.cv
        v[codec.CELL_VOLTAGES_CELL_GROUP] = group
        cells = hw.cell_mv
        first = 4 * group
        if in_range and first + 4 <= self.cells:
            # Nearly always: four cells, none to replace by NotAvailable, copied without a
            # loop (the node sends every cell every second).
            v[1 + first] = cells[first]
            v[2 + first] = cells[first + 1]
            v[3 + first] = cells[first + 2]
            v[4 + first] = cells[first + 3]
        else:
            # The group's cells (the last group of a node whose cells are not a multiple
            # of 4 has fewer): the bound once per frame, not a test per cell.
            for i in range(first, min(first + 4, self.cells)):
                mv = cells[i]
                if mv < CELL_MV_MIN or mv > CELL_MV_MAX:
                    mv = codec.CELL_VOLTAGES_NOT_AVAILABLE
                v[1 + i] = mv
        codec.encode_cell_voltages(self.buf, v)
        self.port.send(self.ids[S_CELL_VOLTAGES], self.buf, FLAG_UNORDERED)
        self.cell_group = group + 1 if group + 1 < self.cell_groups else 0

    def _send_cell_temperatures(self, hw):
        group = self.temp_group
        v = self.ct
        v[codec.CELL_TEMPERATURES_SENSOR_GROUP] = group
        temps = hw.temp_dc
        first = 3 * group
        for i in range(first, min(first + 3, self.temps)):  # as for the cells
            dc = temps[i]
            ok = TEMP_DC_MIN <= dc <= TEMP_DC_MAX
            v[1 + i] = dc if ok else codec.CELL_TEMPERATURES_NOT_AVAILABLE
        codec.encode_cell_temperatures(self.buf, v)
        self.port.send(self.ids[S_CELL_TEMPERATURES], self.buf, FLAG_UNORDERED)
        self.temp_group = group + 1 if group + 1 < self.temp_groups else 0

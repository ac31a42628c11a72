"""The moat-bms nodes as a battery source: frames in (ingest -> model), commands out."""

from __future__ import annotations

from gateway.codec import moat_bms as codec
from gateway.contracts.decision import BalanceRequest, Decision
from gateway.contracts.frame import Frame
from gateway.contracts.snapshot import BatterySnapshot
from gateway.contracts.topology import TopologySettings
from gateway.record.counters import BusCounters
from gateway.sources.moat_nodes.commands import NodeCommander
from gateway.sources.moat_nodes.ingest import BatteryIngest
from gateway.sources.moat_nodes.model import BatteryModel


class MoatNodes:
    """Every configured node of dbc/moat_bms.dbc on one battery bus (a BatterySource)."""

    name = "moat-bms nodes"

    def __init__(
        self,
        topology: TopologySettings,
        node_timeout: float,
        counters: BusCounters,
        *,
        alert_high_cell: float,
        alert_low_cell: float,
        chemistry: str | None = None,
        command_key: bytes | None = None,
        nodes: list[int] | None = None,
    ) -> None:
        """A frame showing a cell beyond the alert bounds (V) is urgent (see on_frame);
        `chemistry` ("lfp", ...) is what the nodes' NodeInfo must report; `command_key` the
        installation's key for authenticated relay commands (bms.auth), None for none;
        `nodes` the topology's ids that are nodes (None: all; the others are commercial
        packs, and snapshot() is then the combined source's)."""
        self.chemistry = chemistry
        self.model = BatteryModel(topology, node_timeout, nodes)
        self.model.alert_high_cell = alert_high_cell
        self.model.alert_low_cell = alert_low_cell
        self.ingest = BatteryIngest(self.model, counters)
        self.commander = NodeCommander(
            {n: topology.cells_of(n) for n in self.model.nodes}, command_key
        )
        self.commander.gateway_state = codec.GatewayHeartbeatGatewayState.RUNNING
        # What a node the decision asks nothing of is told (stop bleeding): one request per
        # node, made once, not one per node and tick.
        self._no_balance = {n: BalanceRequest(n, 0, 0.0) for n in self.model.nodes}

    def on_frame(self, frame: Frame, now: float) -> bool:
        return self.ingest.on_frame(frame, now)

    def snapshot(self, now: float) -> BatterySnapshot:
        return self.model.snapshot(now)

    def problems(self) -> list[str]:
        return self.model.mismatches(self.chemistry)

    def commands(self, decision: Decision, now: float) -> list[Frame]:
        commander = self.commander
        nodes = self.model.nodes
        for relay in decision.relay:
            if relay.node in nodes:  # the others are commercial packs
                commander.request_relay(relay)
        for balance in decision.balance:
            if balance.node in nodes:
                commander.request_balance(balance)
        # A node the decision asks nothing of stops bleeding.
        asked = {b.node for b in decision.balance}
        for node, idle in self._no_balance.items():
            if node not in asked:
                commander.request_balance(idle)
        return commander.due_frames(now)

    def saved(self) -> dict[str, object]:
        """What the nodes' commands need across a restart (the Freshness sent)."""
        return self.commander.saved()

    def restore(self, data: object, skip: int) -> None:
        """Go on from saved(); ValueError naming the key when data is unusable."""
        self.commander.restore(data, skip)

    def stopping(self) -> Frame | None:
        return self.commander.stopping()

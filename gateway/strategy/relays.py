"""Relay policy: which nodes are asked to close or open their relay.

A string closes as a whole, and only when every node of it is present, reports no fault,
is not tripped (or is tripped with its faults cleared and the user resets it), and is not
opened by the user. A parallel string closes only within the voltage window of the bus
formed by the strings already closed; when none is, the string that most others agree with
closes first. Battery data stale for open_after_s opens every relay; a node silent that
long opens the rest of its string (a string that cannot be watched must not carry
current). The node itself never closes on a fault, whatever it is asked.
"""

from __future__ import annotations

import math

from gateway.contracts.decision import RelayAction, RelayRequest
from gateway.contracts.snapshot import BatterySnapshot, NodeSnapshot, NodeState, StringSnapshot
from gateway.strategy.settings import RelaySettings


class RelayPolicy:
    """Relay requests per node, with the user's requests and resets."""

    def __init__(self, settings: RelaySettings) -> None:
        self.settings = settings
        self._user: dict[int, RelayAction] = {}
        self._resets: set[int] = set()
        self._uptime = 0.0  # counted seconds since start

    def request(self, node: int, action: RelayAction) -> None:
        """The user's wish for a node: OPEN holds it open, CLOSE closes it when safe
        (needed when auto_close is off), NONE returns it to automatic."""
        if action is RelayAction.NONE:
            self._user.pop(node, None)
        else:
            self._user[node] = action

    def reset(self, node: int) -> None:
        """The user resets a tripped node: sent with the next step's request only."""
        self._resets.add(node)

    def step(self, snap: BatterySnapshot, stale_s: float, dt: float) -> tuple[RelayRequest, ...]:
        """Requests for every configured node; `stale_s` is how long the battery data has
        been stale (0 when fresh), `dt` the counted time since the last step."""
        cfg = self.settings
        self._uptime += dt
        resets, self._resets = self._resets, set()
        if stale_s > cfg.open_after_s:
            why = f"battery data stale for {stale_s:.0f} s"
            return tuple(
                RelayRequest(n, RelayAction.OPEN, n in resets, why) for n in sorted(snap.nodes)
            )
        decided: dict[int, tuple[RelayAction, str]] = {}
        ready: list[StringSnapshot] = []
        for string in snap.strings:
            blocker = self._blocker(snap, string, resets)
            # A node never heard since start has an infinite age: wait for the grace
            # period after start too, or a gateway restart would open loaded strings.
            # A silent node is one not present, which blocks its string: only a blocked
            # string can have one (most steps none is, and the nodes are not walked again).
            silent = (
                [
                    n
                    for n in string.nodes
                    if n in snap.nodes
                    and not snap.nodes[n].present
                    and min(snap.nodes[n].age, self._uptime) > cfg.open_after_s
                ]
                if blocker
                else []
            )
            if silent:
                why = f"node {silent[0]} silent, string {string.index} unwatched"
                for n in string.nodes:
                    decided[n] = (RelayAction.OPEN, why)
            elif blocker:
                for n in string.nodes:
                    forced = self._user.get(n) is RelayAction.OPEN
                    if forced:
                        decided[n] = (RelayAction.OPEN, "opened by the user")
                    else:
                        decided[n] = (RelayAction.NONE, blocker)
            else:
                ready.append(string)
        for string, why in self._admit(snap, ready):
            action = RelayAction.CLOSE if not why else RelayAction.NONE
            for n in string.nodes:
                decided[n] = (action, why)
        requests = []
        for n in sorted(snap.nodes):
            action, why = decided.get(n, (RelayAction.NONE, "not in a string"))
            requests.append(RelayRequest(n, action, n in resets, why))
        return tuple(requests)

    def _blocker(self, snap: BatterySnapshot, string: StringSnapshot, resets: set[int]) -> str:
        """Why the string may not close ("" when it may)."""
        for n in string.nodes:
            node = snap.nodes.get(n)
            if node is None or not node.present:
                return f"node {n} missing"
            if self._user.get(n) is RelayAction.OPEN:
                return f"node {n} opened by the user"
            if not self.settings.auto_close and self._user.get(n) is not RelayAction.CLOSE:
                return f"node {n} waits for a close request"
            why = _node_blocker(node, n in resets)
            if why:
                return why
        if not math.isfinite(string.voltage):
            return f"string {string.index} voltage unknown"
        return ""

    def _admit(
        self, snap: BatterySnapshot, ready: list[StringSnapshot]
    ) -> list[tuple[StringSnapshot, str]]:
        """Which ready strings close now: "" to close, else why they wait."""
        bus = [
            s.voltage
            for s in snap.strings
            if s.relay_closed and s.online and math.isfinite(s.voltage)
        ]
        if not ready:
            return []
        if bus:
            reference = sum(bus) / len(bus)
        else:
            # No bus yet: the string most others are within the window of closes first.
            reference = max(
                ready,
                key=lambda s: (sum(self._within(o.voltage, s.voltage) for o in ready), -s.index),
            ).voltage
        result = []
        for s in ready:
            if s.relay_closed or self._within(s.voltage, reference):
                result.append((s, ""))
            else:
                diff = s.voltage - reference
                result.append((s, f"string {s.index} {diff:+.2f} V from the bus, waiting"))
        return result

    def _within(self, voltage: float, reference: float) -> bool:
        cfg = self.settings
        window = min(cfg.parallel_window_v, cfg.parallel_window_fraction * abs(reference))
        return abs(voltage - reference) <= window


def _node_blocker(node: NodeSnapshot, reset: bool) -> str:
    if node.faults:
        return f"node {node.node} fault: {', '.join(sorted(node.faults))}"
    if node.state is NodeState.TRIPPED:
        if not node.trip_cleared:
            return f"node {node.node} tripped"
        if not reset:
            return f"node {node.node} tripped, waiting for a reset"
    elif node.state not in (NodeState.STANDBY, NodeState.ACTIVE):
        return f"node {node.node} {node.state.name.lower()}"
    return ""

"""Frame routing for the battery bus: id -> decoder -> model, with counters.

Every frame is counted. Frames that are not node frames of dbc/moat_bms.dbc from a
configured node (29-bit or remote frames, unknown ids, unconfigured nodes, another
gateway's commands) are counted as unknown; node frames with the wrong length or
undecodable content as malformed. Both are logged once per id per minute, never raised.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from gateway.codec import moat_bms as codec
from gateway.contracts.frame import Frame
from gateway.record.counters import BusCounters, RateLimitedLog
from gateway.sources.moat_nodes.model import BatteryModel

log = logging.getLogger(__name__)

NODE_BITS = 0x00F
BASE_MASK = 0x7F0

Handler = Callable[[int, Any, float], bool]


class BatteryIngest:
    """Routes battery-bus frames into the model."""

    def __init__(self, model: BatteryModel, counters: BusCounters, log_interval: float = 60.0):
        self.model = model
        self.counters = counters
        self.log = RateLimitedLog(log, log_interval)
        handlers: dict[str, Handler] = {
            "NodeState": model.on_node_state,
            "PackStatus": model.on_pack_status,
            "CellExtremes": model.on_cell_extremes,
            "TemperatureExtremes": model.on_temperature_extremes,
            "CellVoltages": model.on_cell_voltages,
            "CellTemperatures": model.on_cell_temperatures,
            "BalanceState": model.on_balance_state,
            "NodeInfo": model.on_node_info,
        }
        node_sent = {fid for fid, sender in codec.SENDERS.items() if sender == "Node"}
        if node_sent != {codec.FRAME_IDS[name] for name in handlers}:
            raise RuntimeError("every node frame of the DBC needs a handler")
        # Full frame id -> (length, decoder, handler, node) for every configured node:
        # one dictionary lookup per frame on the hot path.
        self.routes: dict[int, tuple[int, Callable[[bytes], Any], Handler, int]] = {}
        for name, handler in handlers.items():
            base = codec.FRAME_IDS[name]
            for node in model.nodes:
                self.routes[base | node] = (
                    codec.LENGTHS[base],
                    codec.DECODERS[base],
                    handler,
                    node,
                )

    def on_frame(self, frame: Frame, now: float) -> bool:
        """Handle one frame. True when it may change a decision at once (urgent)."""
        self.counters.received += 1  # the other counters only on the rare paths below
        frame_id, data, extended, remote, error = frame  # one unpack, not five lookups
        if error:
            self.counters.errors += 1
            self.log.warning(("error",), now, "battery bus: error frame")
            return False
        # Not an error frame (above): plain unless extended or remote (Frame.plain, inline).
        route = None if extended or remote else self.routes.get(frame_id)
        if route is None:
            self._unknown(frame_id, now, extended, remote)
            return False
        length, decode, handler, node = route
        if len(data) != length:
            self.counters.malformed += 1
            self.log.warning(
                ("length", frame_id),
                now,
                "battery bus: frame 0x%03X has %d bytes, expected %d (dropped)",
                frame_id,
                len(data),
                length,
            )
            return False
        try:
            message = decode(data)
        except codec.DecodeError as exc:
            self.counters.malformed += 1
            self.log.warning(
                ("decode", frame_id), now, "battery bus: frame 0x%03X: %s (dropped)", frame_id, exc
            )
            return False
        return handler(node, message, now)

    def _unknown(self, frame_id: int, now: float, extended: bool, remote: bool) -> None:
        self.counters.count_unknown(frame_id)
        base, node = frame_id & BASE_MASK, frame_id & NODE_BITS
        if extended:
            why = "29-bit identifier"
        elif remote:
            why = "remote frame"
        elif codec.SENDERS.get(base) == "Node":
            why = f"node {node} is not configured"
        elif codec.SENDERS.get(base) == "Gateway":
            why = "a gateway command from another sender: is a second gateway on the bus?"
        else:
            why = "not in dbc/moat_bms.dbc"
        self.log.warning(
            ("unknown", frame_id, extended),
            now,
            "battery bus: ignoring frame 0x%03X (%s)",
            frame_id,
            why,
        )

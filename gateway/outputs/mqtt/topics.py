"""The topic tree of one gateway (docs/mqtt.md lists it).

    PREFIX/SYSTEM_ID/status           online / offline, retained (offline is the last will)
    PREFIX/SYSTEM_ID/info             the gateway: name, version, nodes, retained
    PREFIX/SYSTEM_ID/state            the battery, JSON, retained
    PREFIX/SYSTEM_ID/node/N           node N with its cells, JSON, retained
    PREFIX/SYSTEM_ID/event            one event, JSON, not retained
    PREFIX/SYSTEM_ID/command          commands in (only when enabled), not retained
    PREFIX/SYSTEM_ID/command/reply    their answers, not retained
    DISCOVERY/COMPONENT/SYSTEM_ID/OBJECT_ID/config   Home Assistant discovery, retained

Every gateway of a fleet has its own SYSTEM_ID level, so gateways on one broker never share a
topic and one ACL pattern (PREFIX/%u/#) confines each to its own.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Topics:
    prefix: str
    system_id: str
    discovery_prefix: str = "homeassistant"

    @property
    def base(self) -> str:
        return f"{self.prefix}/{self.system_id}"

    @property
    def status(self) -> str:
        return f"{self.base}/status"

    @property
    def info(self) -> str:
        return f"{self.base}/info"

    @property
    def state(self) -> str:
        return f"{self.base}/state"

    @property
    def event(self) -> str:
        return f"{self.base}/event"

    @property
    def command(self) -> str:
        return f"{self.base}/command"

    @property
    def reply(self) -> str:
        return f"{self.base}/command/reply"

    @property
    def sync(self) -> str:
        """Where the client sends itself a marker: once it is back, every retained message
        of an earlier subscription has arrived (a broker delivers in order)."""
        return f"{self.base}/sync"

    def node(self, node: int) -> str:
        return f"{self.base}/node/{node}"

    def discovery(self, component: str, object_id: str) -> str:
        return f"{self.discovery_prefix}/{component}/{self.system_id}/{object_id}/config"

    @property
    def discovery_filter(self) -> str:
        """Every discovery config of this gateway (a subscription filter)."""
        return f"{self.discovery_prefix}/+/{self.system_id}/+/config"

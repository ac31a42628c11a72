"""An in-memory python-can bus for long simulations.

python-can's virtual bus deep-copies every message for every receiver; with four nodes that
copying is most of a simulated step. This bus hands the same Message object to every other
bus on its channel (nothing in the simulator changes a received message) and otherwise
behaves like the virtual bus: frames go to every other bus on the channel, in order, never
back to the sender.
"""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import Iterator
from typing import Any
from unittest import mock

import can

_CHANNELS: dict[str, list[MemoryBus]] = {}


class MemoryBus(can.BusABC):
    """python-can bus in memory; see the module docstring."""

    def __init__(self, channel: str = "memory", **kwargs: Any) -> None:
        self.channel_info = f"memory {channel}"
        self._channel = str(channel)
        self._queue: deque[can.Message] = deque()
        super().__init__(channel=channel)
        _CHANNELS.setdefault(self._channel, []).append(self)

    def send(self, msg: can.Message, timeout: float | None = None) -> None:
        for bus in _CHANNELS.get(self._channel, ()):
            if bus is not self:
                bus._queue.append(msg)

    def recv(self, timeout: float | None = None) -> can.Message | None:
        queue = self._queue
        return queue.popleft() if queue else None

    def _recv_internal(self, timeout: float | None) -> tuple[can.Message | None, bool]:
        return self.recv(timeout), False

    def shutdown(self) -> None:
        peers = _CHANNELS.get(self._channel)
        if peers is not None and self in peers:
            peers.remove(self)
            if not peers:
                del _CHANNELS[self._channel]
        self._queue.clear()
        super().shutdown()


@contextlib.contextmanager
def memory_buses() -> Iterator[None]:
    """Within the block, can.Bus(...) makes MemoryBus objects (the simulator's buses)."""
    with mock.patch.object(can, "Bus", MemoryBus):
        yield

"""An in-process python-can bus for long simulations on one thread.

python-can's virtual bus is the simulator's default and the one `make demo` runs. It is
built for threads: every frame goes through a locked queue.Queue and is copied with
copy.deepcopy for every receiver. A simulated week sends about twelve million frames and
that machinery is then almost half of the simulator's time. This bus keeps the virtual
bus's semantics and drops the machinery:

- a frame reaches every other bus on the same channel, in send order, never its sender;
- every receiver gets its own Message (channel set to the channel, is_rx True), so a
  receiver that changes one (the log writer stamps it) does not change another's;
- python-can's software filters apply (a frame they drop is skipped, where the
  virtual bus's recv(0) returns None for it and the next call gets the frame behind);
- a receiver may name the frames it keeps (`accept`, a controller's acceptance filter):
  the others are not queued for it at all. A simulated node's backend filters what it
  receives in software and drops the rest; with `accept` set to the same test, three of
  four frames on a busy battery bus are never copied for a node that would drop them.

It has no locks: every bus of a channel must be used from one thread, which is how
SimSystem runs. tests/sim/test_membus.py runs a scenario on both buses and requires the
same run, frame by frame.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

import can

_CHANNELS: dict[str, list[MemoryBus]] = {}


class MemoryBus(can.BusABC):
    """One node's connection to an in-memory channel; see the module docstring."""

    def __init__(self, channel: str = "memory", **kwargs: Any) -> None:
        self.channel_info = f"memory channel {channel}"
        self._channel = str(channel)
        self._queue: deque[can.Message] = deque()
        # (arbitration id, extended) -> whether this receiver keeps the frame; None: all.
        self.accept: Callable[[int, bool], bool] | None = None
        super().__init__(channel=channel, **kwargs)
        _CHANNELS.setdefault(self._channel, []).append(self)

    def send(self, msg: can.Message, timeout: float | None = None) -> None:
        if self._is_shutdown:
            raise can.CanOperationError("cannot send on a closed bus")
        for bus in _CHANNELS[self._channel]:
            if bus is not self and (
                bus.accept is None or bus.accept(msg.arbitration_id, msg.is_extended_id)
            ):
                bus._queue.append(
                    can.Message(
                        timestamp=msg.timestamp,
                        arbitration_id=msg.arbitration_id,
                        is_extended_id=msg.is_extended_id,
                        is_remote_frame=msg.is_remote_frame,
                        is_error_frame=msg.is_error_frame,
                        channel=self._channel,
                        dlc=msg.dlc,
                        data=bytes(msg.data),
                        is_fd=msg.is_fd,
                        is_rx=True,
                        bitrate_switch=msg.bitrate_switch,
                        error_state_indicator=msg.error_state_indicator,
                        check=False,
                    )
                )

    def send_frame(self, can_id: int, data: bytes, extended: bool, remote: bool = False) -> None:
        """send() of the Message these fields make (timestamp 0, dlc the data's length),
        without building it first: every receiver gets its own, as from send()."""
        if self._is_shutdown:
            raise can.CanOperationError("cannot send on a closed bus")
        for bus in _CHANNELS[self._channel]:
            if bus is not self and (bus.accept is None or bus.accept(can_id, extended)):
                bus._queue.append(
                    can.Message(
                        arbitration_id=can_id,
                        is_extended_id=extended,
                        is_remote_frame=remote,
                        channel=self._channel,
                        dlc=len(data),
                        data=data,
                        is_rx=True,
                        check=False,
                    )
                )

    def recv(self, timeout: float | None = None) -> can.Message | None:
        """The next frame that passes the filters, or None at once: nothing can arrive
        while the one thread waits, so a timeout never waits."""
        queue = self._queue
        while queue:
            msg = queue.popleft()
            if self._filters is None or self._matches_filters(msg):
                return msg
        return None

    def shutdown(self) -> None:
        peers = _CHANNELS.get(self._channel)
        if peers is not None and self in peers:
            peers.remove(self)
            if not peers:
                del _CHANNELS[self._channel]
        self._queue.clear()
        super().shutdown()

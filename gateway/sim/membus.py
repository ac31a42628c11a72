"""An in-process python-can bus for simulations on one thread, and a bridge that joins such
a channel to python-can's virtual bus.

python-can's virtual bus is built for threads: every frame goes through a locked
queue.Queue and is copied with copy.deepcopy for every receiver. On one thread that
machinery costs more than the simulated system itself. This bus keeps the virtual bus's
semantics and drops the machinery:

- a frame reaches every other bus on the same channel, in send order, never its sender;
- recv() gives every receiver its own Message (channel set to the channel, is_rx True), so
  a receiver that changes one (the log writer stamps it) does not change another's;
- python-can's software filters apply (a frame they drop is skipped, where the
  virtual bus's recv(0) returns None for it and the next call gets the frame behind);
- a receiver may name the frames it keeps (`accept`, a controller's acceptance filter):
  the others are not queued for it at all. A simulated node's backend filters what it
  receives in software and drops the rest; with `accept` set to the same test, three of
  four frames on a busy battery bus are never queued for a node that would drop them.

What waits in a queue is the gateway's immutable Frame, one object for every receiver, and
a Message is made only when recv() asks for one: the simulator's own parts take the Frames
(`frames()`, `send_frames()`) and no Message is made at all. Which receivers take which
identifier is worked out once per sender and identifier, not per frame.

It has no locks: every bus of a channel must be used from one thread, which is how
SimSystem runs. tests/sim/test_membus.py runs a scenario on both buses and requires the
same run, frame by frame.
"""

from __future__ import annotations

import copy
from collections import deque
from collections.abc import Callable, Iterable
from itertools import repeat
from typing import Any, cast

import can
from can.interfaces.virtual import VirtualBus

from gateway.contracts.frame import Frame
from gateway.runtime.canport import frame_of

# What a bus does with a frame for it: queue it (a deque's append) or pass it on (a bridge).
Deliver = Callable[[Frame | can.Message], None]
# The receivers of one frame identifier (id, extended) from one sender, in channel order.
Route = tuple[Deliver, ...]

_CHANNELS: dict[str, list[MemoryBus]] = {}


def _changed(channel: str) -> None:
    """A bus joined or left the channel, or changed what it accepts: routes are stale."""
    for bus in _CHANNELS.get(channel, ()):
        bus._routes.clear()


class MemoryBus(can.BusABC):
    """One node's connection to an in-memory channel; see the module docstring."""

    def __init__(self, channel: str = "memory", **kwargs: Any) -> None:
        self.channel_info = f"memory channel {channel}"
        self._channel = str(channel)
        self._queue: deque[Frame | can.Message] = deque()
        self._deliver: Deliver = self._queue.append
        self._accept: Callable[[int, bool], bool] | None = None
        self._routes: dict[tuple[int, bool], Route] = {}
        super().__init__(channel=channel, **kwargs)
        _CHANNELS.setdefault(self._channel, []).append(self)
        _changed(self._channel)

    @property
    def accept(self) -> Callable[[int, bool], bool] | None:
        """(arbitration id, extended) -> whether this receiver keeps the frame; None: all."""
        return self._accept

    @accept.setter
    def accept(self, test: Callable[[int, bool], bool] | None) -> None:
        self._accept = test
        _changed(self._channel)

    def keep_only(self, test: Callable[[int, bool], bool]) -> None:
        """Drop the frames waiting that `test` rejects (a controller whose filters change
        while frames wait: its software would drop them when read)."""
        queue = self._queue
        kept = [
            item
            for item in queue
            if test(
                *(
                    (item.id, item.extended)
                    if isinstance(item, Frame)
                    else (item.arbitration_id, item.is_extended_id)
                )
            )
        ]
        queue.clear()
        queue.extend(kept)

    def _route(self, key: tuple[int, bool]) -> Route:
        """Who takes a frame of this identifier from this bus (cached until the channel
        changes: a bus carries few identifiers)."""
        route = tuple(
            bus._deliver
            for bus in _CHANNELS[self._channel]
            if bus is not self and (bus._accept is None or bus._accept(*key))
        )
        self._routes[key] = route
        return route

    def send(self, msg: can.Message, timeout: float | None = None) -> None:
        """Every receiver gets its own copy of the Message, with all its fields."""
        if self._is_shutdown:
            raise can.CanOperationError("cannot send on a closed bus")
        key = (msg.arbitration_id, msg.is_extended_id)
        for deliver in self._routes.get(key) or self._route(key):
            twin = copy.copy(msg)
            twin.channel = self._channel
            twin.is_rx = True
            twin.data = bytearray(msg.data)
            deliver(twin)

    def send_frame(self, can_id: int, data: bytes, extended: bool, remote: bool = False) -> None:
        """send() of the Message these fields make (timestamp 0, dlc the data's length),
        without building it: every receiver gets its own Message from recv()."""
        self.send_one(Frame(can_id, bytes(data), extended, remote))

    def send_frames(self, frames: Iterable[Frame]) -> None:
        """Frames onto the channel, in order, each shared by its receivers (it is immutable)."""
        if self._is_shutdown:
            raise can.CanOperationError("cannot send on a closed bus")
        routes = self._routes
        for frame in frames:
            key = (frame.id, frame.extended)
            for deliver in routes.get(key) or self._route(key):
                deliver(frame)

    def send_one(self, frame: Frame) -> None:
        """send_frames((frame,)) without the loop: a node sends its frames one at a time."""
        if self._is_shutdown:
            raise can.CanOperationError("cannot send on a closed bus")
        key = (frame.id, frame.extended)
        for deliver in self._routes.get(key) or self._route(key):
            deliver(frame)

    def recv(self, timeout: float | None = None) -> can.Message | None:
        """The next frame that passes the filters, or None at once: nothing can arrive
        while the one thread waits, so a timeout never waits."""
        queue = self._queue
        while queue:
            item = queue.popleft()
            msg = item if isinstance(item, can.Message) else self._message(item)
            if self._filters is None or self._matches_filters(msg):
                return msg
        return None

    def frames(self) -> list[Frame]:
        """Every frame waiting that passes the filters, oldest first, as Frames (what recv()
        would give one by one, without a Message each)."""
        queue = self._queue
        if not queue:
            return []
        if self._filters is not None:
            return [frame_of(msg) for msg in iter(self.recv, None)]
        items = list(queue)
        queue.clear()
        # Queued Messages (a sender on python-can's API) are rare: a test in C finds them.
        if any(map(isinstance, items, repeat(can.Message))):
            return [item if isinstance(item, Frame) else frame_of(item) for item in items]
        return cast(list[Frame], items)

    def next_frame(self) -> Frame | None:
        """The next frame that passes the filters as a Frame, or None."""
        queue = self._queue
        if not queue:
            return None
        if self._filters is not None:
            msg = self.recv()
            return None if msg is None else frame_of(msg)
        item = queue.popleft()
        return item if isinstance(item, Frame) else frame_of(item)

    def _message(self, frame: Frame) -> can.Message:
        return can.Message(
            arbitration_id=frame.id,
            is_extended_id=frame.extended,
            is_remote_frame=frame.remote,
            is_error_frame=frame.error,
            channel=self._channel,
            dlc=len(frame.data),
            data=frame.data,
            is_rx=True,
            check=False,
        )

    def shutdown(self) -> None:
        peers = _CHANNELS.get(self._channel)
        if peers is not None and self in peers:
            peers.remove(self)
            if not peers:
                del _CHANNELS[self._channel]
            _changed(self._channel)
        self._queue.clear()
        super().shutdown()


class Bridge:
    """An in-memory channel joined to another python-can bus (a virtual bus's channel).

    Every frame sent on the memory channel goes out on `bus` at once, so the far side
    receives the frames of both sides in the order they were sent; `pump()` puts what `bus`
    received onto the memory channel, and must run before anything on the memory side reads
    (SimSystem pumps before the nodes step, the only time they read).

    The simulator puts its nodes on such a channel when it runs on the virtual bus: a node
    frame then crosses the virtual bus once, to the gateway, instead of once for every node
    on the bus (which the nodes' filters dropped); node-to-node frames stay on the channel.
    """

    def __init__(self, channel: str, bus: can.BusABC) -> None:
        self.bus = bus
        self.endpoint = MemoryBus(channel)
        self.endpoint._deliver = self._forward

    def _forward(self, item: Frame | can.Message) -> None:
        if isinstance(item, Frame):
            item = CopyCheapMessage(
                arbitration_id=item.id,
                data=item.data,
                is_extended_id=item.extended,
                is_remote_frame=item.remote,
                is_error_frame=item.error,
                dlc=len(item.data),
            )
        self.bus.send(item)

    def pump(self) -> None:
        """What the far side sent since the last pump, onto the memory channel."""
        frames = received(self.bus)
        if frames:
            self.endpoint.send_frames(frames)

    def shutdown(self) -> None:
        self.endpoint.shutdown()
        self.bus.shutdown()


class CopyCheapMessage(can.Message):
    """A Message that python-can's virtual bus copies for each receiver at the cost of one
    Message: can.Message.__deepcopy__ deep-copies its bytearray through copy's generic
    reduce machinery, several times the cost of the Message itself. The copy is a plain
    Message with every field of this one and data of its own, as deepcopy gives."""

    __slots__ = ()

    def __deepcopy__(self, memo: dict[int, Any] | None) -> can.Message:
        return can.Message(
            self.timestamp,
            self.arbitration_id,
            self.is_extended_id,
            self.is_remote_frame,
            self.is_error_frame,
            self.channel,  # a str or an int: immutable, as deepcopy would keep it
            self.dlc,
            bytearray(self.data),
            self.is_fd,
            self.is_rx,
            self.bitrate_switch,
            self.error_state_indicator,
        )


def received(bus: can.BusABC) -> list[Frame]:
    """Every frame waiting on a bus, oldest first, as Frames.

    The in-memory bus gives its Frames. python-can's virtual bus is emptied straight from
    its queue (a public attribute) when no software filter is set: BusABC.recv(0) per frame
    costs a clock read, a logging call and a timed wait on the queue's lock each, and on
    an empty queue an exception. Any other bus (a test's wrapper) is read with recv(0)."""
    if isinstance(bus, MemoryBus):
        return bus.frames()
    if type(bus) is VirtualBus and bus.filters is None:
        queue = bus.queue  # one thread: what is there now is all there is
        return [frame_of(queue.get_nowait()) for _ in range(queue.qsize())]
    return [frame_of(msg) for msg in iter(lambda: bus.recv(0), None)]

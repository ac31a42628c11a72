"""What the serial BMS protocols share, without I/O: a stream framer (bytes in, complete
verified frames out) and a poll (the requests of one complete reading and the frames that
answer them).

A serial line delivers bytes, not frames: an answer may come in pieces, after line noise or an
echo, or with a corrupted checksum. The framer keeps what it has not used, skips bytes that
cannot start a frame (counted), waits for the rest of a frame it has the start of, and drops
a frame whose checksum is wrong (counted) by skipping its first byte only: a false start in
noise must not swallow the real frame behind it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from gateway.sources.packs.reading import PackError, PackReading

MAX_BUFFER = 4096  # more unframed bytes than any answer: the line is noise, keep the tail


class Framer:
    """Frames of one protocol out of a byte stream. Subclasses give the start bytes, the
    length of a frame from its first bytes and the checksum test."""

    START: bytes = b""  # a frame's first byte(s)

    def __init__(self) -> None:
        self._buf = bytearray()
        self.skipped = 0  # bytes dropped that could not start a frame
        self.bad = 0  # frames dropped for a wrong checksum or end byte

    @property
    def pending(self) -> int:
        """Bytes held back: the start of a frame whose rest has not come."""
        return len(self._buf)

    def clear(self) -> None:
        """Forget held bytes (before a new request on a half-duplex line)."""
        self._buf.clear()

    def feed(self, data: bytes) -> list[bytes]:
        """Add received bytes; return the complete frames with a good checksum, in order."""
        self._buf += data
        frames: list[bytes] = []
        buf = self._buf
        while buf:
            start = buf.find(self.START[:1])
            if start < 0:
                self.skipped += len(buf)
                buf.clear()
                break
            if start:
                self.skipped += start
                del buf[:start]
            if len(buf) < len(self.START):
                break
            size = self.size(buf) if buf.startswith(self.START) else -1
            if size < 0:  # not a frame start after all
                self.skipped += 1
                del buf[:1]
                continue
            if size == 0 or len(buf) < size:
                break  # wait for the rest
            frame = bytes(buf[:size])
            if self.verify(frame):
                frames.append(frame)
                del buf[:size]
            else:
                self.bad += 1
                del buf[:1]
        if len(buf) > MAX_BUFFER:
            self.skipped += len(buf) - MAX_BUFFER
            del buf[: len(buf) - MAX_BUFFER]
        return frames

    def size(self, buf: bytearray) -> int:
        """Length of the frame starting at buf[0]: 0 if more bytes are needed to tell, -1 if
        buf[0] cannot start a frame of this protocol."""
        raise NotImplementedError

    def verify(self, frame: bytes) -> bool:
        """The frame's checksum (and end byte) are right."""
        raise NotImplementedError


class Poll:
    """One complete reading as a conversation: requests in order, each answered by the
    frames `expect` says, checked by `check`; `finish` turns the answers into a reading.

    Sans I/O: the link asks request(), sends it, and hands each verified frame to take()
    until request() returns None; then result()."""

    def __init__(self, requests: Sequence[bytes]) -> None:
        self.requests = list(requests)
        self.answers: list[list[bytes]] = [[] for _ in self.requests]
        self._step = 0

    def request(self) -> bytes | None:
        """The request to send now, or None when every answer is in."""
        while self._step < len(self.requests) and len(self.answers[self._step]) >= self.expect(
            self._step
        ):
            self._step += 1
        return self.requests[self._step] if self._step < len(self.requests) else None

    def waiting(self) -> bool:
        """The current request still expects frames."""
        return self._step < len(self.requests) and len(self.answers[self._step]) < self.expect(
            self._step
        )

    def take(self, frame: bytes) -> bool:
        """Accept a verified frame as (part of) the answer to the current request. Returns
        False for a frame that answers something else (a late answer to an earlier request
        on a shared line: skipped); raises PackError for an answer that reports an error."""
        if not self.check(self._step, frame):
            return False
        self.answers[self._step].append(frame)
        return True

    def expect(self, step: int) -> int:
        """Frames that answer request `step` (may depend on earlier answers)."""
        return 1

    def check(self, step: int, frame: bytes) -> bool:
        raise NotImplementedError

    def result(self) -> PackReading:
        raise NotImplementedError


class PackProtocol(Protocol):
    """One BMS family's protocol, as the link drives it."""

    family: str
    can_switch: bool

    def framer(self) -> Framer: ...

    def poll(self) -> Poll:
        """The conversation of one complete reading."""
        ...

    def switch_poll(self, charge: bool, discharge: bool) -> Poll:
        """The conversation that sets both MOSFETs (acknowledged writes); PackError if the
        BMS has no such command."""
        ...


def bits(value: int, names: Sequence[str | None]) -> frozenset[str]:
    """The names of the bits set in value (bit 0 first); None marks a reserved bit."""
    return frozenset(name for i, name in enumerate(names) if name and value >> i & 1)


def need(data: bytes, size: int, what: str) -> None:
    """PackError unless data holds at least size bytes."""
    if len(data) < size:
        raise PackError(f"{what}: {len(data)} bytes, expected at least {size}")


def u16(data: bytes | bytearray, i: int) -> int:
    """The big-endian 16-bit value at data[i]."""
    return int.from_bytes(data[i : i + 2], "big")

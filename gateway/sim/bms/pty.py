"""An emulated BMS behind a serial port: a thread answers on the master side of an os.openpty
pair; the gateway opens the other side through pyserial by its /dev/pts path, as it would a
USB adapter.

Faults, injected for the next answers (inject(fault, times)):
  garbage       noise bytes before the answer
  split         the answer in two writes with a pause between
  truncated     only the first half of the answer, the rest never comes
  bad_checksum  the answer's (last) checksum byte wrong
  silence       no answer at all
send(data) puts bytes on the line outside any answer. The port itself: close_port() closes
the pair (the /dev/pts node goes away and the reader sees a hang-up, as when a USB adapter is
pulled), reopen_port() opens a new pair. A new pair
may get another /dev/pts number: pass `link` to keep a stable symbolic link to the current
one (like /dev/serial/by-id/...), re-pointed on reopen.
"""

from __future__ import annotations

import enum
import os
import select
import threading
import tty
from collections import deque
from pathlib import Path

from gateway.sim.bms.pack import Emulator

GARBAGE = b"\x00\xff\x13\x37garbage\r\n\x10\x7f"  # no start byte of any emulated protocol
POLL = 0.02  # s: how often the thread looks at its stop flag while idle
SPLIT_PAUSE = 0.02  # s between the two halves of a split answer


class Fault(enum.Enum):
    GARBAGE = "garbage"
    SPLIT = "split"
    TRUNCATED = "truncated"
    BAD_CHECKSUM = "bad_checksum"
    SILENCE = "silence"


class PtyServer:
    """Serves `emulator` on a pseudo-terminal pair, in a thread, until stop()."""

    def __init__(self, emulator: Emulator, *, link: str | Path | None = None) -> None:
        self.emulator = emulator
        self.link = Path(link) if link is not None else None
        self.requests = 0  # complete requests received
        self.answered = 0  # answers written (faulty ones included)
        self._faults: deque[Fault] = deque()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._master = -1
        self._slave = -1
        self._path = ""
        self._thread: threading.Thread | None = None
        self._open_pair()

    @property
    def path(self) -> str:
        """The current /dev/pts path of the side the gateway opens."""
        return self._path

    @property
    def port(self) -> str:
        """What to open: the stable link if there is one, else the /dev/pts path."""
        return str(self.link) if self.link is not None else self._path

    def start(self) -> PtyServer:
        self._thread = threading.Thread(target=self._serve, name=f"bms-pty {self._path}")
        self._thread.daemon = True
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        with self._lock:
            self._close_pair()
        if self.link is not None:
            self.link.unlink(missing_ok=True)

    def __enter__(self) -> PtyServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def inject(self, fault: Fault | str, times: int = 1) -> None:
        """Apply `fault` to the next `times` answers."""
        with self._lock:
            self._faults.extend([Fault(fault)] * times)

    def send(self, data: bytes) -> None:
        """Bytes on the line outside any answer (a late answer, another device, noise): in the
        reader's input queue when this returns."""
        with self._lock:
            os.write(self._master, data)

    def close_port(self) -> None:
        """The adapter disappears: both sides of the pair are closed."""
        with self._lock:
            self._close_pair()
        if self.link is not None:
            self.link.unlink(missing_ok=True)

    def reopen_port(self) -> str:
        """The adapter comes back (a new pair); returns the new /dev/pts path."""
        with self._lock:
            self._close_pair()
            self._open_pair()
        return self._path

    # -- thread side

    def _open_pair(self) -> None:
        self._master, self._slave = os.openpty()
        # Raw, no echo: the line discipline must pass bytes as they are until pyserial
        # configures its side (it keeps the slave raw as well).
        tty.setraw(self._slave)
        self._path = os.ttyname(self._slave)
        if self.link is not None:
            tmp = self.link.with_name(self.link.name + ".new")
            tmp.unlink(missing_ok=True)
            tmp.symlink_to(self._path)
            tmp.replace(self.link)

    def _close_pair(self) -> None:
        for fd in (self._master, self._slave):
            if fd >= 0:
                os.close(fd)
        self._master = self._slave = -1

    def _serve(self) -> None:
        buf = bytearray()
        while not self._stop.is_set():
            master = self._master
            if master < 0:
                self._stop.wait(POLL)
                continue
            try:
                ready, _, _ = select.select([master], [], [], POLL)
                if not ready:
                    continue
                data = os.read(master, 4096)
            except OSError:  # the pair was closed under us (close_port)
                buf.clear()
                continue
            buf += data
            for request in self.emulator.split(buf):
                self.requests += 1
                self._answer(master, self.emulator.respond(request))

    def _answer(self, master: int, answer: bytes) -> None:
        if not answer:
            return
        with self._lock:
            fault = self._faults.popleft() if self._faults else None
        at = len(answer) - self.emulator.CHECKSUM_FROM_END
        try:
            if fault is Fault.SILENCE:
                return
            if fault is Fault.GARBAGE:
                answer = GARBAGE + answer
            elif fault is Fault.BAD_CHECKSUM:
                answer = answer[:at] + bytes((answer[at] ^ 0x5A,)) + answer[at + 1 :]
            elif fault is Fault.TRUNCATED:
                answer = answer[: len(answer) // 2]
            if fault is Fault.SPLIT:
                half = len(answer) // 2
                os.write(master, answer[:half])
                self._stop.wait(SPLIT_PAUSE)
                answer = answer[half:]
            os.write(master, answer)
            self.answered += 1
        except OSError:
            pass  # closed while answering: the reader sees the port go

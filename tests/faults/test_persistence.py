"""The state file under crashes and a full disk.

A real gateway process writing its state in a loop is SIGKILLed at random moments, over and
over: after every kill the file loads, holds the last state the process reported saved (or
the one it was writing), and no temporary file survives the next start. A full disk makes
saves fail: the gateway logs it, shows an event, keeps running and saves again once there is
room.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import pytest

from gateway.config.root import validate
from gateway.core import GatewayCore
from gateway.record.events import EventKind
from gateway.record.persist import StateStore
from gateway.runtime.service import Gateway
from tests.common import ROOT

KILLS = 30

# The child: the real GatewayCore's state (handed over as JSON) plus a sequence number,
# saved with the gateway's StateStore as fast as it can; "saved N" once save() has returned
# (the state is then on disk). It imports only what saving needs, to start quickly.
CHILD = """
import json, sys
from pathlib import Path
from gateway.record.persist import StateStore

store = StateStore(Path(sys.argv[1]))
loaded = store.load() or {}
state = json.loads(sys.argv[2])
state["padding"] = ["x" * 64] * 2000  # about 140 kB: a kill often lands mid-write
seq = loaded.get("seq", 0)  # carries on from what the last run saved
while True:
    seq += 1
    state["seq"] = seq
    if not store.save(state):
        sys.exit(3)
    sys.stdout.write(f"saved {seq}\\n")
    sys.stdout.flush()
"""


def test_sigkill_while_writing_never_leaves_an_unreadable_state(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    rng = random.Random(8)
    core_state = json.dumps(GatewayCore(validate({}), 1.0e9).persistent_state())
    last_seq = 0
    leftovers_seen = 0
    for _ in range(KILLS):
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(path), core_state],
            stdout=subprocess.PIPE,
            env=env,
            text=True,
        )
        assert child.stdout is not None
        # The first save done: from here on any instant is a fair place to kill it.
        first = child.stdout.readline()
        assert first.startswith("saved"), first
        time.sleep(rng.uniform(0, 0.03))  # where the kill lands, not a timing assertion
        child.send_signal(signal.SIGKILL)
        rest = child.stdout.read()
        child.wait()
        assert child.returncode == -signal.SIGKILL
        reported = [int(line.split()[1]) for line in (first + rest).splitlines() if line]
        leftovers_seen += len(list(tmp_path.glob(".state.json.*")))

        state = StateStore(path).load()
        assert state is not None, "the state file did not load after SIGKILL"
        # Durable: everything reported saved is on disk; at most the one in flight is newer.
        assert reported[-1] <= state["seq"] <= reported[-1] + 1
        assert state["seq"] > last_seq  # each run carried on from the previous one's state
        last_seq = state["seq"]
        assert {"soc", "strategy", "version"} <= state.keys()
        assert not list(tmp_path.glob("*.bad-*")), "a state file was found unusable"
        assert not list(tmp_path.glob(".state.json.*")), "load() left a temporary file"
    print(f"{KILLS} SIGKILLs, {leftovers_seen} of them mid-write (temporary file left)")


def test_leftover_temporary_files_are_removed_at_start(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    store = StateStore(path)
    assert store.save({"soc": {"soc": 42.0}})
    for name in (".state.json.abc123", ".state.json.zz"):
        (tmp_path / name).write_text('{"format": 1, "sta')  # cut short by a crash
    (tmp_path / ".other.json.abc").write_text("not ours")
    assert StateStore(path).load() == {"soc": {"soc": 42.0}}
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.json.abc", "state.json"]


# ------------------------------------------------------------------ full disk


def gateway(tmp_path: Path) -> Gateway:
    settings = validate(
        {
            "buses": {"battery": {"interface": "virtual", "channel": "full-disk"}},
            "persistence": {"state_file": str(tmp_path / "state.json"), "interval_s": 1.0},
            "web": {"enabled": False},
        }
    )
    return Gateway(settings, clock=lambda: 1.0e9)


class FullDisk:
    """os.fsync reporting ENOSPC (what ext4 does when delayed allocation finds no room)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.full = True
        real = os.fsync

        def fsync(fd: int) -> None:
            if self.full:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            real(fd)

        monkeypatch.setattr(os, "fsync", fsync)


@pytest.mark.anyio
async def test_full_disk_is_logged_shown_and_retried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    gw = gateway(tmp_path)
    assert await gw.save()
    before = (tmp_path / "state.json").read_text()
    disk = FullDisk(monkeypatch)
    gw.core.set_soc(77.0, 1.0e9)
    with caplog.at_level(logging.ERROR, "gateway.record.persist"):
        assert not await gw.save()
    assert "No space left on device" in caplog.text
    assert "will retry" in caplog.text
    assert (tmp_path / "state.json").read_text() == before  # the old state is intact
    assert not list(tmp_path.glob(".state.json.*"))  # and no half-written file is left
    events = [e for e in gw.core.events.since(0) if e.kind == EventKind.PERSIST]
    assert events and "No space left" in events[-1].message
    disk.full = False
    assert await gw.save()
    saved = StateStore(tmp_path / "state.json").load()
    assert saved is not None and saved["soc"]["soc"] == pytest.approx(77.0)


@pytest.mark.anyio
async def test_the_persist_loop_survives_failures_and_retries_every_interval(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Simulated time: anyio.sleep returns at once and counts; the store fails with a full
    disk, then with an unexpected error (a bug), then works again."""
    gw = gateway(tmp_path)
    outcomes: list[Any] = [OSError(errno.ENOSPC, "No space left on device")] * 3
    outcomes += [TypeError("not JSON serializable"), True, True]
    attempts: list[float] = []
    real_save = gw.store.save

    def save(state: dict[str, Any]) -> bool:
        outcome = outcomes[len(attempts)]
        attempts.append(sleeps[-1] if sleeps else 0.0)
        if isinstance(outcome, TypeError):
            raise outcome
        if isinstance(outcome, OSError):
            gw.store.failures += 1
            gw.store.last_error = str(outcome)
            return False
        return real_save(state)

    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        if len(sleeps) > len(outcomes):
            raise anyio.get_cancelled_exc_class()()
        await anyio.lowlevel.checkpoint()

    monkeypatch.setattr(gw.store, "save", save)
    monkeypatch.setattr(anyio, "sleep", sleep)
    with pytest.raises(anyio.get_cancelled_exc_class()):
        await gw.persist_loop()
    assert len(attempts) == len(outcomes)  # one attempt per interval, none skipped
    assert set(sleeps) == {gw.settings.persistence.interval_s}
    assert gw.store.failures == 4
    assert gw.store.writes == 2
    persist_events = [e for e in gw.core.events.since(0) if e.kind == EventKind.PERSIST]
    assert len(persist_events) == 4
    assert "TypeError" in persist_events[-1].message
    state = json.loads((tmp_path / "state.json").read_text())
    assert state["format"] == 1

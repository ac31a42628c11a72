"""Crash-safe state file: SoC, learned capacity, counters, the last full charge.

Written atomically: a temporary file in the same directory is written, flushed and fsynced,
then renamed over the old one and the directory is fsynced. A crash at any moment leaves
either the old or the new file, never a torn one. A file that cannot be read is moved aside
(never silently overwritten) and the gateway starts from defaults.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

FORMAT = 1  # bumped when the layout changes incompatibly
TMP_PREFIX = "."  # temporary files: .NAME.random, next to the state file


class StateStore:
    """Reads and writes one JSON state file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.writes = 0
        self.failures = 0
        self.last_error = ""

    def load(self) -> dict[str, Any] | None:
        """The saved state, or None when there is none or it is unreadable (moved aside).

        Temporary files left by a save that was cut short (power cut, SIGKILL) are removed:
        otherwise every crash during a write would leave one behind."""
        self._remove_leftovers()
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            log.error("cannot read state file %s: %s; starting from defaults", self.path, exc)
            return None
        try:
            # UnicodeDecodeError (binary garbage) is a ValueError; RecursionError (deeply
            # nested JSON) is not, and must not stop the gateway from starting either.
            try:
                data = json.loads(raw.decode("utf-8"))
            except RecursionError:
                raise ValueError("nested too deeply") from None
            if not isinstance(data, dict) or data.get("format") != FORMAT:
                raise ValueError(f"not a moat-bms state file of format {FORMAT}")
            state = data.get("state")
            if not isinstance(state, dict):
                raise ValueError("no state object")
        except ValueError as exc:
            aside = self.path.with_name(f"{self.path.name}.bad-{int(time.time())}")
            with contextlib.suppress(OSError):
                self.path.rename(aside)
            log.error(
                "state file %s is unusable (%s); kept as %s, starting from defaults",
                self.path,
                exc,
                aside,
            )
            return None
        return state

    def _remove_leftovers(self) -> None:
        directory = self.path.parent if str(self.path.parent) else Path(".")
        try:
            leftovers = list(directory.glob(f"{TMP_PREFIX}{self.path.name}.*"))
        except OSError:
            return
        for path in leftovers:
            with contextlib.suppress(OSError):
                if path.is_file() and not path.is_symlink():
                    path.unlink()
                    log.info("removed %s, left by an interrupted save", path)

    def save(self, state: dict[str, Any]) -> bool:
        """Write the state atomically. Logs and returns False on failure (disk full, read-only
        file system): the caller keeps running and tries again later."""
        directory = self.path.parent if str(self.path.parent) else Path(".")
        tmp = None
        try:
            # NaN or infinity in the state is a bug upstream: refuse rather than persist it.
            text = json.dumps(
                {"format": FORMAT, "saved_at": time.time(), "state": state},
                indent=1,
                sort_keys=True,
                allow_nan=False,
            )
            directory.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f"{TMP_PREFIX}{self.path.name}.", dir=directory)
            with os.fdopen(fd, "w", encoding="utf-8") as f:  # mkstemp creates it mode 0600
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
            tmp = None
            dir_fd = os.open(directory, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        except (OSError, ValueError) as exc:
            self.failures += 1
            self.last_error = str(exc)
            log.error("cannot write state file %s: %s (will retry)", self.path, exc)
            return False
        finally:
            if tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
        self.writes += 1
        self.last_error = ""
        return True

"""A private dbus-daemon for the tests: Debian's dbus-daemon with a config of our own.

`.ci/install-dbus` installs it (make test runs that). Without it the D-Bus tests are skipped,
saying why, unless MOAT_BMS_REQUIRE_SERVICES (.ci/run sets it) or CI is set: then a missing
daemon is a failure.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

DBUS_DAEMON = shutil.which("dbus-daemon")
DBUS_SEND = shutil.which("dbus-send")
START_TIMEOUT_S = 10.0

# CI must run these tests: there (MOAT_BMS_REQUIRE_SERVICES from .ci/run, or the CI variable
# CI services set) a missing daemon is an error, not a skip.
REQUIRED = bool(os.environ.get("MOAT_BMS_REQUIRE_SERVICES") or os.environ.get("CI"))
if (DBUS_DAEMON is None or DBUS_SEND is None) and REQUIRED:
    raise RuntimeError(
        "MOAT_BMS_REQUIRE_SERVICES or CI is set but dbus-daemon or dbus-send is missing "
        "(.ci/install-dbus installs them)"
    )

needs_dbus = pytest.mark.skipif(
    DBUS_DAEMON is None or DBUS_SEND is None,
    reason="needs dbus-daemon and dbus-send: run .ci/install-dbus (make test does)",
)

# A bus like the session bus, on a socket of our own: anyone may own any name and call
# anything (the system bus's policy is stricter; the service asks for nothing special).
CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"""


class DBusDaemon:
    """dbus-daemon in the foreground as a child process; restartable on the same socket."""

    def __init__(self, directory: Path) -> None:
        self.socket = directory / "bus"
        self.config = directory / "bus.conf"
        self.config.write_text(CONFIG.format(socket=self.socket))
        self.address = f"unix:path={self.socket}"
        self.process: subprocess.Popen[str] | None = None

    def start(self) -> None:
        assert DBUS_DAEMON is not None
        self.process = subprocess.Popen(
            [DBUS_DAEMON, f"--config-file={self.config}", "--nofork", "--print-address"],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        # The daemon prints its address once it listens.
        line = self.process.stdout.readline().strip()
        if not line.startswith("unix:"):
            self.stop()
            raise RuntimeError(f"dbus-daemon did not start (said {line!r})")

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(START_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None
        self.socket.unlink(missing_ok=True)

"""Commands over MQTT: only those that are safe to expose on a broker.

Accepted (only with `outputs.mqtt.commands: true`), on PREFIX/SYSTEM_ID/command as JSON:

    {"command": "full_charge", "id": "any"}        start a full charge (SoC reset, top balance)
    {"command": "balance", "id": "any"}            a balancing run: the strategy balances at
                                                   the top of the charge, so this is a full
                                                   charge with its absorption hold
    {"command": "set_name", "name": "Garage", "node": 2}   a display name (node optional)

Each is answered on PREFIX/SYSTEM_ID/command/reply (or the MQTT 5 response topic the request
names, with its correlation data): {"id", "command", "ok", "message"}. Closing relays,
resetting trips, setting the SoC or changing limits is never possible over MQTT: a broker
is shared infrastructure and its ACLs are not the gateway's API token. A retained command
is refused: it would run again at every reconnect.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any, Protocol

log = logging.getLogger(__name__)

COMMANDS = ("full_charge", "balance", "set_name")
MAX_COMMAND_BYTES = 1024
MAX_NAME = 64
MAX_ID = 128


class CommandTarget(Protocol):
    """What MQTT commands may do to the gateway. Each returns a message for the reply and
    raises ValueError (its text goes into the reply) when it cannot."""

    def request_full_charge(self) -> str: ...

    def request_balancing(self) -> str: ...


class NameStore:
    """Display names (the gateway's under key "gateway", nodes' under their id), kept in a
    small JSON file written atomically. A file that cannot be read is ignored (logged)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.gateway: str | None = None
        self.nodes: dict[int, str] = {}
        if path is not None:
            self._load(path)

    def _load(self, path: Path) -> None:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return
        except (OSError, ValueError) as exc:
            log.error("names file %s is unusable (%s): using the configured names", path, exc)
            return
        if not isinstance(data, dict):
            log.error("names file %s holds no mapping: using the configured names", path)
            return
        gateway = data.get("gateway")
        self.gateway = gateway if isinstance(gateway, str) else None
        nodes = data.get("nodes", {})
        if isinstance(nodes, dict):
            self.nodes = {
                int(k): v for k, v in nodes.items() if str(k).isdigit() and isinstance(v, str)
            }

    def data(self) -> dict[str, Any]:
        return {"gateway": self.gateway, "nodes": {str(k): v for k, v in self.nodes.items()}}

    def save(self) -> None:
        """Write atomically (temp file, fsync, rename). Raises OSError."""
        if self.path is None:
            return
        directory = self.path.parent
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=directory)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(self.data(), f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise


class Command:
    """A parsed command: name, the requester's id and arguments."""

    def __init__(self, name: str, ident: Any, args: dict[str, Any]) -> None:
        self.name = name
        self.ident = ident
        self.args = args


class CommandError(ValueError):
    """A command that is refused; ident is the requester's id when it could be read."""

    def __init__(self, message: str, ident: Any = None) -> None:
        super().__init__(message)
        self.ident = ident


def parse(payload: bytes, retained: bool) -> Command:
    """The command in a message; CommandError saying what is wrong."""
    if len(payload) > MAX_COMMAND_BYTES:
        raise CommandError(f"command larger than {MAX_COMMAND_BYTES} bytes")
    try:
        data = json.loads(payload)
    except ValueError:
        raise CommandError('not JSON: send {"command": "full_charge", "id": "..."}') from None
    if not isinstance(data, dict):
        raise CommandError("a command is a JSON object")
    ident = data.get("id")
    if ident is not None and (not isinstance(ident, str | int) or len(str(ident)) > MAX_ID):
        raise CommandError(f"id must be a string or integer of at most {MAX_ID} characters")
    if retained:
        raise CommandError(
            "retained commands are refused: they would run again at reconnect", ident
        )
    name = data.get("command")
    if name not in COMMANDS:
        raise CommandError(
            f"unknown command {name!r}: over MQTT only {', '.join(COMMANDS)} "
            "(relays and limits never)",
            ident,
        )
    allowed = {"command", "id"} | ({"name", "node"} if name == "set_name" else set())
    extra = sorted(set(data) - allowed)
    if extra:
        raise CommandError(f"{name}: unknown keys {', '.join(extra)}", ident)
    return Command(name, ident, {k: v for k, v in data.items() if k in ("name", "node")})


def execute(
    command: Command,
    target: CommandTarget,
    names: NameStore,
    nodes: frozenset[int],
) -> str:
    """Carry out a parsed command; the reply's message. ValueError when it cannot."""
    if command.name == "full_charge":
        return target.request_full_charge()
    if command.name == "balance":
        return target.request_balancing()
    name = command.args.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME:
        raise ValueError(f"set_name: name must be 1..{MAX_NAME} characters")
    if not name.isprintable():
        raise ValueError("set_name: name must be printable")
    node = command.args.get("node")
    if node is None:
        names.gateway = name.strip()
        return f"gateway named {names.gateway!r}"
    if not isinstance(node, int) or isinstance(node, bool) or node not in nodes:
        raise ValueError(f"set_name: node must be one of {sorted(nodes)}, got {node!r}")
    names.nodes[node] = name.strip()
    return f"node {node} named {names.nodes[node]!r}"


def reply(command: Command | None, ok: bool, message: str, ident: Any = None) -> bytes:
    body = {
        "id": command.ident if command is not None else ident,
        "command": command.name if command is not None else None,
        "ok": ok,
        "message": message,
    }
    return json.dumps(body, separators=(",", ":")).encode()

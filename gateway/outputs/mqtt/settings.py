"""The `outputs.mqtt` configuration section: broker, credentials, TLS, topics, intervals."""

from __future__ import annotations

import re
import socket
from pathlib import Path
from typing import Literal, Self
from urllib.parse import unquote, urlsplit

from pydantic import Field, field_validator, model_validator

from gateway.contracts.section import Section

# One topic level that is also a valid Home Assistant node_id / object_id.
TOPIC_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
MQTT_PORT, MQTTS_PORT = 1883, 8883


class MqttTlsSettings(Section):
    """TLS to the broker: the CA that signed the broker's certificate and, for brokers that
    ask for one (require_certificate), the gateway's own certificate and key."""

    ca_file: Path | None = Field(
        None, description="CA certificate(s) to verify the broker (PEM); default: the system's"
    )
    cert_file: Path | None = Field(None, description="client certificate (PEM), if required")
    key_file: Path | None = Field(None, description="the client certificate's key (PEM)")

    @model_validator(mode="after")
    def _pair(self) -> Self:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together")
        return self


class MqttSettings(Section):
    """The MQTT output: state, nodes and events on a broker; Home Assistant discovery."""

    host: str = Field("localhost", min_length=1, description="the broker's host name or address")
    port: int | None = Field(
        None, ge=1, le=65535, description="the broker's port (default 1883, 8883 with tls)"
    )
    protocol: Literal["5", "3.1.1"] = Field("5", description="MQTT protocol version: 5 or 3.1.1")
    username: str | None = Field(None, description="user name at the broker")
    password: str | None = Field(None, description="password (better: password_file)")
    password_file: Path | None = Field(
        None, description="file whose first line is the password (keep it mode 0600)"
    )
    tls: MqttTlsSettings | None = Field(None, description="TLS to the broker (off when left out)")
    client_id: str | None = Field(
        None, description="MQTT client id (default: moat-bms-SYSTEM_ID)", max_length=64
    )
    prefix: str = Field("moat-bms", description="first topic levels: PREFIX/SYSTEM_ID/...")
    system_id: str | None = Field(
        None,
        description="this gateway's topic level and Home Assistant node id: letters, digits, _ "
        "and - (default: the host name)",
    )
    name: str | None = Field(
        None,
        max_length=64,
        description="display name of the gateway in Home Assistant (default: moat-bms "
        "SYSTEM_ID); a set_name command overrides it",
    )
    discovery: bool = Field(True, description="publish Home Assistant discovery configs")
    discovery_prefix: str = Field("homeassistant", description="Home Assistant's discovery prefix")
    cells: bool = Field(True, description="publish per-cell voltages (and a sensor per cell)")
    state_interval_s: float = Field(
        5.0,
        ge=0.1,
        le=3600,
        description="how often the battery state is published (at once on a phase or alarm "
        "change), s",
    )
    node_interval_s: float = Field(
        30.0, ge=0.1, le=3600, description="how often per-node and per-cell values are published, s"
    )
    qos: Literal[0, 1] = Field(1, description="QoS of everything published (0 or 1)")
    keepalive_s: int = Field(
        30, ge=5, le=3600, description="MQTT keepalive: a silent broker is noticed after 1.5x, s"
    )
    timeout_s: float = Field(
        10.0,
        ge=0.5,
        le=300,
        description="a connect or a QoS 1 publish not answered within this counts as a lost "
        "connection, s",
    )
    queue_size: int = Field(
        1000,
        ge=10,
        le=100_000,
        description="events kept while the broker is away (the oldest are dropped and counted)",
    )
    reconnect_min_s: float = Field(1.0, gt=0, description="first delay before reconnecting, s")
    reconnect_max_s: float = Field(
        60.0, gt=0, description="longest delay between attempts (doubling back-off), s"
    )
    commands: bool = Field(
        False,
        description="accept commands on PREFIX/SYSTEM_ID/command: full_charge, balance, "
        "set_name only (never relays or limits)",
    )
    names_file: Path = Field(
        Path("moat-bms-names.json"),
        description="where display names set over MQTT are kept (written atomically)",
    )

    @field_validator("prefix", "discovery_prefix")
    @classmethod
    def _topic_prefix(cls, value: str) -> str:
        if not value or value.startswith("/") or value.endswith("/"):
            raise ValueError(f"must be topic levels without a leading or trailing '/': {value!r}")
        if any(c in value for c in "+#\0") or "//" in value:
            raise ValueError(f"must not contain '+', '#', NUL or an empty level: {value!r}")
        return value

    @field_validator("system_id")
    @classmethod
    def _system_id(cls, value: str | None) -> str | None:
        if value is not None and not TOPIC_ID.match(value):
            raise ValueError(f"use 1..64 letters, digits, '_' or '-', got {value!r}")
        return value

    @model_validator(mode="after")
    def _credentials(self) -> Self:
        if self.password is not None and self.password_file is not None:
            raise ValueError("give password or password_file, not both")
        if (self.password is not None or self.password_file is not None) and not self.username:
            raise ValueError("a password needs a username")
        if self.reconnect_max_s < self.reconnect_min_s:
            raise ValueError("reconnect_max_s is below reconnect_min_s")
        return self

    @property
    def broker_port(self) -> int:
        if self.port is not None:
            return self.port
        return MQTTS_PORT if self.tls is not None else MQTT_PORT

    @property
    def the_system_id(self) -> str:
        """system_id, or the host name made topic-safe."""
        return self.system_id or host_system_id(socket.gethostname())

    @property
    def the_client_id(self) -> str:
        return self.client_id or f"moat-bms-{self.the_system_id}"

    def read_password(self) -> str | None:
        """The password, read from password_file when given (ValueError naming the file)."""
        if self.password_file is None:
            return self.password
        try:
            lines = self.password_file.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise ValueError(
                f"outputs.mqtt.password_file: cannot read {self.password_file}: "
                f"{exc.strerror or exc}"
            ) from None
        return lines[0] if lines else ""


def check_files(settings: MqttSettings, key: str = "outputs.mqtt") -> None:
    """At start: the password file and the TLS files can be read (ValueError naming the key
    and the reason otherwise). `config check` leaves this out: it may run elsewhere."""
    settings.read_password()
    if settings.tls is None:
        return
    for name in ("ca_file", "cert_file", "key_file"):
        path = getattr(settings.tls, name)
        if path is None:
            continue
        try:
            with path.open("rb"):
                pass
        except OSError as exc:
            raise ValueError(
                f"{key}.tls.{name}: cannot read {path}: {exc.strerror or exc}"
            ) from None


def host_system_id(hostname: str) -> str:
    """A host name as a topic level: lowercase, other characters as '-', at most 64."""
    text = re.sub(r"[^a-z0-9_-]+", "-", hostname.split(".", maxsplit=1)[0].lower()).strip("-")
    return text[:64] or "gateway"


def settings_from_url(url: str, **extra: object) -> MqttSettings:
    """MqttSettings from mqtt://[user[:password]@]host[:port] (mqtts:// for TLS with the
    system's CAs). ValueError names what is wrong."""
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts"):
        raise ValueError(f"{url!r}: use mqtt://host[:port] or mqtts://host[:port]")
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"{url!r}: the port is not a number in 1..65535") from None
    if not parts.hostname:
        raise ValueError(f"{url!r}: no host")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"{url!r}: only scheme, credentials, host and port are understood")
    data: dict[str, object] = {"host": parts.hostname, "port": port}
    if parts.username:
        data["username"] = unquote(parts.username)
    if parts.password is not None:
        data["password"] = unquote(parts.password)
    if parts.scheme == "mqtts":
        data["tls"] = {}
    data.update(extra)
    return MqttSettings.model_validate(data)

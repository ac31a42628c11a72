"""A real mosquitto for the MQTT tests: Debian's broker (.ci/install-mosquitto, `make
mqtt-broker`) started with a configuration written here, on free localhost ports: a plain
listener and a TLS listener that also asks for a client certificate, both behind a password
file made with mosquitto_passwd, retained messages persisted across a restart.

Without mosquitto the tests are skipped, saying why, unless CI or MOAT_BMS_REQUIRE_SERVICES
is set: there they fail instead.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

USER, PASSWORD = "gateway", "s3cret-battery"
# An account whose sync marker never comes back (the ACL denies the sync topic): the limit
# of a broker too slow to echo it, without any timing in the test.
MUTE_USER, MUTE_PASSWORD = "mute", "no-echo"
START_TIMEOUT_S = 10.0


def mosquitto_path() -> str | None:
    return shutil.which("mosquitto") or (
        "/usr/sbin/mosquitto" if os.access("/usr/sbin/mosquitto", os.X_OK) else None
    )


def require_mosquitto() -> str:
    """The broker's path; skips (or fails where the services are required) without it."""
    path = mosquitto_path()
    passwd = shutil.which("mosquitto_passwd")
    if path and passwd:
        return path
    why = "mosquitto (and mosquitto_passwd) not installed: run `make mqtt-broker`"
    if os.environ.get("CI") or os.environ.get("MOAT_BMS_REQUIRE_SERVICES"):
        pytest.fail(f"{why} (required here: CI / MOAT_BMS_REQUIRE_SERVICES)")
    pytest.skip(why)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Pki:
    """A CA, the broker's certificate (for 127.0.0.1 and localhost) and a client's."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def make_pki(directory: Path) -> Pki:
    from cryptography import x509  # noqa: PLC0415 -- test-only dependency
    from cryptography.hazmat.primitives import hashes, serialization  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric import ec  # noqa: PLC0415
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID  # noqa: PLC0415

    now = datetime.datetime.now(datetime.UTC)

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    def write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> None:
        path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(name("moat-bms test CA"))
        .issuer_name(name("moat-bms test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )

    def leaf(
        cn: str, usage: x509.ObjectIdentifier, san: bool
    ) -> tuple[bytes, ec.EllipticCurvePrivateKey]:
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (
            x509.CertificateBuilder()
            .subject_name(name(cn))
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                critical=False,
            )
        )
        if san:
            builder = builder.add_extension(
                x509.SubjectAlternativeName(
                    [
                        x509.DNSName("localhost"),
                        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                    ]
                ),
                critical=False,
            )
        cert = builder.sign(ca_key, hashes.SHA256())
        return cert.public_bytes(serialization.Encoding.PEM), key

    pki = Pki(
        directory / "ca.pem",
        directory / "server.pem",
        directory / "server.key",
        directory / "client.pem",
        directory / "client.key",
    )
    pki.ca.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    server, server_key = leaf("localhost", ExtendedKeyUsageOID.SERVER_AUTH, True)
    pki.server_cert.write_bytes(server)
    write_key(server_key, pki.server_key)
    client, client_key = leaf(USER, ExtendedKeyUsageOID.CLIENT_AUTH, False)
    pki.client_cert.write_bytes(client)
    write_key(client_key, pki.client_key)
    return pki


class Mosquitto:
    """One mosquitto process with a configuration written here; stop() and start() again
    keep its ports and retained store."""

    def __init__(self, directory: Path, executable: str, port: int, lines: list[str]) -> None:
        self.directory = directory
        self.executable = executable
        self.port = port
        self.log = directory / "mosquitto.log"
        self.config = directory / "mosquitto.conf"
        # Started as root, mosquitto would switch to the user "mosquitto", which cannot read
        # this directory: stay who we are.
        user = pwd.getpwuid(os.getuid()).pw_name
        self.config.write_text("\n".join([f"user {user}", f"log_dest file {self.log}", *lines, ""]))
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [self.executable, "-c", str(self.config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                err = self.process.stderr.read().decode() if self.process.stderr else ""
                raise RuntimeError(f"mosquitto exited at start: {err} {self.log_text()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError(f"mosquitto did not listen within {START_TIMEOUT_S} s")

    def stop(self) -> None:
        """SIGTERM: the broker writes its retained messages to disk and exits."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stderr:
            self.process.stderr.close()
        self.process = None

    def pause(self) -> None:
        """SIGSTOP: a hung broker (connections open, nothing answered)."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def cpu_seconds(self) -> float:
        """User + system CPU time the broker used so far (from /proc)."""
        assert self.process is not None
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks = int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
        return ticks / os.sysconf("SC_CLK_TCK")

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""


class Broker(Mosquitto):
    """The central broker of the tests: accounts, ACL, persistence, a TLS listener."""

    def __init__(self, directory: Path, pki: Pki, executable: str) -> None:
        self.tls_port = free_port()
        passwords = directory / "passwords"
        passwords.touch(mode=0o600)
        subprocess.run(
            ["mosquitto_passwd", "-b", str(passwords), USER, PASSWORD],
            check=True,
            capture_output=True,
        )
        subprocess.run(
            ["mosquitto_passwd", "-b", str(passwords), MUTE_USER, MUTE_PASSWORD],
            check=True,
            capture_output=True,
        )
        for n in range(10):  # the fleet test's gateways, each with its own account
            subprocess.run(
                ["mosquitto_passwd", "-b", str(passwords), f"gw{n}", f"pw{n}"],
                check=True,
                capture_output=True,
            )
        os.chmod(passwords, 0o600)
        # As docs/mqtt.md advises for a fleet: each gateway (user gwN, system id gwN) may
        # only touch its own topics; the test's own user may touch everything.
        acl = directory / "acl"
        acl.write_text(
            "user gateway\ntopic readwrite #\n\n"
            f"user {MUTE_USER}\ntopic deny moat-bms/+/sync\ntopic readwrite #\n\n"
            "pattern readwrite moat-bms/%u/#\n"
            "pattern readwrite homeassistant/+/%u/+/config\n"
        )
        os.chmod(acl, 0o600)
        super().__init__(
            directory,
            executable,
            free_port(),
            [
                "per_listener_settings false",
                "allow_anonymous false",
                f"password_file {passwords}",
                f"acl_file {acl}",
                "persistence true",
                f"persistence_location {directory}/",
                "max_queued_messages 100000",
            ],
        )
        self.config.write_text(
            self.config.read_text()
            + "\n".join(
                [
                    f"listener {self.port} 127.0.0.1",
                    f"listener {self.tls_port} 127.0.0.1",
                    f"cafile {pki.ca}",
                    f"certfile {pki.server_cert}",
                    f"keyfile {pki.server_key}",
                    "require_certificate true",
                    "",
                ]
            )
        )


class SiteBroker(Mosquitto):
    """A site's own mosquitto (anonymous, localhost) bridged over TLS, with a client
    certificate and the site's account, to a central broker: the bridge of docs/mqtt.md."""

    def __init__(
        self, directory: Path, pki: Pki, executable: str, central: Broker, site: str, password: str
    ) -> None:
        port = free_port()
        super().__init__(
            directory,
            executable,
            port,
            [
                f"listener {port} 127.0.0.1",
                "allow_anonymous true",
                "connection central",
                f"address 127.0.0.1:{central.tls_port}",
                "bridge_protocol_version mqttv311",
                f"bridge_cafile {pki.ca}",
                f"bridge_certfile {pki.client_cert}",
                f"bridge_keyfile {pki.client_key}",
                f"remote_clientid site-{site}",
                f"remote_username {site}",
                f"remote_password {password}",
                "cleansession false",
                f"notification_topic moat-bms/{site}/bridge",
                f"topic moat-bms/{site}/# out 1",
                f"topic homeassistant/+/{site}/# out 1",
                f"topic moat-bms/{site}/command in 1",
            ],
        )

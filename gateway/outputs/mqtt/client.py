"""The MQTT output's I/O: aiomqtt (asyncio; paho-mqtt underneath), MQTT 5 or 3.1.1.

`publish(view)` runs in the tick: it turns the view into messages (publisher.py) and queues
them without any I/O. Retained topics (state, nodes, discovery configs) keep only their
newest payload, so a long outage costs no memory and a reconnect sends the present, not the
history; events wait in a bounded queue that drops its oldest (counted in status.dropped).

`run()` connects (TLS, user name and password, client certificate as configured) with a
last will of "offline" (retained) on the status topic, says "online" once connected while
views arrive ("offline" again when none came for STALE_S: the gateway is not ticking, its
last state is not the present one), and reconnects with a doubling back-off. A broker that
is slow or gone delays only this task, never a tick. A refused connection (a wrong
password) is logged once per distinct reason and kept in `status.last_error`.

At each connect the client reads back its own retained discovery configs (and, until it
has them, its last retained state for the energy totals): configs that the topology no longer
has (a removed node) are deleted with an empty retained message, as Home Assistant's MQTT
discovery documentation prescribes. The read-back ends when the broker echoes a marker sent
after the subscriptions (retained messages come first). While the energy totals are not
known, a broker that does not echo within SYNC_TIMEOUT_S ends the session (retried with the
back-off) before anything is published: a state sent now would carry counters that started
from 0 and overwrite the retained totals, and Home Assistant takes a total_increasing value
that decreases for the start of a new meter cycle (developers.home-assistant.io blog
2021-08-16, "New sensor state class: total_increasing": the integration must ensure that the
value cannot erroneously decrease). The status topic keeps its "offline" (the last will), so
every entity stays unavailable, not wrong, meanwhile.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import math
import random
import secrets
import ssl
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import aiomqtt
import anyio
import paho.mqtt.client as paho
from aiomqtt.exceptions import MqttConnectError
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from gateway import __version__
from gateway.outputs.mqtt import commands as cmd
from gateway.outputs.mqtt import discovery, payloads
from gateway.outputs.mqtt.publisher import Message, Publisher, energy_from_state
from gateway.outputs.mqtt.settings import MqttSettings
from gateway.outputs.mqtt.topics import Topics
from gateway.outputs.seam import BatteryView

log = logging.getLogger(__name__)

ONLINE, OFFLINE = b"online", b"offline"
SYNC_TIMEOUT_S = 5.0  # reading back the retained configs and state at connect
BATCH = 64  # retained messages published at once (each waits for its PUBACK)
GOODBYE_S = 2.0  # the "offline" at a clean stop
# No view for this long (wall clock) means the gateway is not ticking: the status says
# "offline", so that nobody takes the last retained state for the present one.
STALE_S = 10.0


class ReadBackTimeout(Exception):
    """The broker did not echo the sync marker while the energy totals were unknown."""


@dataclass
class MqttStatus:
    """What the output did, for the log, the web page and the tests."""

    connected: bool = False
    broker: str = ""
    last_error: str = ""  # why the last connection failed or ended ("" while fine)
    connects: int = 0
    failures: int = 0
    sent: int = 0  # messages handed to the broker
    dropped: int = 0  # events dropped from a full queue (oldest first)
    queued: int = 0  # events waiting
    publish_errors: int = 0  # views that could not be turned into messages (a bug)
    removed_configs: int = 0  # stale discovery configs deleted

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        if self.connected:
            return f"connected to {self.broker}, {self.sent} messages sent, {self.dropped} dropped"
        why = self.last_error or "connecting"
        return f"not connected to {self.broker}: {why}"


class MqttOutput:
    """The battery on an MQTT broker: implements gateway.outputs.seam.Output."""

    name = "mqtt"

    def describe(self) -> str:
        return self.status.describe()

    def __init__(
        self,
        settings: MqttSettings,
        nodes: Mapping[int, int],
        commands: cmd.CommandTarget | None = None,
        *,
        stale_s: float = STALE_S,
    ) -> None:
        """`nodes` maps each configured node to its cell count; `commands` is what MQTT
        commands act on (needed when settings.commands is on); no view for `stale_s`
        (wall clock) turns the status offline."""
        if settings.commands and commands is None:
            raise ValueError("outputs.mqtt.commands is on but nothing to command was given")
        self.settings = settings
        self.topics = Topics(settings.prefix, settings.the_system_id, settings.discovery_prefix)
        self.nodes = dict(nodes)
        self.commands = commands if settings.commands else None
        self.names = cmd.NameStore(settings.names_file)
        self.publisher = Publisher(
            self.topics,
            state_interval_s=settings.state_interval_s,
            node_interval_s=settings.node_interval_s,
            cells=settings.cells,
        )
        self.status = MqttStatus(broker=f"{settings.host}:{settings.broker_port}")
        # Newest payload of every retained topic, and those not yet sent (an ordered set).
        self._retained: dict[str, bytes] = {}
        self._dirty: dict[str, None] = {}
        self._events: deque[Message] = deque()
        self._wake: anyio.Event | None = None
        self.stale_s = stale_s
        self._last_view: float | None = None  # time.monotonic() of the newest view
        self._announced: bytes | None = None  # what the status topic says (this connection)
        self._energy_restored = False
        self._reported_error = ""
        self._set_retained_info()

    # ------------------------------------------------------------------ the tick's side

    def publish(self, view: BatteryView) -> None:
        """Queue what is due after this tick. No I/O; never raises."""
        self._last_view = time.monotonic()
        if self._announced != ONLINE:
            self._kick()
        try:
            messages = self.publisher.offer(view)
        except Exception:  # a bug here must not reach the tick loop
            self.status.publish_errors += 1
            if self.status.publish_errors == 1:
                log.exception("mqtt: a view could not be published")
            return
        if not messages:
            return
        for message in messages:
            if message.retain:
                self._retain(message.topic, message.payload)
            else:
                if len(self._events) >= self.settings.queue_size:
                    self._events.popleft()
                    self.status.dropped += 1
                self._events.append(message)
        self.status.queued = len(self._events)
        self._kick()

    def _requeue(self, message: Message) -> None:
        """Put back an event whose sending failed, unless newer ones filled the queue."""
        if len(self._events) < self.settings.queue_size:
            self._events.appendleft(message)
        else:
            self.status.dropped += 1
        self.status.queued = len(self._events)

    def _retain(self, topic: str, payload: bytes) -> None:
        self._retained[topic] = payload
        self._dirty[topic] = None

    def _kick(self) -> None:
        if self._wake is not None:
            self._wake.set()

    def display_names(self) -> discovery.Names:
        gateway = self.names.gateway or self.settings.name or f"moat-bms {self.topics.system_id}"
        return discovery.Names(gateway, dict(self.names.nodes))

    def _set_retained_info(self) -> None:
        names = self.display_names()
        if self.settings.discovery:
            configs = discovery.all_configs(self.topics, names, self.nodes, self.settings.cells)
            for topic, config in configs:
                self._retain(topic, payloads.encode(config))
        info = payloads.info(
            names.gateway, self.topics.system_id, __version__, self.nodes, self.commands is not None
        )
        self._retain(self.topics.info, payloads.encode(info))

    # ------------------------------------------------------------------ the I/O task

    async def run(self) -> None:
        """Connect, publish, reconnect with back-off; returns only when cancelled."""
        self._wake = anyio.Event()
        s = self.settings
        delay = s.reconnect_min_s
        while True:
            connects = self.status.connects
            try:
                await self._session()
            except Exception as exc:  # every failure is a reason to retry, none to stop
                self._failed(exc)
            if self.status.connects != connects:
                delay = s.reconnect_min_s  # it was up: start the back-off anew
            # Jitter: a fleet whose broker restarts does not come back in lockstep.
            await anyio.sleep(delay * random.uniform(0.75, 1.0))
            delay = min(delay * 2, s.reconnect_max_s)

    def _client(self) -> aiomqtt.Client:
        s = self.settings
        password = s.read_password()
        tls: ssl.SSLContext | None = None
        if s.tls is not None:
            ca = str(s.tls.ca_file) if s.tls.ca_file is not None else None
            tls = ssl.create_default_context(cafile=ca)
            if s.tls.cert_file is not None and s.tls.key_file is not None:
                tls.load_cert_chain(str(s.tls.cert_file), str(s.tls.key_file))
        v5 = s.protocol == "5"
        protocol = aiomqtt.ProtocolVersion.V5 if v5 else aiomqtt.ProtocolVersion.V311
        client = aiomqtt.Client(
            s.host,
            s.broker_port,
            username=s.username,
            password=password,
            identifier=s.the_client_id,
            protocol=protocol,
            will=aiomqtt.Will(self.topics.status, OFFLINE, qos=1, retain=True),
            keepalive=s.keepalive_s,
            timeout=s.timeout_s,
            tls_context=tls,
            # A fresh session each time: a command queued while we were away must not run
            # late, and the subscriptions are made anew at every connect anyway.
            clean_start=True if v5 else paho.MQTT_CLEAN_START_FIRST_ONLY,
            clean_session=None if v5 else True,
            logger=logging.getLogger(f"{__name__}.paho"),
        )
        # aiomqtt warns above 10 publishes in flight; a batch has more by design.
        client.pending_calls_threshold = 2 * BATCH
        return client

    async def _session(self) -> None:
        client = self._client()
        async with client:
            self._connected()
            try:
                await self._greet(client)
                async with anyio.create_task_group() as tg:
                    tg.start_soon(self._send_loop, client)
                    tg.start_soon(self._receive_loop, client)
            except anyio.get_cancelled_exc_class():
                # A clean stop: say so now (the will is only sent on an unclean loss).
                with (
                    anyio.CancelScope(shield=True),
                    anyio.move_on_after(GOODBYE_S),
                    contextlib.suppress(aiomqtt.MqttError),
                ):
                    await client.publish(self.topics.status, OFFLINE, qos=1, retain=True)
                raise
            finally:
                self.status.connected = False

    def _connected(self) -> None:
        st = self.status
        st.connected = True
        st.connects += 1
        st.last_error = ""
        self._reported_error = ""
        log.info(
            "mqtt: connected to %s as %s (topics %s/...)",
            st.broker,
            self.settings.the_client_id,
            self.topics.base,
        )

    def _failed(self, exc: Exception) -> None:
        st = self.status
        st.connected = False
        st.failures += 1
        reason = _reason(exc)
        st.last_error = reason
        if reason != self._reported_error:  # once per distinct reason, not every retry
            self._reported_error = reason
            log.error("mqtt: %s: %s (retrying with back-off)", st.broker, reason)
        else:
            log.debug("mqtt: %s: %s", st.broker, reason)

    async def _greet(self, client: aiomqtt.Client) -> None:
        """After connecting: read back what is retained, remove stale configs, say online,
        and send every retained topic's newest payload."""
        await self._read_back(client)
        self._announced = None  # the send loop says online (or offline: not ticking)
        self._dirty = dict.fromkeys(self._retained)
        if self.commands is not None:
            await client.subscribe(self.topics.command, qos=1)

    async def _read_back(self, client: aiomqtt.Client) -> None:
        filters = []
        if self.settings.discovery:
            filters.append(self.topics.discovery_filter)
        if not self._energy_restored:
            filters.append(self.topics.state)
        if not filters:
            return
        for topic in (*filters, self.topics.sync):
            await client.subscribe(topic, qos=1)
        marker = secrets.token_hex(8).encode()
        await client.publish(self.topics.sync, marker, qos=1)
        configs: list[str] = []
        state: bytes | None = None
        synced = False
        with anyio.move_on_after(SYNC_TIMEOUT_S):
            async for message in client.messages:
                topic, body = str(message.topic), _bytes(message.payload)
                if topic == self.topics.sync and body == marker:
                    synced = True
                    break
                if not message.retain or not body:
                    continue
                if topic == self.topics.state:
                    state = body
                elif message.topic.matches(self.topics.discovery_filter):
                    configs.append(topic)
        for topic in (*filters, self.topics.sync):
            await client.unsubscribe(topic)
        if not synced and not self._energy_restored:
            # The retained state may still be on its way: publishing now could overwrite
            # its energy totals. End the session; the read-back is retried at the reconnect.
            raise ReadBackTimeout(
                f"the broker did not echo the sync marker within {SYNC_TIMEOUT_S:g} s: "
                "the retained energy totals are unknown, nothing published"
            )
        if not synced:
            log.warning("mqtt: the broker did not echo the sync marker: stale configs kept")
            return
        if not self._energy_restored:
            self._energy_restored = True
            earlier = energy_from_state(state) if state is not None else None
            for waited in self.publisher.restore_energy(earlier):  # the state that waited
                self._retain(waited.topic, waited.payload)
        prefix = f"{self.settings.discovery_prefix}/"
        gone = discovery.stale(configs, (t for t in self._retained if t.startswith(prefix)))
        for topic in gone:
            await client.publish(topic, b"", qos=1, retain=True)
            self.status.removed_configs += 1
        # A removed node's retained state goes too.
        removed = {discovery.node_of(t) for t in gone} - {None, *self.nodes}
        for node in sorted(n for n in removed if n is not None):
            await client.publish(self.topics.node(node), b"", qos=1, retain=True)
        if gone:
            log.info(
                "mqtt: %d stale discovery configs removed (nodes gone: %s)",
                len(gone),
                sorted(n for n in removed if n is not None) or "none",
            )

    def _fresh(self) -> float:
        """Seconds until the newest view is stale (<= 0: stale or none yet)."""
        if self._last_view is None:
            return 0.0
        return self._last_view + self.stale_s - time.monotonic()

    async def _send_loop(self, client: aiomqtt.Client) -> None:
        qos = self.settings.qos
        while True:
            fresh = self._fresh()
            status = ONLINE if fresh > 0 else OFFLINE
            if status != self._announced:
                await client.publish(self.topics.status, status, qos=1, retain=True)
                if status == OFFLINE and self._last_view is not None:
                    log.warning("mqtt: no battery state for %g s: status offline", self.stale_s)
                self._announced = status
            if not self._dirty and not self._events:
                self._wake = anyio.Event()
                with anyio.move_on_after(fresh if fresh > 0 else math.inf):
                    await self._wake.wait()
                continue
            # Events first: they are what happened; retained topics carry the newest anyway.
            while self._events:
                message = self._events.popleft()
                self.status.queued = len(self._events)
                try:
                    await client.publish(message.topic, message.payload, qos=qos)
                except BaseException:
                    self._requeue(message)  # sent again after the reconnect
                    raise
                self.status.sent += 1
            while self._dirty:
                # A batch at once: the broker's acknowledgements overlap instead of costing
                # a round trip each (paho sends them in this order).
                batch = list(itertools.islice(self._dirty, BATCH))
                for topic in batch:
                    del self._dirty[topic]
                try:
                    async with anyio.create_task_group() as tg:
                        for topic in batch:
                            tg.start_soon(self._send_retained, client, topic, qos)
                except BaseException:
                    for topic in batch:  # sent again after the reconnect
                        self._dirty.setdefault(topic, None)
                    raise
                if self._events:
                    break  # an event arrived meanwhile: it goes first

    async def _send_retained(self, client: aiomqtt.Client, topic: str, qos: int) -> None:
        await client.publish(topic, self._retained[topic], qos=qos, retain=True)
        self.status.sent += 1

    async def _receive_loop(self, client: aiomqtt.Client) -> None:
        # Iterating also notices a lost connection when there is nothing to send.
        async for message in client.messages:
            if self.commands is not None and str(message.topic) == self.topics.command:
                if not _bytes(message.payload):
                    continue  # someone cleared a retained command: nothing to answer
                await self._command(client, message)

    async def _command(self, client: aiomqtt.Client, message: aiomqtt.Message) -> None:
        assert self.commands is not None
        parsed: cmd.Command | None = None
        ident = None
        try:
            parsed = cmd.parse(_bytes(message.payload), bool(message.retain))
            before = self.display_names()
            text = cmd.execute(parsed, self.commands, self.names, frozenset(self.nodes))
            ok = True
            log.info("mqtt: command %s: %s", parsed.name, text)
            if self.display_names() != before:
                await anyio.to_thread.run_sync(self.names.save)
                self._set_retained_info()  # the devices' new names
                self._kick()
        except (ValueError, OSError) as exc:
            ok, text = False, str(exc)
            ident = exc.ident if isinstance(exc, cmd.CommandError) else None
            log.warning("mqtt: command refused: %s", text)
        topic, properties = self.topics.reply, None
        props = message.properties
        response = getattr(props, "ResponseTopic", None) if props is not None else None
        if response:
            # MQTT 5 request/response: answer where the requester listens, with its
            # correlation data (the broker's ACL decides whether we may publish there).
            topic = str(response)
            correlation = getattr(props, "CorrelationData", None)
            if correlation is not None:
                properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
                properties.CorrelationData = correlation
        await client.publish(
            topic, cmd.reply(parsed, ok, text, ident), qos=1, retain=False, properties=properties
        )


def _bytes(payload: object) -> bytes:
    if isinstance(payload, bytes | bytearray):
        return bytes(payload)
    if payload is None:
        return b""
    return str(payload).encode()


def _reason(exc: BaseException) -> str:
    """A failure in words: what the broker refused, or what went wrong on the way."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]  # a task group's: the first failure says it
    if isinstance(exc, MqttConnectError):
        return f"broker refused the connection: {exc}"
    if isinstance(exc, ssl.SSLError):
        return f"TLS: {exc.reason or exc}"
    if isinstance(exc, ValueError | ReadBackTimeout):  # the password file; the read-back
        return str(exc)
    if isinstance(exc, aiomqtt.MqttError):
        text = str(exc)
        if text.startswith("Disconnected"):
            cause = exc.__cause__
            return f"connection lost ({cause})" if cause and str(cause) else "connection lost"
        if "Errno" in text or "timed out" in text.lower():
            return f"cannot connect: {text}"
        return text
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"

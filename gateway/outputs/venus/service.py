"""The battery as a com.victronenergy.battery service on D-Bus, served with dbus-fast.

Follows the com.victronenergy.BusItem interface as Venus OS's services implement it
(victronenergy/velib_python vedbus.py; the venus wiki page "dbus-api"):
- every path is an object with GetValue (a variant; an invalid value is an empty array),
  GetText (the value as text, "---" when invalid), SetValue (0 = done, 1 = not writable or
  wrong type, 2 = refused), GetDescription, and the signal PropertiesChanged
  ({"Value": v, "Text": s}) when its value changes;
- every path's parent (/Dc, /Dc/0, ...) answers GetValue and GetText with its subtree;
- the root "/" answers GetItems ({path: {"Value", "Text"}} for every path) and signals
  ItemsChanged with the changes of one update;
- the service name is requested after every path is exported, so a reader that sees the
  name finds the paths.
The device instance is claimed as Venus OS services claim it: AddSetting of
/Settings/Devices/<device>/ClassAndVrmInstance = "battery:<n>" on com.victronenergy.settings
(victronenergy/localsettings: it moves a taken instance to the next free one), whose value
then says the instance; without that service the configured instance is used.

The output publishes from the newest view at most every RENDER_S (wall clock); changes are
signalled at most once a second per path of `clock` (time.monotonic unless given), the pure
rule in changes.py deciding which at each update. A D-Bus that is gone, or goes away,
is retried with a doubling back-off; `status` says what is happening (the web page shows
it). Nothing here raises into the gateway.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import anyio
from dbus_fast import BusType, Message, MessageType, NameFlag, RequestNameReply, Variant
from dbus_fast.aio import MessageBus
from dbus_fast.annotations import DBusInt32, DBusSignature, DBusStr, DBusVariant
from dbus_fast.service import ServiceInterface, dbus_method, dbus_signal

from gateway.outputs.inverter.report import build_report
from gateway.outputs.inverter.shaping import Shaper
from gateway.outputs.inverter.victron import VictronProfile
from gateway.outputs.venus.changes import ChangeGate
from gateway.outputs.venus.history import History, HistoryState
from gateway.outputs.venus.paths import (
    WRITABLE,
    Identity,
    Item,
    Value,
    battery_items,
    charge_ah,
    installed_ah,
    unit_of,
)
from gateway.outputs.venus.settings import MAX_CUSTOM_NAME, VenusSettings
from gateway.record.counters import RateLimitedLog
from gateway.record.persist import StateStore

if TYPE_CHECKING:
    from gateway.contracts.topology import TopologySettings
    from gateway.outputs.inverter.settings import InverterSettings
    from gateway.outputs.seam import BatteryView

log = logging.getLogger(__name__)

BUS_ITEM = "com.victronenergy.BusItem"
SETTINGS_SERVICE = "com.victronenergy.settings"
SETTINGS_INTERFACE = "com.victronenergy.Settings"
DEVICE_CLASS = "battery"
RENDER_S = 0.1  # s of wall clock between two updates of the values
SAVE_S = 60.0  # s between two saves of the history (a rename is saved at once)
CLAIM_TIMEOUT_S = 5.0  # s: a settings service that does not answer gets no longer
# SetValue's answers, as vedbus.py gives them.
SET_OK, SET_NOT_WRITABLE, SET_REFUSED = 0, 1, 2

Clock = Callable[[], float]
Setter = Callable[[str, Value], Awaitable[int]]


def wrap(value: Value) -> Variant:
    """A value as Venus OS puts it on the bus: double, int32, string; invalid = empty array."""
    if value is None:
        return Variant("ai", [])
    if isinstance(value, float):
        return Variant("d", value)
    if isinstance(value, int):
        return Variant("i", value)
    return Variant("s", value)


def unwrap(variant: Variant) -> Value:
    """A variant from SetValue as a value; None for an empty array (invalid) or other types."""
    value = variant.value
    if variant.signature in ("d", "i", "u", "x", "t", "n", "q", "y", "s"):
        return value  # type: ignore[no-any-return]
    return None


class _Tree:
    """The current items and how they hang together, shared by every exported object."""

    def __init__(self, items: dict[str, Item], setter: Setter) -> None:
        self.items = items
        self.setter = setter

    def under(self, prefix: str) -> dict[str, Item]:
        start = prefix.rstrip("/") + "/"
        return {p[len(start) :]: item for p, item in self.items.items() if p.startswith(start)}


class BusItem(ServiceInterface):
    """One path (a leaf): /Dc/0/Voltage, /Soc, ..."""

    def __init__(self, tree: _Tree, path: str) -> None:
        super().__init__(BUS_ITEM)
        self.tree = tree
        self.path = path

    @dbus_method()
    def GetValue(self) -> DBusVariant:  # noqa: N802 -- the interface's names
        return wrap(self.tree.items[self.path][0])

    @dbus_method()
    def GetText(self) -> DBusStr:  # noqa: N802
        return self.tree.items[self.path][1]

    @dbus_method()
    async def SetValue(self, value: DBusVariant) -> DBusInt32:  # noqa: N802
        if self.path not in WRITABLE:
            return SET_NOT_WRITABLE
        return await self.tree.setter(self.path, unwrap(value))

    @dbus_method()
    def GetDescription(self, language: DBusStr, length: DBusInt32) -> DBusStr:  # noqa: N802
        unit = unit_of(self.path).symbol
        return f"{self.path} ({unit})" if unit else self.path

    @dbus_signal()
    def PropertiesChanged(  # noqa: N802
        self, changes: dict[str, Variant]
    ) -> Annotated[dict[str, Variant], DBusSignature("a{sv}")]:
        return changes


class TreeItem(ServiceInterface):
    """A path's parent (/Dc, /Dc/0, ...): its subtree's values and texts."""

    def __init__(self, tree: _Tree, path: str) -> None:
        super().__init__(BUS_ITEM)
        self.tree = tree
        self.path = path

    @dbus_method()
    def GetValue(self) -> DBusVariant:  # noqa: N802
        sub = self.tree.under(self.path)
        return Variant("a{sv}", {p: wrap(value) for p, (value, _) in sub.items()})

    @dbus_method()
    def GetText(self) -> DBusVariant:  # noqa: N802
        sub = self.tree.under(self.path)
        return Variant("a{ss}", {p: text for p, (_, text) in sub.items()})


class RootItem(TreeItem):
    """The root "/": every item at once, and every change of an update at once."""

    @dbus_method()
    def GetItems(  # noqa: N802
        self,
    ) -> Annotated[dict[str, dict[str, Variant]], DBusSignature("a{sa{sv}}")]:
        return {p: _properties(item) for p, item in self.tree.items.items()}

    @dbus_signal()
    def ItemsChanged(  # noqa: N802
        self, changes: dict[str, dict[str, Variant]]
    ) -> Annotated[dict[str, dict[str, Variant]], DBusSignature("a{sa{sv}}")]:
        return changes


def _properties(item: Item) -> dict[str, Variant]:
    return {"Value": wrap(item[0]), "Text": Variant("s", item[1])}


def _parents(paths: list[str]) -> list[str]:
    parents = set()
    for path in paths:
        parts = path.split("/")
        for i in range(2, len(parts)):
            parents.add("/".join(parts[:i]))
    return sorted(parents)


def bus_kind(address: str) -> tuple[str | None, BusType]:
    """(bus_address, bus_type) for MessageBus from the setting: system, session or an address."""
    if address == "system":
        return None, BusType.SYSTEM
    if address == "session":
        return None, BusType.SESSION
    return address, BusType.SESSION


class VenusOutput:
    """The Output (gateway/outputs/seam.py) that is a Venus OS battery service."""

    name = "venus"

    def __init__(
        self,
        settings: VenusSettings,
        topology: TopologySettings,
        inverter: InverterSettings,
        connection: str,
        state_file: Path,
        *,
        clock: Clock = time.monotonic,
    ) -> None:
        """`topology` and `inverter` are the gateway's; `connection` says where the battery
        is read (/Mgmt/Connection), e.g. "CAN socketcan can0"."""
        self.settings = settings
        self.topology = topology
        self.installed_ah = installed_ah(topology, inverter.capacity_ah)
        self.inverter_settings = inverter
        self.connection = connection
        self.clock = clock
        self.status = "starting"
        self.registered = False  # the service name is ours on a connected bus
        self.device_instance = settings.device_instance
        # The limits as the victron CAN profile shapes them (never CVL 0, stop = 0 A).
        self._shaper = Shaper(VictronProfile.quirks, inverter)
        self.store = StateStore(state_file.with_name(f"{state_file.stem}.venus.json"))
        saved = self.store.load() or {}
        self.custom_name = _saved_name(saved, settings.custom_name)
        self.history = History(_saved_history(saved))
        self.items: dict[str, Item] = {}
        self._view: BatteryView | None = None
        self._rendered: BatteryView | None = None
        self._gate = ChangeGate()
        self._log = RateLimitedLog(log, 60.0)
        self._tree: _Tree | None = None

    # ------------------------------------------------------------------ Output

    def describe(self) -> str:
        return self.status

    def publish(self, view: BatteryView) -> None:
        """Keep the newest view and count its history (a few float operations)."""
        try:
            snap = view.snapshot
            _, consumed = charge_ah(view, self.installed_ah)
            cells = (snap.min_cell, snap.max_cell) if snap.valid else None
            self.history.update(view.time, snap.voltage * snap.current, consumed, cells)
            self._view = view
        except Exception as exc:  # a bug here must not stop the tick
            self._log.warning("publish", self.clock(), "venus: view not taken: %r", exc)

    async def run(self) -> None:
        """Serve the battery on D-Bus until cancelled; save the state on the way out."""
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._save_loop)
                await self._connection_loop()
        finally:
            with anyio.CancelScope(shield=True):
                await self._save()

    # ------------------------------------------------------------------ connection

    async def _connection_loop(self) -> None:
        s = self.settings
        delay = s.retry_min_s
        while True:
            try:
                await self._session()
                delay = s.retry_min_s  # the bus was there: start the back-off afresh
                problem = "the D-Bus connection closed"
            except Exception as exc:  # whatever the bus does, the gateway keeps running
                problem = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            self.registered = False
            self.status = f"D-Bus {s.bus}: {problem}; retrying in {delay:g} s"
            self._log.warning(("retry", problem), self.clock(), "venus: %s", self.status)
            await anyio.sleep(delay)
            delay = min(delay * 2, s.retry_max_s)

    async def _session(self) -> None:
        """One connection: register, then update until the bus goes away."""
        s = self.settings
        address, kind = bus_kind(s.bus)
        self.status = f"connecting to D-Bus {s.bus}"
        bus = await MessageBus(bus_address=address, bus_type=kind).connect()
        try:
            while self._view is None:  # no decision yet: nothing true to show
                self.status = f"connected to D-Bus {s.bus}; waiting for the first battery data"
                await anyio.sleep(RENDER_S)
            self.device_instance = self.settings.device_instance
            with anyio.move_on_after(CLAIM_TIMEOUT_S) as claim:
                self.device_instance = await self._claim_instance(bus)
            if claim.cancelled_caught:
                log.warning(
                    "venus: %s did not answer: device instance %d",
                    SETTINGS_SERVICE,
                    self.device_instance,
                )
            self._rendered = None  # a new connection shows the newest view, rendered anew
            items = self._render() or self.items
            tree = _Tree(items, self._set_value)
            leaves = {path: BusItem(tree, path) for path in items}
            root = RootItem(tree, "/")
            bus.export("/", root)
            for parent in _parents(list(items)):
                bus.export(parent, TreeItem(tree, parent))
            for path, leaf in leaves.items():
                bus.export(path, leaf)
            reply = await bus.request_name(s.service_name, NameFlag.DO_NOT_QUEUE)
            if reply not in (RequestNameReply.PRIMARY_OWNER, RequestNameReply.ALREADY_OWNER):
                raise RuntimeError(f"{s.service_name} is taken by another process")
            self._tree = tree
            self._gate.start(items)
            self.registered = True
            self.status = (
                f"registered as {s.service_name} on D-Bus {s.bus}, "
                f"device instance {self.device_instance}"
            )
            log.info("venus: %s", self.status)
            while bus.connected:
                await anyio.sleep(RENDER_S)
                self._update(tree, leaves, root)
        finally:
            self._tree = None
            bus.disconnect()
            # Collect how it ended: an error left unread would be logged by asyncio as
            # "never retrieved" (the reason is in `status` already).
            with (
                anyio.CancelScope(shield=True),
                anyio.move_on_after(1.0),
                contextlib.suppress(Exception),
            ):
                await bus.wait_for_disconnect()  # type: ignore[no-untyped-call]

    def _update(self, tree: _Tree, leaves: dict[str, BusItem], root: RootItem) -> None:
        items = self._render()
        if items is not None:
            tree.items = items
        # Also without a new view: a change held back by its second is signalled now.
        due = self._gate.due(tree.items, self.clock())
        if not due:
            return
        for path, item in due.items():
            leaves[path].PropertiesChanged(_properties(item))
        root.ItemsChanged({path: _properties(item) for path, item in due.items()})

    def _render(self) -> dict[str, Item] | None:
        """The items of the newest view, or None when there is no new one."""
        view = self._view
        if view is None or view is self._rendered:
            return None
        report = view.report
        if report is None:
            d = view.decision
            report = build_report(
                view.snapshot, d, view.soc.for_inverter, view.soc.soh, self.inverter_settings
            )
        out = self._shaper.shape(report)
        identity = Identity(self.device_instance, self.custom_name, self.connection)
        self.items = battery_items(
            view, out, self.topology, self.installed_ah, self.history.state, identity
        )
        self._rendered = view
        return self.items

    async def _claim_instance(self, bus: MessageBus) -> int:
        """The device instance com.victronenergy.settings gives us, else the configured one."""
        s = self.settings
        wanted = s.device_instance
        owner = await bus.call(
            Message(
                destination="org.freedesktop.DBus",
                path="/org/freedesktop/DBus",
                interface="org.freedesktop.DBus",
                member="NameHasOwner",
                signature="s",
                body=[SETTINGS_SERVICE],
            )
        )
        if owner is None or owner.message_type != MessageType.METHOD_RETURN or not owner.body[0]:
            return wanted
        setting = f"/Settings/Devices/{s.device}/ClassAndVrmInstance"
        added = await bus.call(
            Message(
                destination=SETTINGS_SERVICE,
                path="/Settings",
                interface=SETTINGS_INTERFACE,
                member="AddSetting",
                signature="ssvsvv",
                body=[
                    f"Devices/{s.device}",
                    "ClassAndVrmInstance",
                    Variant("s", f"{DEVICE_CLASS}:{wanted}"),
                    "s",
                    Variant("i", 0),
                    Variant("i", 0),
                ],
            )
        )
        value = await bus.call(
            Message(
                destination=SETTINGS_SERVICE, path=setting, interface=BUS_ITEM, member="GetValue"
            )
        )
        if (
            added is None
            or added.message_type != MessageType.METHOD_RETURN
            or value is None
            or value.message_type != MessageType.METHOD_RETURN
        ):
            why = _error_text(added) or _error_text(value)
            log.warning("venus: %s not claimed (%s): device instance %d", setting, why, wanted)
            return wanted
        claimed = _instance(value.body[0].value)
        if claimed is None:
            log.warning("venus: %s is %r: device instance %d", setting, value.body[0], wanted)
            return wanted
        await self._follow_instance(bus, setting)
        return claimed

    async def _follow_instance(self, bus: MessageBus, setting: str) -> None:
        """Take a new instance set on the GX (its device page writes the setting)."""

        def on_change(msg: Message) -> None:
            if not (
                msg.message_type == MessageType.SIGNAL
                and msg.member == "PropertiesChanged"
                and msg.path == setting
                and msg.body
                and isinstance(msg.body[0], dict)  # a{sv}: anything else is not ours
            ):
                return
            value = msg.body[0].get("Value")
            instance = _instance(value.value if isinstance(value, Variant) else None)
            if instance is not None and instance != self.device_instance:
                log.info("venus: device instance %d set on the GX", instance)
                self.device_instance = instance
                self._rendered = None  # render again: /DeviceInstance changes

        bus.add_message_handler(on_change)
        rule = (
            f"type='signal',sender='{SETTINGS_SERVICE}',interface='{BUS_ITEM}',"
            f"member='PropertiesChanged',path='{setting}'"
        )
        await bus.call(
            Message(
                destination="org.freedesktop.DBus",
                path="/org/freedesktop/DBus",
                interface="org.freedesktop.DBus",
                member="AddMatch",
                signature="s",
                body=[rule],
            )
        )

    # ------------------------------------------------------------------ writes, state

    async def _set_value(self, path: str, value: Value) -> int:
        """SetValue on a writable path (/CustomName): applied, then saved atomically."""
        if not isinstance(value, str) or len(value) > MAX_CUSTOM_NAME or not value.isprintable():
            return SET_REFUSED
        self.custom_name = value
        tree = self._tree
        if tree is not None:  # answer GetValue with it at once; signalled at the next update
            tree.items = {**tree.items, path: (value, value)}
            self.items = tree.items
        self._rendered = None  # render again with the new name
        await self._save()
        return SET_OK

    def state(self) -> dict[str, Any]:
        return {
            "custom_name": self.custom_name,
            # The configured name the rename replaced: a new one in the file wins again.
            "configured_name": self.settings.custom_name,
            "history": self.history.state.to_dict(),
        }

    async def _save(self) -> None:
        state = self.state()
        if not await anyio.to_thread.run_sync(self.store.save, state):
            self._log.warning("save", self.clock(), "venus: state not saved to %s", self.store.path)

    async def _save_loop(self) -> None:
        while True:
            await anyio.sleep(SAVE_S)
            await self._save()


def _saved_name(saved: dict[str, Any], configured: str) -> str:
    name = saved.get("custom_name")
    if not isinstance(name, str) or saved.get("configured_name") != configured:
        return configured
    return name


def _saved_history(saved: dict[str, Any]) -> HistoryState | None:
    data = saved.get("history")
    if data is None:
        return None
    try:
        return HistoryState.from_dict(data)
    except ValueError as exc:
        log.error("venus: saved history unusable (%s): starting afresh", exc)
        return None


def _instance(value: object) -> int | None:
    """n of "battery:n"; None for anything else."""
    if not isinstance(value, str):
        return None
    device_class, _, number = value.partition(":")
    if device_class != DEVICE_CLASS or not number.isdigit():
        return None
    return int(number)


def _error_text(reply: Message | None) -> str:
    if reply is None:
        return "no reply"
    if reply.message_type == MessageType.ERROR:
        detail = reply.body[0] if reply.body else ""
        return f"{reply.error_name}: {detail}" if detail else str(reply.error_name)
    return ""

"""A fake com.victronenergy.settings, written from Venus OS's documented settings API
(victronenergy/localsettings README and localsettings.py):

- AddSetting(group s, name s, default v, itemType s, min v, max v) -> i on the object
  /Settings, interface com.victronenergy.Settings: creates /Settings/<group>/<name> with the
  default unless it exists (then its value is kept); 0 = done.
- Each setting is an object with com.victronenergy.BusItem GetValue / SetValue / GetText
  and signals PropertiesChanged when SetValue changes it (as the GX's device page does).
- A setting named ClassAndVrmInstance under /Settings/Devices/<device>/ holds "class:n" and
  is unique per class: a value already taken by another device becomes the next free n.
"""

from __future__ import annotations

from typing import Annotated

from dbus_fast import Variant
from dbus_fast.aio import MessageBus
from dbus_fast.annotations import DBusInt32, DBusSignature, DBusStr, DBusVariant
from dbus_fast.service import ServiceInterface, dbus_method, dbus_signal

NAME = "com.victronenergy.settings"
ADD_SETTING_ERROR = -1  # any failure is negative
TYPES = {"s": "s", "i": "i", "f": "d"}


class Setting(ServiceInterface):
    def __init__(self, settings: FakeSettings, path: str) -> None:
        super().__init__("com.victronenergy.BusItem")
        self.settings = settings
        self.path = path

    @dbus_method()
    def GetValue(self) -> DBusVariant:  # noqa: N802
        return self.settings.values[self.path]

    @dbus_method()
    def GetText(self) -> DBusStr:  # noqa: N802
        return str(self.settings.values[self.path].value)

    @dbus_method()
    def SetValue(self, value: DBusVariant) -> DBusInt32:  # noqa: N802
        self.settings.set(self.path, value)
        new = self.settings.values[self.path]
        self.PropertiesChanged({"Value": new, "Text": Variant("s", str(new.value))})
        return 0

    @dbus_signal()
    def PropertiesChanged(  # noqa: N802
        self, changes: dict[str, Variant]
    ) -> Annotated[dict[str, Variant], DBusSignature("a{sv}")]:
        return changes


class SettingsRoot(ServiceInterface):
    def __init__(self, settings: FakeSettings) -> None:
        super().__init__("com.victronenergy.Settings")
        self.settings = settings

    @dbus_method()
    def AddSetting(  # noqa: N802
        self,
        group: DBusStr,
        name: DBusStr,
        default: DBusVariant,
        item_type: DBusStr,
        minimum: DBusVariant,
        maximum: DBusVariant,
    ) -> DBusInt32:
        if item_type not in TYPES or default.signature != TYPES[item_type]:
            return ADD_SETTING_ERROR
        path = f"/Settings/{group.strip('/')}/{name.strip('/')}"
        self.settings.add(path, default)
        return 0


class FakeSettings:
    def __init__(self, values: dict[str, Variant] | None = None) -> None:
        self.values: dict[str, Variant] = {}
        self.bus: MessageBus | None = None
        self.calls: list[str] = []  # paths of every AddSetting, in order
        for path, value in (values or {}).items():
            self.values[path] = value

    async def start(self, address: str) -> None:
        bus = await MessageBus(bus_address=address).connect()
        bus.export("/Settings", SettingsRoot(self))
        for path in self.values:
            bus.export(path, Setting(self, path))
        await bus.request_name(NAME)
        self.bus = bus

    def stop(self) -> None:
        if self.bus is not None:
            self.bus.disconnect()
            self.bus = None

    def add(self, path: str, default: Variant) -> None:
        self.calls.append(path)
        if path in self.values:
            return
        self.set(path, default)
        assert self.bus is not None
        self.bus.export(path, Setting(self, path))

    def set(self, path: str, value: Variant) -> None:
        if path.startswith("/Settings/Devices/") and path.endswith("/ClassAndVrmInstance"):
            value = Variant("s", self._free(path, value.value))
        self.values[path] = value

    def _free(self, path: str, wanted: str) -> str:
        device_class, _, number = wanted.partition(":")
        taken = {
            v.value
            for p, v in self.values.items()
            if p != path and p.endswith("/ClassAndVrmInstance")
        }
        instance = int(number)
        while f"{device_class}:{instance}" in taken:
            instance += 1
        return f"{device_class}:{instance}"

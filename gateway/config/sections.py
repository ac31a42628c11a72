"""Settings of the gateway's own parts: CAN buses, timing, persistence, web. The topology is a
contract (gateway/contracts/topology.py); the root schema that combines them with the stages'
sections lives in gateway/config/root.py."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from gateway.contracts.section import Section

Scalar = str | int | float | bool


class CanBusSettings(Section):
    """One python-can bus. Keys left out come from python-can's own configuration
    (~/.canrc, ~/can.conf, $CAN_INTERFACE, $CAN_CHANNEL, $CAN_BITRATE), as with python-can."""

    interface: str | None = Field(
        None, description="python-can interface: socketcan, virtual, slcan, pcan, gs_usb, ..."
    )
    channel: str | int | None = Field(
        None, description="python-can channel: can0, vcan0, /dev/ttyACM0, a virtual bus name"
    )
    bitrate: int | None = Field(
        None, ge=10_000, le=1_000_000, description="bit rate in bit/s (500000 for Pylontech)"
    )
    options: dict[str, Scalar] = Field(
        default_factory=dict,
        description="further keyword arguments for can.Bus (e.g. tty_baudrate for slcan)",
    )

    def bus_kwargs(self) -> dict[str, Scalar]:
        """Keyword arguments for can.Bus: only what is set here."""
        kwargs: dict[str, Scalar] = dict(self.options)
        for key in ("interface", "channel", "bitrate"):
            value = getattr(self, key)
            if value is not None:
                kwargs[key] = value
        return kwargs


class BusesSettings(Section):
    battery: CanBusSettings = Field(
        default_factory=lambda: CanBusSettings(interface="socketcan", channel="can0"),
        description="the bus the battery nodes are on",
    )
    inverter: CanBusSettings | None = Field(
        None, description="the bus the inverter is on; leave out when it is the battery bus"
    )
    reconnect_min_s: float = Field(
        1.0, gt=0, description="first delay before reopening a failed bus adapter, s"
    )
    reconnect_max_s: float = Field(
        30.0, gt=0, description="longest delay between reopen attempts (doubling back-off), s"
    )


class TimingSettings(Section):
    tick_s: float = Field(
        0.1, ge=0.01, le=1.0, description="how often the gateway re-evaluates the battery, s"
    )
    node_timeout_s: float = Field(
        3.0,
        ge=0.5,
        le=60.0,
        description="a node whose state, pack or cell frames are older than this is missing "
        "(its data is stale: stop, not last value), s",
    )


class PersistenceSettings(Section):
    state_file: Path = Field(
        Path("moat-bms-state.json"),
        description="where SoC, learned capacity and counters are kept (written atomically)",
    )
    interval_s: float = Field(
        60.0, ge=1.0, le=60.0, description="how often the state is written (at most 60 s), s"
    )


class WebSettings(Section):
    enabled: bool = Field(True, description="serve the web page and the HTTP API")
    host: str = Field(
        "127.0.0.1", description="address to listen on; 0.0.0.0 exposes it to the network"
    )
    port: int = Field(8080, ge=1, le=65535, description="TCP port of the web page")
    token_file: Path = Field(
        Path("moat-bms-token"), description="file holding the API token (created mode 0600)"
    )
    reads_need_token: bool = Field(
        False,
        description="require the API token for reading too (status, events, configuration); "
        "advised when web.host is not loopback",
    )

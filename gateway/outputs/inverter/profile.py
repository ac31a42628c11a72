"""The interface every inverter profile implements.

A profile turns an InverterReport into the CAN frames one inverter family understands. It
is stateful only in remembering last known measurements (gateway/inverter/shaping.py): use
one instance per inverter connection. It does no I/O: the service puts the frames on the bus.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from gateway.contracts.frame import Frame
from gateway.outputs.inverter.report import InverterReport
from gateway.outputs.inverter.shaping import Outgoing, Quirks, Shaper

if TYPE_CHECKING:
    from gateway.outputs.inverter.settings import InverterSettings

FRAME_LENGTH = 8  # classic CAN payload
# The request name of a profile's frame set (`frame_set`): what a periodic profile sends
# every period and a polled family's inverter asks for (Pylontech HV: 0x4200 byte 0 = 0).
FRAME_SET = "frame set"


@dataclass(frozen=True, slots=True)
class InverterRequest:
    """What an inverter asks of the battery in a frame of its family's own (Luxpower 0x300)."""

    frame_id: int
    shutdown: bool  # the inverter asks the battery to shut down
    text: str  # for the event log


class InverterProfile(ABC):
    """One inverter family's view of the Pylontech-compatible protocol."""

    name: ClassVar[str]  # registry key, e.g. "victron"
    min_interval: ClassVar[float] = 0.1  # s: never send two frame sets closer than this
    # True: not even a stop goes out sooner than min_interval after the last set (SMA).
    strict_min_interval: ClassVar[bool] = False
    pads_to_8: ClassVar[bool] = False  # the family wants every frame eight bytes long
    quirks: ClassVar[Quirks] = Quirks()
    default_manufacturer: ClassVar[str] = "PYLON"  # 0x35E name when none is configured
    keepalive_id: ClassVar[int] = 0x305  # the inverter's keepalive (Growatt LV: 0x301)
    # Every identifier `request` may take as a request (none: this family is never asked).
    request_ids: ClassVar[frozenset[int]] = frozenset()
    # 0x35C bits a force-charge request sets (issue 15 item 2): bit 4 and bit 5, each read
    # by some inverters (docs/inverters.md, "Requests"). A family that misreads one of
    # them overrides this.
    force_charge_bits: ClassVar[frozenset[int]] = frozenset({4, 5})
    # The inverter sends its own readings in 0x305/0x306 (SMA): the gateway reports them.
    reads_inverter_readings: ClassVar[bool] = False
    # 0x356 temperature is the average cell temperature (Pylontech LV CAN V1.2, Deye LV V1.2:
    # "average cell temperature"), not the report's (highest cell) temperature. The
    # snapshot carries the extremes only, so the average is (min + max) / 2, as
    # Battery-Emulator and YamBMS send it.
    average_temperature: ClassVar[bool] = False
    # The frame set goes out every period unasked (every Pylontech LV family). False: the
    # inverter polls (Pylontech HV's 0x4200) and the set goes out as the answer, and unasked
    # only when a limit drops or an alarm rises, so that a stop never waits for the poll.
    periodic: ClassVar[bool] = True

    def __init__(self, settings: InverterSettings) -> None:
        if settings.profile != self.name:
            raise ValueError(f"settings are for profile {settings.profile!r}, not {self.name!r}")
        self.settings = settings
        self.pad_to_8: bool = self.pads_to_8 if settings.pad_to_8 is None else settings.pad_to_8
        self._shaper = Shaper(self.quirks, settings, self.average_temperature)

    @classmethod
    def check_settings(cls, settings: InverterSettings) -> None:
        """Raise ValueError when `settings` do not suit this family. Profiles with rules of
        their own (names their inverters accept or refuse) extend it."""
        if settings.period < cls.min_interval:
            raise ValueError(
                f"period {settings.period} s is shorter than the {cls.name} minimum of "
                f"{cls.min_interval} s"
            )

    def frames(self, report: InverterReport) -> list[Frame]:
        """The frame set for `report`, in sending order."""
        return self.frame_set(self.shape(report))

    def shape(self, report: InverterReport) -> Outgoing:
        """The values this family is sent for `report`: its quirks applied, what it was told
        last kept where a measurement is unknown. Call once per frame set sent."""
        return self._shaper.shape(report)

    def frame_set(self, out: Outgoing) -> list[Frame]:
        """The frames carrying the shaped values `out`, in sending order."""
        frames = self.encode(out)
        if self.pad_to_8:
            # Encoded frames are data frames (never remote or error frames): the identifier,
            # its width and the data say all of one (without dataclasses.replace's cost).
            frames = [Frame(f.id, f.data.ljust(FRAME_LENGTH, b"\0"), f.extended) for f in frames]
        return frames

    def inverter_request(self, frame: Frame) -> InverterRequest | None:
        """`frame` from the inverter read as a request of this family, or None when it is
        none of this family's request frames (V1.2 has none: the 0x305 keepalive only)."""
        return None

    def request(self, frame: Frame) -> str | None:
        """The name of what the inverter asks for with `frame` (FRAME_SET for the frame set,
        or a name `answer` knows), None when `frame` asks for nothing. The Pylontech LV
        families are never asked: they send every period."""
        return None

    def answer(self, request: str, out: Outgoing) -> list[Frame]:
        """The frames answering `request` (a name `request` returned) for the shaped values
        `out`; FRAME_SET is the frame set."""
        if request == FRAME_SET:
            return self.frame_set(out)
        raise ValueError(f"the {self.name} profile answers no request {request!r}")

    @abstractmethod
    def encode(self, out: Outgoing) -> list[Frame]:
        """The frames carrying `out`, each at its DBC length."""

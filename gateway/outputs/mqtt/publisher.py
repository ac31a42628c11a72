"""What the MQTT output publishes after a tick: pure, driven by the view's time.

The state goes out every state_interval_s and at once when the phase or the alarms change;
the nodes every node_interval_s; each event as it happens. The intervals run on the view's
time (the gateway's clock); a clock that goes back restarts them. The energy counters integrate
the terminal power between views (trapezoid rule), each step clamped like the SoC count so
that a pause or a clock jump adds nothing.

No state goes out until the energy totals of the earlier run are known (`restore_energy`,
after the client read the retained state back, or learnt that there is none): a state with
counters that started from 0 would overwrite the retained totals on the broker, and Home
Assistant's total_increasing sensors would take the drop for a meter reset.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace

from gateway.contracts.decision import Alarm, Phase, Severity
from gateway.outputs.mqtt import payloads
from gateway.outputs.mqtt.topics import Topics
from gateway.outputs.seam import BatteryView

MAX_STEP_S = 5.0  # a longer gap between two views counts as this long
WH_PER_KWH = 1000.0
S_PER_H = 3600.0


@dataclass(frozen=True, slots=True)
class Message:
    topic: str
    payload: bytes
    retain: bool


class Publisher:
    """Turns views into messages; keeps the intervals, the last phase and alarms, and the
    energy counters."""

    def __init__(
        self,
        topics: Topics,
        *,
        state_interval_s: float,
        node_interval_s: float,
        cells: bool,
    ) -> None:
        self.topics = topics
        self.state_interval_s = state_interval_s
        self.node_interval_s = node_interval_s
        self.cells = cells
        self.energy = payloads.Energy()
        self.energy_known = False  # the earlier run's totals are added (restore_energy)
        self._held: BatteryView | None = None  # the newest view whose state waits for them
        self._last: tuple[float, float] | None = None  # (time, power W) of the previous view
        self._next_state = -math.inf
        self._next_nodes = -math.inf
        self._shown: tuple[Phase, dict[Alarm, Severity]] | None = None

    def offer(self, view: BatteryView) -> list[Message]:
        """The messages due after this view (often none)."""
        self._count_energy(view)
        messages = [
            Message(self.topics.event, payloads.encode(payloads.event(e)), retain=False)
            for e in view.events
        ]
        now = view.time
        shown = (view.decision.phase, view.decision.alarms)
        if _due(now, self._next_state, self.state_interval_s) or shown != self._shown:
            if self.energy_known:
                messages.append(self._state(view))
            else:
                self._held = view  # goes out when the totals are known (restore_energy)
        if _due(now, self._next_nodes, self.node_interval_s):
            self._next_nodes = now + self.node_interval_s
            messages += self.nodes(view)
        return messages

    def _state(self, view: BatteryView) -> Message:
        self._next_state = view.time + self.state_interval_s
        self._shown = (view.decision.phase, dict(view.decision.alarms))
        state = payloads.state(view, self.energy)
        return Message(self.topics.state, payloads.encode(state), retain=True)

    def nodes(self, view: BatteryView) -> list[Message]:
        return [
            Message(
                self.topics.node(ns.node),
                payloads.encode(payloads.node(view, ns, self.cells)),
                retain=True,
            )
            for ns in sorted(view.snapshot.nodes.values(), key=lambda n: n.node)
        ]

    def _count_energy(self, view: BatteryView) -> None:
        snap = view.snapshot
        power = snap.voltage * snap.current if snap.valid else math.nan
        last, self._last = self._last, (view.time, power)
        if last is None or not math.isfinite(power) or not math.isfinite(last[1]):
            return
        dt = min(max(view.time - last[0], 0.0), MAX_STEP_S)
        kwh = (power + last[1]) / 2 * dt / S_PER_H / WH_PER_KWH
        if kwh > 0:
            self.energy = replace(self.energy, charged_kwh=self.energy.charged_kwh + kwh)
        elif kwh < 0:
            self.energy = replace(self.energy, discharged_kwh=self.energy.discharged_kwh - kwh)

    def restore_energy(self, earlier: payloads.Energy | None) -> list[Message]:
        """Continue from the totals of an earlier run (read back from the retained state;
        None: the broker has none), so that Home Assistant's total_increasing counters do
        not see a reset. From now on the state goes out; returns the one that waited."""
        if earlier is not None:
            self.energy = payloads.Energy(
                self.energy.charged_kwh + earlier.charged_kwh,
                self.energy.discharged_kwh + earlier.discharged_kwh,
            )
        self.energy_known = True
        held, self._held = self._held, None
        return [] if held is None else [self._state(held)]


def _due(now: float, next_at: float, interval: float) -> bool:
    """Time for the next one; also when the clock went back (NTP), which would otherwise
    silence the topic for as long as it jumped."""
    return now >= next_at or now < next_at - interval


def energy_from_state(payload: bytes) -> payloads.Energy | None:
    """The energy totals in a retained state payload, or None when it has none usable."""
    try:
        data = json.loads(payload)
        charged = float(data["energy_charged_kwh"])
        discharged = float(data["energy_discharged_kwh"])
    except (ValueError, TypeError, KeyError):
        return None
    if not (math.isfinite(charged) and math.isfinite(discharged)):
        return None
    if charged < 0 or discharged < 0:
        return None
    return payloads.Energy(charged, discharged)

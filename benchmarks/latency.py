"""2. Reaction latency: an over-voltage cell frame entering the battery bus -> the first
inverter frame that carries the stop (0x351 with CCL 0 or 0x35C with charge enable off).

The real service (gateway/runtime/service.py: GatewayCanPort reader threads, urgent tick, tick
loop, python-can virtual buses) runs in the main thread's event loop; a driver thread plays
the background load (the configured nodes' frames, played fast enough to fill 50 % of 500
kbit/s), sends the keepalive, injects the over-voltage CellExtremes frame and waits for the
stop on the inverter bus. Each frame is stamped with time.perf_counter() as it goes onto its
bus (StampingBus, like an adapter's hardware timestamp);
the latency is the difference of the two stamps.

The reference is the periodic emitter of the same run: after the trials, the driver keeps
the load going and notes when each periodic 0x351 goes onto the inverter bus. Without the
urgent path a stop would wait for the next of them: at a random phase, on average half the
measured period, at the 99th percentile 0.99 of it, at worst the period.

Between trials the battery recovers: the packs report 0 A while the inverter bus says stop
(an inverter that follows the limits), and the gateway's clock (injected: monotonic + an
offset the driver moves) jumps by more than a period, tick by tick, until the frame set says
charging is allowed again; then it jumps by a random fraction of a period, so each trigger
falls at a random phase of the frame-set period; a random pause of up to one tick randomises
the phase against the tick loop.
"""

from __future__ import annotations

import itertools
import logging
import random
import tempfile
import threading
import time
from pathlib import Path

import anyio
import can
from can.interfaces.virtual import VirtualBus

from benchmarks.common import Result, median, mix_bits, percentile, settings
from gateway.codec import pylontech_lv as inverter_codec
from gateway.contracts.frame import Frame
from gateway.runtime.service import Gateway
from gateway.sim.nodeframes import NodeFrames, frame_mix

TARGET_P99_MS = 2.0
PERIODIC_S = 12.0  # how long the periodic frame sets are watched after the trials
BITRATE = 500_000
LOAD = 0.5
STRINGS = [[0], [1], [2], [3]]  # four 16-cell packs in parallel
LIMITS_ID = inverter_codec.FRAME_IDS["BatteryLimits"]
FLAGS_ID = inverter_codec.FRAME_IDS["RequestFlags"]
KEEPALIVE_ID = inverter_codec.FRAME_IDS["InverterKeepalive"]
# Between trials the limits must come back. The strategy holds an increase for 30 s, lets
# none come within 15 min of the last change and allows 30 an hour (anti-oscillation); all
# three only delay increases, never a stop, so this benchmark sets the hold and the wait to 0
# and the budget out of reach, and jumps the clock by more than a period (the emitter sends
# increases with the next periodic set).
JUMP_S = 1.5
# After a trial the highest cell's filtered value (strategy/resistance.py, 10 s) takes some
# seconds of the gateway's time to fall back below the charge derating.
JUMPS = 40


class StampingBus(VirtualBus):
    """A python-can virtual bus that stamps every frame with time.perf_counter() as it goes
    onto the bus, like an adapter's hardware timestamp: the latency is measured between the
    two frames on their buses, not including how late the driver thread gets to see them."""

    def __init__(self, channel: str, **kwargs: object) -> None:
        super().__init__(channel=channel, preserve_timestamps=True)

    def send(self, msg: can.Message, timeout: float | None = None) -> None:
        msg.timestamp = time.perf_counter()
        super().send(msg, timeout)


class WarpClock:
    """time.monotonic() plus an offset the driver moves forward."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.monotonic() + self.offset


def _is_stop(msg: can.Message) -> bool | None:
    """True: a stop, False: charging allowed, None: not a frame that says either."""
    if msg.arbitration_id == LIMITS_ID:
        return inverter_codec.decode_battery_limits(bytes(msg.data)).charge_current_limit == 0
    if msg.arbitration_id == FLAGS_ID:
        flags = inverter_codec.decode_request_flags(bytes(msg.data))
        return not flags.charge_enable
    return None


class Driver(threading.Thread):
    def __init__(
        self, gw: Gateway, battery: str, inverter: str, clock: WarpClock, trials: int
    ) -> None:
        super().__init__(name="latency-driver", daemon=True)
        self.gw = gw
        self.clock = clock
        self.trials = trials
        self.battery = StampingBus(battery)
        self.inverter = StampingBus(inverter)
        s = settings(STRINGS)
        frames = frame_mix(s.battery.topology, 40, amps=1.0)  # charging, but slowly
        self.background = [
            can.Message(arbitration_id=f.id, data=f.data, is_extended_id=False) for f in frames
        ]
        # The inverter follows the gateway: while charging is stopped the packs report 0 A.
        # (Kept charging, they look like an inverter that ignores CCL 0, and the strategy
        # rightly holds the CVL at the pack voltage: charging never comes back.) Same frames
        # in the same order, only PackStatus differs, so the alive counters run on.
        resting = frame_mix(s.battery.topology, 40, amps=0.0)
        self.background_resting = [
            can.Message(arbitration_id=f.id, data=f.data, is_extended_id=False) for f in resting
        ]
        self.charging = True  # what the inverter bus said last
        self.rate = LOAD * BITRATE / mix_bits(frames)  # frames/s
        self.next_bg = 0
        self.next_keepalive = 0.0
        self.sent_bg = 0
        self.bg_start = 0.0
        over = NodeFrames(0, 16).cell_extremes(vmax=3.70)
        normal = NodeFrames(0, 16).cell_extremes()
        self.over = can.Message(arbitration_id=over.id, data=over.data, is_extended_id=False)
        self.over_again = can.Message(arbitration_id=over.id, data=over.data, is_extended_id=False)
        self.over_active = False
        self.normal = can.Message(arbitration_id=normal.id, data=normal.data, is_extended_id=False)
        self.keepalive = can.Message(
            arbitration_id=KEEPALIVE_ID, data=bytes(8), is_extended_id=False
        )
        self.latencies: list[float] = []  # bus to bus
        self.observed: list[float] = []  # until the driver thread had the frame
        self.timeouts = 0
        self.error: BaseException | None = None
        self.done = threading.Event()
        self.rng = random.Random(7)
        self.periodic_s = PERIODIC_S
        self.period = float("nan")  # the periodic emitter's, measured after the trials

    def pump(self) -> None:
        """Send the background frames due by now (50 % of the bus, evenly paced)."""
        now = time.perf_counter()
        if now >= self.next_keepalive:
            self.inverter.send(self.keepalive)
            self.next_keepalive = now + 0.2
        due = int((now - self.bg_start) * self.rate)
        bg = self.background if self.charging else self.background_resting
        while self.sent_bg < due:
            msg = bg[self.next_bg]
            if self.over_active and msg.arbitration_id == self.over.arbitration_id:
                msg = self.over_again  # the cell stays over its limit until the stop
            self.battery.send(msg)
            self.next_bg = (self.next_bg + 1) % len(bg)
            self.sent_bg += 1

    def wait_for(self, stop: bool | None, timeout: float) -> tuple[bool, float, float] | None:
        """Pump the background until the inverter bus says `stop` (None: either): what it
        said, that frame's time on the bus and the time this thread saw it (perf_counter)."""
        end = time.perf_counter() + timeout
        while time.perf_counter() < end:
            msg = self.inverter.recv(timeout=0.0005)
            if msg is not None:
                seen = time.perf_counter()
                said = _is_stop(msg)
                if said is not None:
                    self.charging = not said
                    if stop is None or said is stop:
                        return said, msg.timestamp, seen
            self.pump()
        return None

    def periodic_period(self, seconds: float) -> float:
        """The median interval between the 0x351 frames the gateway sends of its own accord
        (no trigger, no clock jump), watched for `seconds` under the same load (s)."""
        stamps: list[float] = []
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            msg = self.inverter.recv(timeout=0.0005)
            if msg is not None and msg.arbitration_id == LIMITS_ID:
                stamps.append(msg.timestamp)
            self.pump()
        intervals = [b - a for a, b in itertools.pairwise(stamps)]
        if not intervals:
            raise RuntimeError("no periodic 0x351 frames after the trials")
        return median(intervals)

    def drain(self) -> None:
        while self.inverter.recv(0) is not None:
            pass

    def recover(self) -> None:
        """Jump the gateway's clock by more than a period until charging is allowed again.
        After each jump the next tick sends the frame set (its period has passed): that
        set says whether to jump again."""
        self.battery.send(self.normal)
        for _ in range(JUMPS):
            self.drain()
            self.clock.offset += JUMP_S
            self.inverter.send(self.keepalive)
            said = self.wait_for(None, 2.0)
            if said is not None and not said[0]:
                return
        d = self.gw.core.decision
        raise RuntimeError(f"charging was not allowed again after {JUMPS} jumps: {d}")

    def run(self) -> None:
        try:
            while not (self.gw.battery.connected and self.gw.inverter.connected):
                time.sleep(0.01)
            self.bg_start = time.perf_counter()
            self.recover()  # warm up: nodes present, relays closed, limits ramped up
            for _ in range(self.trials):
                self.recover()
                # A random phase against the frame-set period (a clock jump of up to one
                # period) and against the tick loop (a pause of up to one tick).
                self.clock.offset += self.rng.uniform(0.0, 1.0)
                pause = time.perf_counter() + self.rng.uniform(0.0, 0.1)
                while time.perf_counter() < pause:
                    self.pump()
                    time.sleep(0.0005)
                self.drain()
                self.over_active = True
                self.battery.send(self.over)
                start = self.over.timestamp  # stamped as it went onto the bus
                times = self.wait_for(True, 2.0)
                self.over_active = False
                if times is None:
                    self.timeouts += 1
                else:
                    self.latencies.append(times[1] - start)
                    self.observed.append(times[2] - start)
            self.recover()
            self.period = self.periodic_period(self.periodic_s)
        except BaseException as exc:
            self.error = exc
        finally:
            self.battery.shutdown()
            self.inverter.shutdown()
            self.done.set()


async def _serve(gw: Gateway, driver: Driver) -> None:
    async with anyio.create_task_group() as tg:
        tg.start_soon(gw.run)
        await anyio.to_thread.run_sync(driver.done.wait, abandon_on_cancel=True)
        tg.cancel_scope.cancel()


def run(quick: bool = False) -> Result:
    trials = 50 if quick else 1000
    res = Result("latency", "Reaction latency: over-voltage frame -> inverter stop")
    logging.getLogger("gateway").setLevel(logging.ERROR)
    tag = f"bench-latency-{time.monotonic_ns()}"
    with tempfile.TemporaryDirectory() as tmp:
        clock = WarpClock()
        s = settings(
            STRINGS,
            16,
            Path(tmp) / "state.json",
            strategy={
                "limits": {"hold_s": 0, "relax_after_s": 0, "max_increases_per_hour": 1_000_000}
            },
            buses={
                "battery": {"interface": "virtual", "channel": f"{tag}-bat", "bitrate": BITRATE},
                "inverter": {"interface": "virtual", "channel": f"{tag}-inv", "bitrate": BITRATE},
            },
        )
        gw = Gateway(s, clock=clock, open_bus=lambda **kw: StampingBus(kw["channel"]))
        gw.core.set_soc(40.0, clock())
        driver = Driver(gw, f"{tag}-bat", f"{tag}-inv", clock, trials)
        if quick:
            driver.periodic_s = 4.0
        driver.start()
        t0 = time.perf_counter()
        anyio.run(_serve, gw, driver)
        wall = time.perf_counter() - t0
        if driver.error is not None:
            raise driver.error
    lat = [x * 1000 for x in driver.latencies]
    p50, p99 = median(lat), percentile(lat, 99)
    bits = mix_bits([Frame(m.arbitration_id, bytes(m.data)) for m in driver.background])
    load = driver.sent_bg / wall * bits / BITRATE
    res.params = {
        "trials": trials,
        "topology": STRINGS,
        "background_load": round(load, 3),
        "bitrate": BITRATE,
        "background_frames_per_s": round(driver.rate),
        "tick_s": s.timing.tick_s,
    }
    period_ms = driver.period * 1000
    emitter = "periodic emitter, this run"
    res.add("p50", p50, "ms", period_ms / 2, emitter)
    res.add(
        "p99",
        p99,
        "ms",
        0.99 * period_ms,
        emitter,
        f"<= {TARGET_P99_MS:g}",
        p99 <= TARGET_P99_MS and driver.timeouts == 0,
    )
    res.add("max", max(lat), "ms", period_ms, emitter)
    res.add("periodic emitter's period", period_ms, "ms", 1000.0, "profile's period")
    seen = [x * 1000 for x in driver.observed]
    res.add("p99 as seen by the driver thread", percentile(seen, 99), "ms", p99, "p99 on the bus")
    res.notes.append(
        f"{len(lat)} stops seen, {driver.timeouts} trials without a stop within 2 s; "
        f"{gw.urgent_ticks} urgent ticks; background {100 * load:.0f} % of "
        f"{BITRATE // 1000} kbit/s measured over the run"
    )
    return res

"""1. Gateway ingest: frames/s through the real pipeline, a bare cantools decode loop over the
same frames, and the rates of a saturated bus.

The pipeline is the service's own: python-can Messages in batches as GatewayCanPort's reader thread
hands them over (Gateway.on_battery_batch: receive -> decode -> model), and the strategy tick
(Gateway.tick: model -> SoC -> strategy -> inverter frames) every tick_s of wall time, as the
service's tick loop runs it in the same thread. Frames are stamped with the real clock.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import can
import cantools

from benchmarks.common import ROOT, Result, at_least, mix_bits, settings
from gateway.runtime.canport import MAX_BATCH, frame_of
from gateway.runtime.service import Gateway
from gateway.sim.nodeframes import frame_mix
from gateway.sources.moat_nodes import busload

TARGET = 100_000  # frames/s on one core
STRINGS = [[0, 1], [2, 3]]  # two parallel strings of two 16-cell nodes: a 48 V home battery
MIX_SECONDS = 40  # a multiple of every period and of 1.6 s (alive counters wrap seamlessly)


def _pipeline(gw: Gateway, batches: list[list[can.Message]], duration: float) -> tuple[int, float]:
    tick_s = gw.settings.timing.tick_s
    clock = time.monotonic
    frames = 0
    start = time.perf_counter()
    next_tick = clock() + tick_s
    while True:
        for batch in batches:
            # As the port's reader thread hands them over: Messages turned into Frames.
            gw.on_battery_batch([frame_of(m) for m in batch])
            frames += len(batch)
            if clock() >= next_tick:
                gw.tick()
                next_tick += tick_s
        elapsed = time.perf_counter() - start
        if elapsed >= duration:
            return frames, elapsed


def run(quick: bool = False) -> Result:
    duration = 2.0 if quick else 8.0
    res = Result("ingest", "Gateway ingest (frames/s, one core)")
    with tempfile.TemporaryDirectory() as tmp:
        s = settings(STRINGS, 16, Path(tmp) / "state.json")
        frames = frame_mix(s.battery.topology, MIX_SECONDS)
        messages = [
            can.Message(arbitration_id=f.id, data=f.data, is_extended_id=False) for f in frames
        ]
        batches = [messages[k : k + MAX_BATCH] for k in range(0, len(messages), MAX_BATCH)]
        gw = Gateway(s, clock=time.monotonic)
        _pipeline(gw, batches, 0.5)  # warm up: nodes present, strategy running
        count, elapsed = _pipeline(gw, batches, duration)
        pipeline = count / elapsed
        ignored = sum(r.state_frames_ignored for r in gw.core.model.nodes.values())
        counters = gw.core.battery_counters
        res.notes.append(
            f"{gw.core.ticks} strategy ticks; {counters.malformed} malformed, "
            f"{counters.unknown} unknown, "
            f"{ignored} NodeState frames ignored (alive counter)"
        )

        # The same pipeline without python-can Messages: GatewayCore alone.
        core = gw.core
        now = time.monotonic()
        start = time.perf_counter()
        reps = 0
        while time.perf_counter() - start < duration / 2:
            for frame in frames:
                core.on_battery_frame(frame, now)
            reps += 1
        core_only = reps * len(frames) / (time.perf_counter() - start)

        db = cantools.database.load_file(str(ROOT / "dbc" / "moat_bms.dbc"), frame_id_mask=0x7F0)
        lookup = db.get_message_by_frame_id  # applies the mask, as `cantools decode -m`
        start = time.perf_counter()
        reps = 0
        while time.perf_counter() - start < duration / 2:
            for m in messages:
                lookup(m.arbitration_id).decode(m.data)
            reps += 1
        cantools_rate = reps * len(messages) / (time.perf_counter() - start)

    bits = mix_bits(frames)
    nominal = busload.frame_bits(8, "none")
    worst = busload.frame_bits(8, "worst")
    bus_1m = busload.saturated_rate(1_000_000, nominal)
    res.params = {
        "topology": STRINGS,
        "cells_per_node": 16,
        "mix_frames": len(frames),
        "mix_bits_per_frame": round(bits, 1),
        "batch": MAX_BATCH,
        "tick_s": s.timing.tick_s,
        "duration_s": duration,
    }
    res.add(
        "pipeline",
        pipeline,
        "frames/s",
        cantools_rate,
        "cantools decode loop",
        f">= {TARGET:,}",
        at_least(pipeline, TARGET),
    )
    res.add("pipeline / saturated 1 Mbit/s bus", pipeline, "frames/s", bus_1m, "1 Mbit/s bus")
    res.add("GatewayCore alone (no can.Message)", core_only, "frames/s", pipeline, "pipeline")
    res.add("cantools decode loop", cantools_rate, "frames/s", pipeline, "pipeline")
    for rate, kbit in ((500_000, 500), (1_000_000, 1000)):
        for label, per_frame in (
            ("nominal 111 bits", nominal),
            (f"this mix {bits:.1f} bits", bits),
            ("worst-case stuffing 135 bits", worst),
        ):
            sat = busload.saturated_rate(rate, per_frame)
            res.add(f"saturated {kbit} kbit/s bus ({label})", sat, "frames/s", pipeline, "pipeline")
    return res

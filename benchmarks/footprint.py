"""7. Gateway footprint on a GX-class device: the time from process start to the first 0x351
with restored state, the imports that cost most, and the resident memory after an hour of a
4-node system.

Each figure comes from a fresh interpreter (a child process), so nothing the benchmarks
imported before counts:

- Start-up: `moat-bms run` (gateway.cli.main, the installed command's entry point) with a
  configuration of two strings of two 16-cell nodes on python-can virtual buses, the web
  page served on a free loopback port and a state file from an earlier run (SoC 63 %). A
  thread of the same process opens the inverter bus first and notes the wall time the
  first 0x351 arrives (and the SoC of the 0x355 after it, to show the state was restored);
  the figure is that time minus the time just before the parent started the process, so
  it includes the interpreter's own start. The same child run with `python -X importtime`
  gives the imports that cost most (cumulative, a package's own imports included).
- Memory: the service's Gateway (gateway/runtime/service.py) on virtual buses, fed a
  simulated hour of the four nodes' frames (every frame of the DBC at its period, as
  benchmarks/ingest.py plays them) through Gateway.on_battery_batch, a Gateway.tick every
  100 ms of simulated time, its frames sent through GatewayCanPort.send and the state saved
  at the configured interval; the clock is injected, so the hour takes a minute or less.
  VmRSS from /proc/self/status before and after the hour, and VmHWM (the peak).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import ROOT, Result, settings
from gateway.core import GatewayCore
from gateway.record.persist import StateStore

STRINGS = [[0, 1], [2, 3]]
TARGET_RSS_MB = 60.0
TARGET_START_S = 2.0
RESTORED_SOC = 63.0
MIX_SECONDS = 40  # as benchmarks/ingest.py: alive counters wrap seamlessly

# The child of the start-up figure: opens the inverter bus, then runs `moat-bms run`.
_START_CHILD = """
import os, sys, threading, time
import can

def watch(channel):
    bus = can.Bus(interface="virtual", channel=channel)
    first = None
    while True:
        msg = bus.recv(5.0)
        if msg is None:
            print("TIMEOUT", flush=True)
            os._exit(1)
        if msg.arbitration_id == 0x351 and first is None:
            first = time.time()
        elif msg.arbitration_id == 0x355 and first is not None:
            soc = int.from_bytes(msg.data[0:2], "little")
            rss = 0
            for line in open("/proc/self/status"):
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1])
            print("FIRST351", first, soc, rss, flush=True)
            os._exit(0)

config, channel = sys.argv[1], sys.argv[2]
threading.Thread(target=watch, args=(channel,), daemon=True).start()
time.sleep(0.05)  # the watcher's bus is open before the gateway sends
from gateway.cli import main
main(["run", "--config", config])
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _write_setup(tmp: Path) -> tuple[Path, str]:
    """A configuration file and the state file of an earlier run; the inverter channel."""
    tag = f"bench-footprint-{os.getpid()}-{time.monotonic_ns()}"
    state_file = tmp / "state.json"
    core = GatewayCore(settings(STRINGS, 16), 1_000_000.0, None)
    core.set_soc(RESTORED_SOC, 1_000_000.0)
    StateStore(state_file).save(core.persistent_state())
    config = {
        "battery": {"topology": {"strings": STRINGS, "cells_per_node": 16, "capacity_ah": 100}},
        "buses": {
            "battery": {"interface": "virtual", "channel": f"{tag}-bat", "bitrate": 500_000},
            "inverter": {"interface": "virtual", "channel": f"{tag}-inv", "bitrate": 500_000},
        },
        "inverter": {"profile": "pylontech"},
        "web": {"enabled": True, "host": "127.0.0.1", "port": _free_port()},
        "persistence": {"state_file": str(state_file)},
    }
    path = tmp / "moat-bms.yaml"
    path.write_text(json.dumps(config))  # JSON is YAML
    return path, f"{tag}-inv"


def _start_child(config: Path, channel: str, importtime: bool) -> tuple[float, int, int, str]:
    """Seconds from process start to the first 0x351, the SoC that followed (%), VmRSS
    then (kB) and the -X importtime report."""
    args = [sys.executable]
    if importtime:
        args += ["-X", "importtime"]
    args += ["-c", _START_CHILD, str(config), channel]
    start = time.time()
    done = subprocess.run(
        args, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False, env=_env()
    )
    for line in done.stdout.splitlines():
        if line.startswith("FIRST351"):
            _, first, soc, rss = line.split()
            return float(first) - start, int(soc), int(rss), done.stderr
    raise RuntimeError(f"no 0x351 from `moat-bms run`:\n{done.stdout}\n{done.stderr[-3000:]}")


def _env() -> dict[str, str]:
    """The child imports this checkout's gateway and firmware, as the parent does."""
    env = dict(os.environ)
    paths = [str(ROOT), str(ROOT / "firmware")]
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    return env


def costly_imports(report: str, count: int = 8) -> list[tuple[str, float]]:
    """The top-level packages of an -X importtime report by cumulative time (s)."""
    tops: dict[str, float] = {}
    for line in report.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _, cumulative, name = line[len("import time:") :].split("|")
        if not cumulative.strip().isdigit():
            continue  # the header
        indent = len(name) - len(name.lstrip())
        if indent <= 1:  # imported by the program itself, not by another module
            tops[name.strip()] = tops.get(name.strip(), 0.0) + int(cumulative) / 1e6
    return sorted(tops.items(), key=lambda kv: -kv[1])[:count]


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def hour_child(seconds: float) -> dict[str, Any]:
    """In a fresh process: the service's Gateway through `seconds` of simulated traffic."""
    import can  # noqa: PLC0415 -- counted in this process only

    from gateway.runtime.service import Gateway  # noqa: PLC0415
    from gateway.sim.nodeframes import timed_frame_mix  # noqa: PLC0415

    with tempfile.TemporaryDirectory() as tmp:
        s = settings(STRINGS, 16, Path(tmp) / "state.json")
        mix = timed_frame_mix(s.battery.topology, MIX_SECONDS)
        now = [1_000_000.0]
        gw = Gateway(s, clock=lambda: now[0])
        tag = f"bench-hour-{os.getpid()}"
        # The ports' buses, as GatewayCanPort.run opens them (nobody else listens).
        gw.battery.bus = can.Bus(interface="virtual", channel=f"{tag}-bat")
        gw.inverter.bus = can.Bus(interface="virtual", channel=f"{tag}-inv")
        rss_start = _status_kb("VmRSS")
        tick_s = s.timing.tick_s
        save_s = s.persistence.interval_s
        t0 = now[0]
        next_tick = next_save = 0.0
        batch: list[Any] = []
        frames = 0
        for lap in range(int(seconds // MIX_SECONDS)):
            base = lap * MIX_SECONDS
            for at, frame in mix:
                t = base + at
                if t >= next_tick:
                    now[0] = t0 + next_tick
                    if batch:
                        gw.on_battery_batch(batch)
                        frames += len(batch)
                        batch = []
                    gw.tick()
                    next_tick += tick_s
                    if next_tick >= next_save:
                        gw.store.save(gw.core.persistent_state())
                        next_save += save_s
                batch.append(frame)
        nodes = len(gw.core.model.nodes)
        return {
            "rss_start_kb": rss_start,
            "rss_end_kb": _status_kb("VmRSS"),
            "hwm_kb": _status_kb("VmHWM"),
            "frames": frames,
            "ticks": gw.core.ticks,
            "nodes": nodes,
            "simulated_s": seconds,
        }


def run(quick: bool = False) -> Result:
    res = Result("footprint", "Gateway footprint: start-up, imports, memory after an hour")
    with tempfile.TemporaryDirectory() as tmp:
        config, channel = _write_setup(Path(tmp))
        times = []
        for _ in range(1 if quick else 3):
            seconds, soc, rss_first, _ = _start_child(config, channel, importtime=False)
            times.append(seconds)
        _, _, _, report = _start_child(config, channel, importtime=True)
    start_s = min(times)  # the machine is shared: the least disturbed run
    if soc != round(RESTORED_SOC):
        raise RuntimeError(f"state not restored: the first 0x355 says SoC {soc} %")
    res.add(
        "start to first 0x351 (`moat-bms run`, state restored, web page on)",
        start_s,
        "s",
        60.0,
        "SMA's 60 s without frames",
        f"<= {TARGET_START_S:g}",
        start_s <= TARGET_START_S,
    )
    res.add("resident memory at the first 0x351", rss_first / 1024, "MB", TARGET_RSS_MB, "target")
    seconds = 600.0 if quick else 3600.0
    hour = subprocess.run(
        [sys.executable, "-m", "benchmarks.footprint", "--hour", str(seconds)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        check=True,
        env=_env(),
    )
    figures = json.loads(hour.stdout.strip().splitlines()[-1])
    rss_end = figures["rss_end_kb"] / 1024
    res.add(
        f"resident memory after {seconds / 3600:g} h of 4 nodes",
        rss_end,
        "MB",
        TARGET_RSS_MB,
        "target",
        f"<= {TARGET_RSS_MB:g}",
        rss_end <= TARGET_RSS_MB,
    )
    res.add(
        "growth over that time",
        (figures["rss_end_kb"] - figures["rss_start_kb"]) / 1024,
        "MB",
        figures["rss_start_kb"] / 1024,
        "resident at the start of the traffic",
    )
    res.add("peak resident memory (VmHWM)", figures["hwm_kb"] / 1024, "MB", TARGET_RSS_MB, "target")
    top = costly_imports(report)
    for name, cost in top[:5]:
        res.add(f"import {name}", cost, "s", start_s, "start-up")
    res.params = {
        "topology": STRINGS,
        "cells_per_node": 16,
        "start_runs": len(times),
        "start_s_all": [round(t, 3) for t in times],
        "imports": [(n, round(c, 4)) for n, c in top],
        "hour": figures,
    }
    res.notes.append(
        f"start-up: least of {len(times)} runs ({', '.join(f'{t:.2f}' for t in times)} s) of "
        "`moat-bms run` in a fresh interpreter; memory: the service's Gateway fed "
        f"{figures['frames']:,} frames and {figures['ticks']:,} ticks of simulated time in a "
        "fresh interpreter (web page not served)"
    )
    return res


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--hour":
        print(json.dumps(hour_child(float(sys.argv[2]))))
    else:
        sys.exit("usage: python -m benchmarks.footprint --hour SECONDS")

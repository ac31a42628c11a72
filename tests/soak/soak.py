"""Soak: days of simulated daily cycles at full speed, with the figures that matter.

    python -m tests.soak --days 7 --nodes 4          # what `make soak` runs
    watched(sim, ...); traced(sim, ...)             # the week scenario in `make test`

The whole system runs simulated (gateway.sim.SimSystem: the real firmware nodes, the real
GatewayCore, battery physics, a simulated inverter) through sun, clouds and a household load,
as fast as the CPU allows. Checked:

- memory: tracemalloc traces the end of the run (tracing costs about five times the run
  time, so the first days run untraced): a warm-up as long as the gateway's history ring,
  then `trace_hours` measured. The warm-up matters: a full ring replaces a sample allocated
  before tracing with one allocated during it, which would look like growth; after it, every
  object freed was allocated under tracing. The measured growth, scaled to the whole run
  after the first day, must stay below 5 MB. The resident set size is recorded once a
  simulated day as a cross-check;
- no stuck phase: no stop without a cause, absorption ends within its cap, float returns to
  bulk within its delay once the SoC is below the rebulk threshold;
- the gateway's SoC against the simulator's truth: below 3 % all along (the battery starts
  set up, i.e. with its SoC known, so the error is measured from the first second);
- the limits the inverter receives: CVL never 0, CCL and DCL within 0 .. the configured
  maximum, and no more rises per hour than the anti-oscillation rule allows.

The simulated buses are the simulator's in-memory python-can buses (gateway/sim/membus.py,
the same run as on python-can's virtual bus at half the cost: tests/sim/test_membus.py).
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import random
import resource
import sys
import time
import tracemalloc
from dataclasses import asdict, dataclass, field
from pathlib import Path

from gateway.contracts.decision import Phase
from gateway.record.history import History
from gateway.sim.power import HouseholdLoad, SolarDay
from gateway.sim.scenarios import base_setup, rise_episodes
from gateway.sim.system import SimSetup, SimSystem

DAY = 86400.0
MEMORY_LIMIT_MB = 5.0
SOC_ERROR_LIMIT = 3.0  # %
STOP_GRACE_S = 120.0  # the start-up stop (no data yet) may last this long
PHASE_MARGIN_S = 120.0


@dataclass
class SoakPlan:
    days: float = 7.0
    nodes: int = 4  # parallel strings of one 16-cell node each
    step_s: float = 1.0
    trace_hours: float = 6.0
    seed: int = 0
    # The gateway's history ring (gateway/record/history.py, 6 h by default), shortened for short
    # runs: memory is measured after a traced warm-up as long as the ring (see run_soak).
    history_hours: float | None = None


@dataclass
class SoakResult:
    plan: SoakPlan
    steps: int = 0
    wall_s: float = 0.0
    traced_s: float = 0.0  # simulated seconds under tracemalloc
    traced_growth_mb: float = 0.0  # growth of traced memory over the traced window
    memory_growth_mb: float = 0.0  # the traced growth scaled to the run after its first day
    top_growth: list[str] = field(default_factory=list)
    rss_mb: list[float] = field(default_factory=list)  # once a simulated day
    soc_error_max: float = 0.0  # %
    soc_error_at: float = 0.0  # simulated s
    soc_samples: int = 0
    most_rises_per_hour: int = 0
    allowed_rises_per_hour: int = 0
    longest_phase_s: dict[str, float] = field(default_factory=dict)
    phases_seen: list[str] = field(default_factory=list)
    charged_ah: float = 0.0
    discharged_ah: float = 0.0
    problems: list[str] = field(default_factory=list)

    def summary(self) -> str:
        p = self.plan
        lines = [
            f"soak: {p.days:g} simulated days, {p.nodes} nodes, {p.step_s:g} s steps, "
            f"{self.steps} steps in {self.wall_s:.0f} s wall",
            f"  memory: {self.traced_growth_mb:.3f} MB growth over the last "
            f"{self.traced_s / 3600:.1f} h (tracemalloc) -> {self.memory_growth_mb:.3f} MB "
            f"over the run (limit {MEMORY_LIMIT_MB} MB); RSS by day "
            + ", ".join(f"{r:.0f}" for r in self.rss_mb)
            + " MB",
            f"  SoC error vs truth: max {self.soc_error_max:.2f} % (at day "
            f"{self.soc_error_at / DAY:.2f}) over {self.soc_samples} samples "
            f"(limit {SOC_ERROR_LIMIT} %)",
            f"  limit rises: at most {self.most_rises_per_hour} per hour "
            f"(allowed {self.allowed_rises_per_hour})",
            "  longest phase: "
            + ", ".join(f"{k} {v / 3600:.1f} h" for k, v in sorted(self.longest_phase_s.items())),
            f"  energy: {self.charged_ah:.0f} Ah charged, {self.discharged_ah:.0f} Ah discharged",
        ]
        lines += [f"  PROBLEM: {problem}" for problem in self.problems] or ["  all checks passed"]
        return "\n".join(lines)


def soak_setup(plan: SoakPlan) -> SimSetup:
    """Parallel 16-cell packs through sunny and cloudy days with a household load."""
    rng = random.Random(plan.seed + 11)
    return base_setup(
        step_s=plan.step_s,
        strings=[[n] for n in range(plan.nodes)],
        soc=0.5,
        start_hour=0.0,
        pv=SolarDay(peak_w=3000.0 * plan.nodes, cloudiness=0.4, rng=rng, start_h=0.0),
        load=HouseholdLoad(start_h=0.0, rng=rng),
        initial_soc_known=True,
    )


class Watch:
    """Observes every step: SoC error, phases, limits; cheap enough for a week."""

    def __init__(self, sim: SimSystem, result: SoakResult, soc_from_s: float = 0.0) -> None:
        self.result = result
        self.soc_from_s = soc_from_s
        strategy = sim.settings.strategy
        self.phases = strategy.phases
        self.max_ccl = strategy.max_charge_current_a
        self.max_dcl = strategy.max_discharge_current_a
        self.allowed = strategy.limits.max_increases_per_hour
        result.allowed_rises_per_hour = self.allowed
        self.phase: str | None = None
        self.phase_since = 0.0
        self.low_soc_float_since: float | None = None
        self.hour = 0
        self.hour_values: dict[str, list[float]] = {"ccl": [], "dcl": []}
        self.seen: set[str] = set()
        self.limits_received = 0

    def __call__(self, sim: SimSystem) -> None:
        r = self.result
        t = sim.t
        core = sim.core
        if core is None or core.decision is None:
            return
        soc = core.soc_state
        if t >= self.soc_from_s:
            error = abs(soc.soc - sim.true_soc)  # this step's truth, worked out by the system
            if error > r.soc_error_max:
                r.soc_error_max, r.soc_error_at = error, t
            r.soc_samples += 1
        if not math.isfinite(soc.soc) or not 0.0 <= soc.soc <= 100.0:
            self.problem(t, f"gateway SoC {soc.soc}")

        phase = core.decision.phase.value
        if phase != self.phase:
            self.phase, self.phase_since = phase, t
            self.seen.add(phase)
        stay = t - self.phase_since
        if stay > r.longest_phase_s.get(phase, 0.0):
            r.longest_phase_s[phase] = stay
        self.check_phase(t, phase, stay, soc.soc)

        limits = sim.inverter.limits
        if limits is None:
            return
        cvl, ccl, dcl = (
            limits.charge_voltage_limit,
            limits.charge_current_limit,
            limits.discharge_current_limit,
        )
        if not cvl > 0:
            self.problem(t, f"CVL {cvl} V reached the inverter")
        if not 0 <= ccl <= self.max_ccl + 0.1 or not 0 <= dcl <= self.max_dcl + 0.1:
            self.problem(t, f"limits out of range: CCL {ccl} A, DCL {dcl} A")
        hour = int(t // 3600)
        if hour != self.hour:
            self.close_hour()
            self.hour = hour
        values = self.hour_values
        if not values["ccl"] or values["ccl"][-1] != ccl:
            values["ccl"].append(ccl)
        if not values["dcl"] or values["dcl"][-1] != dcl:
            values["dcl"].append(dcl)

    def check_phase(self, t: float, phase: str, stay: float, soc: float) -> None:
        ph = self.phases
        if phase == Phase.STOPPED.value and t > STOP_GRACE_S and stay > ph.resume_after_s + 60:
            self.problem(t, f"stopped for {stay:.0f} s without a fault")
        if phase == Phase.ABSORPTION.value and stay > ph.absorption_max_s + PHASE_MARGIN_S:
            self.problem(t, f"absorption for {stay:.0f} s (cap {ph.absorption_max_s:.0f} s)")
        if phase == Phase.FLOAT.value and soc < ph.rebulk_soc - 1.0:
            if self.low_soc_float_since is None:
                self.low_soc_float_since = t
            elif t - self.low_soc_float_since > ph.rebulk_delay_s + PHASE_MARGIN_S:
                self.problem(t, f"float at SoC {soc:.1f} % < {ph.rebulk_soc} % too long")
        else:
            self.low_soc_float_since = None

    def close_hour(self) -> None:
        r = self.result
        for name, values in self.hour_values.items():
            episodes = rise_episodes(values)
            r.most_rises_per_hour = max(r.most_rises_per_hour, episodes)
            if episodes > self.allowed:
                self.problem(self.hour * 3600.0, f"{name.upper()} rose {episodes} times")
            self.hour_values[name] = values[-1:]

    def problem(self, t: float, what: str) -> None:
        problems = self.result.problems
        if len(problems) < 50:
            problems.append(f"t={t:.0f} s (day {t / DAY:.2f}): {what}")


def _rss_mb() -> float:
    try:
        with open("/proc/self/statm", encoding="ascii") as f:
            pages = int(f.read().split()[1])
        return pages * resource.getpagesize() / 1e6
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3


def run_soak(plan: SoakPlan, progress: bool = False) -> SoakResult:
    """Run the plan and return its figures; `problems` lists every failed check. Memory is
    traced over the end of the run: a warm-up as long as the history ring, then
    `trace_hours`."""
    sim = SimSystem(soak_setup(plan), plan.seed, bus="memory")
    try:
        duration = plan.days * DAY
        trace_s = min(plan.trace_hours * 3600.0, duration / 4)
        history = history_of(plan)
        warm_s = warm_up_s(history)
        watch = Watch(sim, SoakResult(plan))
        watched(sim, max(duration - trace_s - warm_s, 0.0), watch, history, progress=progress)
        return traced(sim, duration, trace_s, watch, steady_s=duration - min(DAY, duration / 2))
    finally:
        sim.close()


def history_of(plan: SoakPlan) -> History:
    return History(hours=plan.history_hours) if plan.history_hours else History()


def warm_up_s(history: History) -> float:
    """How long the gateway runs before its history ring is full (s): memory traced after
    that is not the ring filling up."""
    return history.interval * (history.samples.maxlen or 1)


def watched(
    sim: SimSystem, until: float, watch: Watch, history: History, *, progress: bool = False
) -> None:
    """Run `sim` from its start to `until` under the watch; the gateway keeps `history` (a
    shortened ring makes the memory trace's warm-up shorter)."""
    result = watch.result
    if sim.core is not None:
        sim.core.history = history
    sim.observers.append(watch)
    wall0 = time.perf_counter()
    result.rss_mb.append(_rss_mb())
    day = 1
    while sim.t < until - 1e-9:
        sim.run(min(day * DAY, until) - sim.t)
        if sim.t >= day * DAY - 1e-9:
            result.rss_mb.append(_rss_mb())
            if progress:
                print(f"soak: day {day} done ({time.perf_counter() - wall0:.0f} s)")
            day += 1
    result.wall_s += time.perf_counter() - wall0


def traced(
    sim: SimSystem, until: float, trace_s: float, watch: Watch, *, steady_s: float
) -> SoakResult:
    """Go on to `until` under tracemalloc, the watch still on: first a warm-up (from now to
    `until - trace_s`: the caller makes it as long as the history ring, so that every sample
    the ring drops while measured was allocated under tracing), then `trace_s` measured; the
    growth is scaled to `steady_s` (the run after its first day). Then the figures and the
    problems."""
    result = watch.result
    wall0 = time.perf_counter()
    tracemalloc.start()
    try:
        sim.run(until - trace_s - sim.t)  # the warm-up: refills the history ring
        gc.collect()
        before = tracemalloc.take_snapshot()
        sim.run(until - sim.t)
        gc.collect()
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    result.rss_mb.append(_rss_mb())
    diff = after.compare_to(before, "lineno")
    growth = sum(d.size_diff for d in diff)
    result.top_growth = [str(d) for d in diff[:5]]
    result.traced_s = trace_s
    result.traced_growth_mb = growth / 1e6
    result.memory_growth_mb = result.traced_growth_mb * max(steady_s / trace_s, 1.0)
    watch.close_hour()
    result.steps = sim.steps
    result.phases_seen = sorted(watch.seen)
    result.charged_ah = sim.truth.charge_ah
    result.discharged_ah = sim.truth.discharge_ah
    result.wall_s += time.perf_counter() - wall0
    if result.memory_growth_mb >= MEMORY_LIMIT_MB:
        result.problems.append(
            f"memory grew {result.memory_growth_mb:.2f} MB (limit {MEMORY_LIMIT_MB} MB): "
            + "; ".join(result.top_growth)
        )
    if result.soc_error_max >= SOC_ERROR_LIMIT:
        result.problems.append(f"SoC error reached {result.soc_error_max:.2f} %")
    if result.soc_samples < (until - watch.soc_from_s) / result.plan.step_s / 2:
        result.problems.append(f"only {result.soc_samples} SoC samples")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.soak", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--days", type=float, default=7.0, help="simulated days (default 7)")
    parser.add_argument("--nodes", type=int, default=4, help="parallel 16-cell nodes (4)")
    parser.add_argument("--step", type=float, default=1.0, help="simulation step, s (1)")
    parser.add_argument("--trace-hours", type=float, default=6.0, help="traced hours (6)")
    parser.add_argument(
        "--history-hours", type=float, help="shorten the gateway's history ring (default 6 h)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args(argv)
    plan = SoakPlan(
        args.days, args.nodes, args.step, args.trace_hours, args.seed, args.history_hours
    )
    result = run_soak(plan, progress=True)
    print(result.summary())
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(asdict(result), f, indent=1)
    return 1 if result.problems else 0


if __name__ == "__main__":
    sys.exit(main())

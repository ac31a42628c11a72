"""Run the benchmarks, write benchmarks/results.json and print the table.

Usage: python -m benchmarks.run [--quick] [--only ingest,latency,...] [--out PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from benchmarks import (
    charge_quality,
    firmware,
    footprint,
    ingest,
    latency,
    mqtt,
    scaling,
    simulator,
)
from benchmarks.common import ROOT, Figure, Result, replace_between

BENCHMARKS: dict[str, Callable[[bool], Result]] = {
    "ingest": ingest.run,
    "latency": latency.run,
    "firmware": firmware.run,
    "scaling": scaling.run,
    "simulator": simulator.run,
    "footprint": footprint.run,
    "mqtt": mqtt.run,
    # The long one: the whole charge-quality matrix (docs/charge-quality.md gets its table).
    "charge_quality": lambda quick: charge_quality.run(quick, doc=not quick),
}


def machine() -> dict[str, object]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "system": f"{platform.system()} {platform.release()}",
        "load_average_1min": round(os.getloadavg()[0], 2),
    }


def _num(value: float | None) -> str:
    if value is None:
        return ""
    if value == 0:
        return "0"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"


def _verdict(fig: Figure) -> str:
    if fig.met is None:
        return ""
    return f"[green]met[/] ({fig.target})" if fig.met else f"[red]missed[/] ({fig.target})"


def table(results: list[Result]) -> Table:
    t = Table(title="moat-bms benchmarks", show_lines=False)
    for col in ("benchmark", "figure", "value", "unit", "reference", "ratio", "target"):
        t.add_column(col, justify="right" if col in ("value", "reference", "ratio") else "left")
    for res in results:
        for i, fig in enumerate(res.figures):
            ref = f"{_num(fig.reference)} ({fig.reference_name})" if fig.reference else ""
            ratio = _num(fig.ratio)
            t.add_row(
                res.name if i == 0 else "",
                fig.name,
                _num(fig.value),
                fig.unit,
                ref,
                f"{ratio}x" if ratio else "",
                _verdict(fig),
                end_section=i == len(res.figures) - 1,
            )
    return t


DOC = ROOT / "docs" / "performance.md"
BEGIN, END = "<!-- results: written by make bench -->", "<!-- end of results -->"


def markdown(doc: dict[str, Any]) -> str:
    """The results as the table docs/performance.md shows."""
    m = doc["machine"]
    lines = [
        f"Measured {doc['date']} on {m['cpu']} ({m['cores']} cores), {m['implementation']} "
        f"{m['python']}, {m['system']}; load average {m['load_average_1min_before']} before "
        f"and {m['load_average_1min']} after the run (other work on the machine).",
        "",
        "| benchmark | figure | value | unit | reference | ratio | target |",
        "|---|---|--:|---|--:|--:|---|",
    ]
    for res in doc["benchmarks"]:
        for i, f in enumerate(res["figures"]):
            ref = f"{_num(f['reference'])} ({f['reference_name']})" if f["reference"] else ""
            ratio = _num(f["ratio"])
            verdict = "" if f["met"] is None else ("met" if f["met"] else "**missed**")
            target = f"{verdict} ({f['target']})" if verdict else ""
            lines.append(
                f"| {res['name'] if i == 0 else ''} | {f['name']} | {_num(f['value'])} | "
                f"{f['unit']} | {ref} | {ratio + 'x' if ratio else ''} | {target} |"
            )
    lines.append("")
    for res in doc["benchmarks"]:
        for note in res["notes"]:
            lines.append(f"- {res['name']}: {note}")
    return "\n".join(lines) + "\n"


def update_doc(doc: dict[str, Any], path: Path = DOC) -> bool:
    """Put the table between the markers of docs/performance.md; False without them."""
    return replace_between(path, BEGIN, END, markdown(doc))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter runs (a smoke test)")
    parser.add_argument("--only", default="", help="comma-separated: " + ", ".join(BENCHMARKS))
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results.json")
    args = parser.parse_args(argv)
    names = [n for n in args.only.split(",") if n] or list(BENCHMARKS)
    unknown = set(names) - set(BENCHMARKS)
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    console = Console(width=None if sys.stdout.isatty() else 160)
    load_before = os.getloadavg()[0]
    results = []
    for name in names:
        console.print(f"[bold]{name}[/] ...")
        start = time.perf_counter()
        res = BENCHMARKS[name](args.quick)
        res.seconds = time.perf_counter() - start
        results.append(res)
    console.print(table(results))
    for res in results:
        for note in res.notes:
            console.print(f"{res.name}: {note}")
    host = machine()
    host["load_average_1min_before"] = round(load_before, 2)  # other work on the machine
    doc = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "quick": args.quick,
        "machine": host,
        "benchmarks": [r.to_dict() for r in results],
    }
    args.out.write_text(json.dumps(doc, indent=2) + "\n")
    console.print(f"written to {args.out}")
    # Only a full run of every benchmark replaces the table in the docs.
    if not args.quick and names == list(BENCHMARKS) and update_doc(doc):
        console.print(f"table updated in {DOC.relative_to(ROOT)}")
    missed = [f"{r.name}: {f.name}" for r in results for f in r.figures if f.met is False]
    if missed:
        console.print(f"[red]targets missed:[/] {'; '.join(missed)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

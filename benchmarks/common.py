"""Shared by the benchmarks: results, the gateway settings and a realistic frame mix."""

from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from gateway.config.root import Settings, validate
from gateway.contracts.frame import Frame
from gateway.sources.moat_nodes import busload

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Figure:
    """One measured figure next to its reference: ratio = value / reference."""

    name: str
    value: float
    unit: str
    reference: float | None = None
    reference_name: str = ""
    target: str = ""  # e.g. ">= 100000" or "<= 5"
    met: bool | None = None

    @property
    def ratio(self) -> float | None:
        if self.reference is None or self.reference == 0:
            return None
        return self.value / self.reference

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["ratio"] = self.ratio
        return d


@dataclass
class Result:
    """One benchmark: its figures, its parameters and notes."""

    name: str
    title: str
    figures: list[Figure] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def add(self, *args: Any, **kwargs: Any) -> Figure:
        fig = Figure(*args, **kwargs)
        self.figures.append(fig)
        return fig

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "figures": [f.to_dict() for f in self.figures],
            "params": self.params,
            "notes": self.notes,
            "seconds": round(self.seconds, 1),
        }


def at_least(value: float, target: float) -> bool:
    return value >= target


def percentile(values: list[float], p: float) -> float:
    """The p-th percentile (0..100), nearest rank."""
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def median(values: list[float]) -> float:
    return statistics.median(values)


def settings(
    strings: list[list[int]],
    cells_per_node: int = 16,
    state_file: Path | None = None,
    **extra: Any,
) -> Settings:
    data: dict[str, Any] = {
        "battery": {
            "topology": {"strings": strings, "cells_per_node": cells_per_node, "capacity_ah": 100}
        },
        "buses": {"battery": {"interface": "virtual", "channel": "bench", "bitrate": 500_000}},
        "web": {"enabled": False},
        "inverter": {"profile": "pylontech"},
    }
    if state_file is not None:
        data["persistence"] = {"state_file": str(state_file)}
    for key, value in extra.items():
        data[key] = value
    return validate(data, "benchmark")


def mix_bits(frames: list[Frame]) -> float:
    """Mean bits per frame on the wire of the mix, stuff bits counted exactly."""
    return sum(busload.exact_frame_bits(f.id, f.data) for f in frames) / len(frames)


def replace_between(path: Path, begin: str, end: str, body: str) -> bool:
    """Put `body` between the `begin` and `end` markers of a document (the tables the
    benchmarks keep in docs/); False when the file or a marker is missing."""
    if not path.exists():
        return False
    text = path.read_text()
    if begin not in text or end not in text:
        return False
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    path.write_text(f"{head}{begin}\n{body}{end}{tail}")
    return True

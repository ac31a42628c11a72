"""How the packs are wired: strings of nodes in series, strings in parallel. The sources place
their packs by it, the model sums them by it, the strategy scales limits by it."""

from __future__ import annotations

from typing import Self

from pydantic import Field, field_validator, model_validator

from gateway.contracts.section import Section

MAX_NODES = 16
MAX_CELLS = 64


class TopologySettings(Section):
    """How the nodes are wired: strings of nodes in series, strings in parallel."""

    strings: list[list[int]] = Field(
        default_factory=lambda: [[0]],
        description="parallel strings; each a list of node ids (0..15) wired in series",
    )
    cells_per_node: int = Field(
        16, ge=1, le=MAX_CELLS, description="series cells measured by each node"
    )
    cells: dict[int, int] = Field(
        default_factory=dict, description="per-node cell count where it differs (node: cells)"
    )
    capacity_ah: float = Field(
        100.0, gt=0, le=100_000, description="rated capacity of one string, Ah"
    )

    @field_validator("strings")
    @classmethod
    def _strings(cls, strings: list[list[int]]) -> list[list[int]]:
        if not strings:
            raise ValueError("at least one string is needed")
        seen: set[int] = set()
        for i, string in enumerate(strings):
            if not string:
                raise ValueError(f"string {i} has no nodes")
            for node in string:
                if not 0 <= node < MAX_NODES:
                    raise ValueError(f"string {i}: node id {node} is outside 0..{MAX_NODES - 1}")
                if node in seen:
                    raise ValueError(f"node {node} appears twice")
                seen.add(node)
        return strings

    @field_validator("cells")
    @classmethod
    def _cells(cls, cells: dict[int, int]) -> dict[int, int]:
        for node, count in cells.items():
            if not 1 <= count <= MAX_CELLS:
                raise ValueError(f"node {node}: {count} cells is outside 1..{MAX_CELLS}")
        return cells

    @model_validator(mode="after")
    def _balanced(self) -> Self:
        unknown = set(self.cells) - set(self.nodes)
        if unknown:
            raise ValueError(f"cells given for nodes not in any string: {sorted(unknown)}")
        counts = {sum(self.cells_of(n) for n in s) for s in self.strings}
        if len(counts) > 1:
            raise ValueError(
                f"parallel strings must have the same number of series cells, got {sorted(counts)}"
            )
        return self

    @property
    def nodes(self) -> list[int]:
        return [n for s in self.strings for n in s]

    def cells_of(self, node: int) -> int:
        return self.cells.get(node, self.cells_per_node)

    @property
    def cells_in_series(self) -> int:
        return sum(self.cells_of(n) for n in self.strings[0])

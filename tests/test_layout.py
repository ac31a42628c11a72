"""The layout shows the data path (docs/architecture.md): each folder of gateway/ is a stage,
and a stage imports only from itself and the stages below it, with no import circles.

    contracts, record, codec  (shared types, records and state files, generated codecs)
    sources -> soc -> strategy -> outputs       (the data path)
    config -> core -> runtime -> web -> sim -> cli  (around it)
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

GATEWAY = Path(__file__).resolve().parent.parent / "gateway"

# Lowest first. A module may import from its own stage and any stage listed before it.
STAGES = (
    ("gateway", "gateway.codec", "gateway.contracts", "gateway.record"),
    ("gateway.sources",),
    ("gateway.soc",),
    ("gateway.strategy",),
    ("gateway.outputs",),
    ("gateway.config",),
    ("gateway.core",),
    ("gateway.runtime",),
    ("gateway.web",),
    ("gateway.sim",),
    ("gateway.cli", "gateway.__main__"),
)


def module_name(path: Path) -> str:
    parts = path.relative_to(GATEWAY.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def stage_of(module: str) -> int:
    best, rank = "", -1
    for i, prefixes in enumerate(STAGES):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > len(best):
                best, rank = prefix, i
    assert rank >= 0, f"{module} belongs to no stage: add its folder to STAGES"
    return rank


def imports_of(path: Path) -> set[str]:
    """Every gateway module `path` imports, wherever the import statement is (lazy and
    type-checking imports are dependencies too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("gateway"))
        elif (
            isinstance(node, ast.ImportFrom)
            and node.level == 0
            and (node.module or "").startswith("gateway")
        ):
            found.add(str(node.module))
    return found


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    """Each gateway module's imports, parsed once for the two tests that read them."""
    return {module_name(p): imports_of(p) for p in sorted(GATEWAY.rglob("*.py"))}


def test_no_stage_imports_from_a_stage_above_it(graph: dict[str, set[str]]) -> None:
    wrong = [
        f"{module} (stage {stage_of(module)}) imports {target} (stage {stage_of(target)})"
        for module, targets in graph.items()
        for target in sorted(targets)
        if stage_of(target) > stage_of(module)
    ]
    assert wrong == []


def test_no_import_circles(graph: dict[str, set[str]]) -> None:
    deps = graph
    modules = set(deps)

    def resolve(target: str) -> str | None:
        # `from gateway.x import y` depends on the module gateway.x (a package's __init__).
        while target and target not in modules:
            target = target.rpartition(".")[0]
        return target or None

    edges = {m: {r for t in ts if (r := resolve(t)) and r != m} for m, ts in deps.items()}
    circles: list[list[str]] = []
    state: dict[str, int] = {}  # 1 on the stack, 2 done

    def visit(module: str, stack: list[str]) -> None:
        state[module] = 1
        for nxt in sorted(edges[module]):
            if state.get(nxt) == 1:
                circles.append([*stack[stack.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt, [*stack, nxt])
        state[module] = 2

    for module in sorted(edges):
        if module not in state:
            visit(module, [module])
    # A package's __init__ re-exporting its own modules is not a circle between stages, but
    # a module importing back through its package's __init__ would be: none allowed.
    assert circles == []


def test_every_stage_folder_is_listed() -> None:
    folders = {f"gateway.{p.name}" for p in GATEWAY.iterdir() if (p / "__init__.py").exists()}
    listed = {prefix for prefixes in STAGES for prefix in prefixes}
    assert folders <= listed


def test_the_readme_and_the_architecture_name_every_stage_folder() -> None:
    root = GATEWAY.parent
    readme = (root / "README.md").read_text()
    layout = readme[readme.index("## Layout") :]
    architecture = (root / "docs" / "architecture.md").read_text()
    folders = sorted(p.name for p in GATEWAY.iterdir() if (p / "__init__.py").exists())
    missing = [f for f in folders if f != "codec" and f"`gateway/{f}/`" not in layout]
    assert missing == [], "README's layout table lacks these folders"
    undocumented = [f for f in folders if f"gateway/{f}/" not in architecture]
    assert undocumented == [], "docs/architecture.md lacks these folders"

"""docs/safety.md: every row of the failure-mode table names tests, and they exist.

A named test must be a test function of that file (module level), not skipped; a row
without a test fails. README.md must link the page.
"""

from __future__ import annotations

import ast
import functools
import re
from pathlib import Path

from tests.common import ROOT

DOC = ROOT / "docs" / "safety.md"
COLUMNS = ["Failure", "Detection", "Reaction", "Time bound", "Test"]
TEST_REF = re.compile(r"`(tests/[\w/]+\.py)::(test_\w+)`")


def table_rows() -> list[list[str]]:
    lines = DOC.read_text(encoding="utf-8").splitlines()
    start = lines.index("## Failure modes")
    header = next(i for i in range(start, len(lines)) if lines[i].startswith("| Failure"))
    assert [c.strip() for c in lines[header].strip("|").split("|")] == COLUMNS
    rows = []
    for line in lines[header + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in line.strip().strip("|").split("|")])
    return rows


@functools.cache  # the table names 150 tests in 34 files: each file is parsed once
def functions_of(path: Path) -> dict[str, ast.FunctionDef | ast.AsyncFunctionDef]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {
        node.name: node
        for node in tree.body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.name.startswith("test_")
    }


def skipped(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    return any("skip" in ast.unparse(d) or "xfail" in ast.unparse(d) for d in fn.decorator_list)


def test_every_failure_mode_names_existing_tests() -> None:
    rows = table_rows()
    assert len(rows) >= 30
    problems = []
    for row in rows:
        assert len(row) == len(COLUMNS), row
        failure, *_, tests = row
        if not all(row):
            problems.append(f"{failure}: an empty column")
        refs = TEST_REF.findall(tests)
        if not refs:
            problems.append(f"{failure}: no test named")
        for path, name in refs:
            file = ROOT / path
            if not file.is_file():
                problems.append(f"{failure}: {path} does not exist")
                continue
            fn = functions_of(file).get(name)
            if fn is None:
                problems.append(f"{failure}: {path}::{name} does not exist")
            elif skipped(fn):
                problems.append(f"{failure}: {path}::{name} is skipped or expected to fail")
    assert problems == []


def test_the_readme_links_the_safety_page_and_make_soak() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "docs/safety.md" in readme
    assert "make soak" in readme

"""Checks shared by the papers' benchmark-harness tests."""

from __future__ import annotations

import ast
from pathlib import Path

REPOSITORY_PACKAGES = frozenset({"common", "papers", "tests"})


def repository_imports(harness: Path) -> set[str]:
    """What ``harness`` imports from this repository: its top-level packages, and ``"."`` for
    any relative import. An official-side harness must return the empty set: it runs by path in
    the official code's environment and times only the official code."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(harness.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            found.add("." if node.level else (node.module or "").split(".")[0])
    return found & (REPOSITORY_PACKAGES | {"."})

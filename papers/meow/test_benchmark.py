"""The speed harnesses: ours imports, and both sides name their workloads the same way.

``benchmark_official.py`` runs in the official environment and is never imported here: its
``WORKLOADS`` and ``SEED`` are read from its source as literals (no official code needed).
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

from tests.support.bench import repository_imports

from . import benchmark

OFFICIAL = Path(__file__).parent / "benchmark_official.py"


def _literal(path: Path, name: str) -> Any:
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == name for t in node.targets
        ):
            return ast.literal_eval(node.value)
    raise AssertionError(f"{path.name} defines no {name}")


def test_both_sides_name_the_same_workloads() -> None:
    assert _literal(OFFICIAL, "WORKLOADS") == benchmark.WORKLOADS
    assert set(benchmark.WORKLOADS) == {"preprocessing", "epoch"}
    assert len(set(benchmark.WORKLOADS.values())) == 2


def test_both_sides_use_the_official_seed() -> None:
    assert _literal(OFFICIAL, "SEED") == benchmark.SEED == 0


def test_official_harness_imports_nothing_from_the_repository() -> None:
    assert repository_imports(OFFICIAL) == set()


def test_the_benchmark_recipe_is_the_acm_recipe() -> None:
    config = benchmark.recipe()
    assert config.variant == "meow"
    assert (config.tau, config.lr, config.feat_mask) == (0.4, 0.0007, 0.3)
    assert (config.nei_max, config.adj_mask, config.num_clusters) == (
        [110, 700],
        [0.3, 0.2],
        [100, 300],
    )

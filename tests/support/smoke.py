"""Smoke budgets: what each paper's ``--scale smoke`` command asks of the real data, counted
from its resolved configs without running them."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pytest


def smoke_configs(entry: Any) -> dict[tuple[str, str], Any]:
    """The resolved ``smoke`` config of every (dataset, variant) a paper declares.

    ``entry`` is the paper's :class:`common.runner.PaperEntry`; a smoke budget test counts the
    work (samples, steps, pairs) these configs ask for, without running them.
    """
    from common.cli import read_paper_info
    from common.runner import resolve_config

    info = read_paper_info(entry.folder)
    return {
        (dataset, variant): resolve_config(entry, "smoke", dataset, variant, ())
        for dataset in info.datasets
        for variant in info.variants
    }


def over_budget(work: Mapping[str, int], budget: Mapping[str, int]) -> dict[str, str]:
    """The counts of ``work`` above their ``budget`` (every budget key must be counted)."""
    missing = set(budget) - set(work)
    if missing:
        raise KeyError(f"work does not count {sorted(missing)}")
    return {k: f"{work[k]:,} > {limit:,}" for k, limit in budget.items() if work[k] > limit}


Count = Callable[[str, str, Any], Mapping[str, int]]
"""(dataset, variant, resolved config) -> the work one run asks for, by name."""


def smoke_over_budget(entry: Any, count: Count, budget: Mapping[str, int]) -> dict[str, Any]:
    """Per dataset, what ``--scale smoke`` (every variant, one seed) asks above ``budget``.

    The work of a command is the sum over its variants of ``count``; an empty answer means
    every dataset's smoke command fits.
    """
    totals: dict[str, dict[str, int]] = {}
    for (dataset, variant), config in smoke_configs(entry).items():
        total = totals.setdefault(dataset, {})
        for key, value in count(dataset, variant, config).items():
            total[key] = total.get(key, 0) + value
    over = {dataset: over_budget(work, budget) for dataset, work in totals.items()}
    return {dataset: items for dataset, items in over.items() if items}


STRAIGHT, RESUMED = "straight", "resumed"  # the work folders of the two runs


def run_straight_and_resumed(
    entry: Any,
    argv: Callable[[str], list[str]],
    monkeypatch: pytest.MonkeyPatch,
    interrupt_after: int = 1,
) -> None:
    """Run ``entry`` with ``argv(STRAIGHT)`` to the end; then with ``argv(RESUMED)``, stopped
    by Ctrl-C right after its ``interrupt_after``-th checkpoint (exit status 130), and resumed
    with ``--resume`` to the end. The caller compares what the two runs recorded."""
    from common.runner import RunContext, main

    assert main(entry, argv(STRAIGHT)) == 0
    original = RunContext.save_checkpoint
    saves = 0

    def save_then_interrupt(self: RunContext, state: dict[str, Any]) -> None:
        nonlocal saves
        original(self, state)
        saves += 1
        if saves == interrupt_after:
            raise KeyboardInterrupt

    monkeypatch.setattr(RunContext, "save_checkpoint", save_then_interrupt)
    assert main(entry, argv(RESUMED)) == 130  # Ctrl-C: one line naming the checkpoint
    monkeypatch.setattr(RunContext, "save_checkpoint", original)
    assert main(entry, [*argv(RESUMED), "--resume"]) == 0

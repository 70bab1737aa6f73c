"""End-to-end smoke run of unsup-SimCSE and the untrained baseline on tiny generated data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.support.sentences import SENTENCE_SMOKE_BUDGET, run_sentence_smoke, sentence_work
from tests.support.smoke import smoke_over_budget

from .__main__ import ENTRY


def test_smoke_end_to_end(tmp_path: Path) -> None:
    records = run_sentence_smoke(ENTRY, tmp_path)
    assert set(records) == {"unsup-simcse", "untrained"}
    assert records["untrained"]["origin"] == "pretrained-baseline"


def smoke_work(dataset: str, variant: str, config: Any) -> dict[str, int]:
    """What one smoke run asks of the real data (2 dropout views a sentence)."""
    return sentence_work(config, config.batch_size, 2, trains=variant != "untrained")


def test_smoke_recipe_fits_its_budget() -> None:
    assert smoke_over_budget(ENTRY, smoke_work, SENTENCE_SMOKE_BUDGET) == {}

"""End-to-end smoke run of WhitenedCSE on tiny generated data."""

from __future__ import annotations

from pathlib import Path

from common.eval.testdata import run_sentence_smoke

from .__main__ import ENTRY


def test_smoke_end_to_end(tmp_path: Path) -> None:
    records = run_sentence_smoke(ENTRY, tmp_path)
    assert set(records) == {"whitenedcse"}

"""End-to-end smoke run on tiny generated data, plus resume == uninterrupted."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from common.records import load_records
from common.runner import main
from tests.support.datasets import spec_for_local_files, temporary_dataset
from tests.support.smoke import run_straight_and_resumed, smoke_over_budget

from .__main__ import ENTRY

# Training interactions of the real sets after NCL's filter (rating >= 3) and the 8:1:1 split:
# ml-100k 66,868 (measured); ml-1m about 0.8 x 836,478.
TRAIN_INTERACTIONS = {"ml-100k": 66_868, "ml-1m": 669_000}
# About 20 CPU-s here (smoke: 3 epochs of both variants); the recipe asks 100 times more.
SMOKE_BUDGET = {"training steps": 1_000, "interaction-epochs": 4_100_000}


def smoke_work(dataset: str, variant: str, config: Any) -> dict[str, int]:
    """Optimiser steps and interactions trained by one smoke run (every epoch a full pass)."""
    n = TRAIN_INTERACTIONS[dataset]
    return {"training steps": -(-n // config.batch_size) * config.epochs,
            "interaction-epochs": n * config.epochs}  # fmt: skip


def test_smoke_recipe_fits_its_budget() -> None:
    assert smoke_over_budget(ENTRY, smoke_work, SMOKE_BUDGET) == {}


PAPER = ENTRY.folder.name  # records are filed under the folder's name (a fork has its own)

REL = "movielens/ml-100k/ml-100k.inter"


def write_tiny_movielens(root: Path, users: int = 30, items: int = 40) -> None:
    rng = random.Random(0)
    lines = ["user_id:token\titem_id:token\trating:float\ttimestamp:float"]
    for user in range(1, users + 1):
        for item in rng.sample(range(1, items + 1), rng.randint(8, 20)):
            lines.append(
                f"{user}\t{item}\t{rng.randint(1, 5)}\t{rng.randint(8 * 10**8, 9 * 10**8)}"
            )
    (root / REL).parent.mkdir(parents=True, exist_ok=True)
    (root / REL).write_text("\n".join(lines) + "\n")


def _argv(tmp_path: Path, work: str, *extra: str) -> list[str]:
    return ["--scale", "smoke", "--data-root", str(tmp_path / "data"),
            "--results-dir", str(tmp_path / "results"), "--work-dir", str(tmp_path / work),
            *extra]  # fmt: skip


@pytest.fixture()
def tiny(tmp_path: Path):  # type: ignore[no-untyped-def]
    write_tiny_movielens(tmp_path / "data")
    with temporary_dataset(spec_for_local_files("movielens-100k", tmp_path / "data", [REL])):
        yield tmp_path


def test_smoke_both_variants(tiny: Path) -> None:
    assert main(ENTRY, _argv(tiny, "w")) == 0
    records = load_records(tiny / "results", PAPER)
    assert sorted(r.variant for r in records) == ["lightgcn", "ncl"]
    for rec in records:
        assert set(rec.metrics.test) == {"Recall@5", "Recall@10", "NDCG@5", "NDCG@10"}
        assert all(0 <= v <= 1 for v in rec.metrics.test.values())
        assert rec.metrics.test["Recall@10"] > 0  # something is ranked above chance level 0
        assert "NDCG@5" in rec.metrics.validation
        assert rec.dataset_files[REL] and rec.scale == "smoke"
        assert len(rec.training.curve["valid NDCG@5"]) == rec.training.epochs


def test_resume_equals_uninterrupted(tiny: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # interrupted after the second epoch, the first E-step: the clusters must come back too
    run_straight_and_resumed(
        ENTRY, lambda work: _argv(tiny, work, "--variants", "ncl"), monkeypatch, interrupt_after=2
    )
    straight, resumed = sorted(load_records(tiny / "results", PAPER), key=lambda r: r.resumed)
    assert resumed.resumed and not straight.resumed
    assert resumed.metrics.test == straight.metrics.test
    assert resumed.metrics.validation == straight.metrics.validation


def test_too_many_clusters_is_a_clear_error(tiny: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(ENTRY, _argv(tiny, "w", "--variants", "ncl", "num_clusters=500")) == 2
    assert "num_clusters=500 exceeds" in capsys.readouterr().err

"""End-to-end smoke run of every variant on tiny generated data, and resume == uninterrupted."""

from __future__ import annotations

import math
from contextlib import ExitStack
from pathlib import Path

import pytest
import torch

from common.records import load_records
from common.rundir import CHECKPOINT_NAME
from common.runner import main
from tests.support.datasets import spec_for_local_files, temporary_dataset
from tests.support.sentences import save_tiny_bert
from tests.support.smoke import run_straight_and_resumed

from .__main__ import ENTRY
from .testdata import WORDS, write_tiny_codesearch

PAPER = ENTRY.folder.name  # records are filed under the folder's name (a fork has its own)

METRICS = {"MRR", "R@1", "R@5", "R@10"}


def _argv(tmp: Path, work: str, *extra: str) -> list[str]:
    model = save_tiny_bert(tmp / "bert", WORDS)
    return [
        "--scale",
        "smoke",
        "--data-root",
        str(tmp / "data"),
        "--results-dir",
        str(tmp / f"results-{work}"),
        "--work-dir",
        str(tmp / work),
        "--device",
        "cpu",
        f"model_name_or_path={model}",
        *extra,
    ]


@pytest.fixture()
def tiny(tmp_path: Path):  # type: ignore[no-untyped-def]
    files = write_tiny_codesearch(tmp_path / "data")
    with ExitStack() as stack:
        for name, rels in files.items():
            stack.enter_context(
                temporary_dataset(spec_for_local_files(name, tmp_path / "data", rels))
            )
        yield tmp_path


def test_smoke_all_variants(tiny: Path) -> None:
    assert main(ENTRY, _argv(tiny, "w")) == 0
    records = load_records(tiny / "results-w", PAPER)
    assert sorted(r.variant for r in records) == sorted(
        ["zero-shot", "base", "cocosoda", "cocosoda-no-soda", "cocosoda-no-queue"]
    )
    for rec in records:
        assert set(rec.metrics.test) == METRICS | {f"CoSQA {m}" for m in METRICS}
        assert all(0 <= v <= 1 and math.isfinite(v) for v in rec.metrics.test.values())
        if rec.variant == "zero-shot":
            assert rec.training.stopped_by == "not-trained"
        else:
            assert rec.training.stopped_by == "budget"  # 2 smoke epochs < the recipe's 5
            assert len(rec.training.curve["valid MRR"]) == 2
            assert "MRR" in rec.metrics.validation


def test_resume_equals_uninterrupted(tiny: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run_straight_and_resumed(
        ENTRY, lambda work: _argv(tiny, work, "--variants", "cocosoda"), monkeypatch
    )
    a = load_records(tiny / "results-straight", PAPER)[0].metrics
    b = load_records(tiny / "results-resumed", PAPER)[0].metrics
    assert a.test == pytest.approx(b.test) and a.validation == pytest.approx(b.validation)
    # the last epoch's weights, optimiser and queues, not only the best epoch's encoder
    last = [
        torch.load(next((tiny / w).rglob(CHECKPOINT_NAME)), weights_only=False)
        for w in ("straight", "resumed")
    ]
    for key, value in last[0]["model"].items():
        torch.testing.assert_close(last[1]["model"][key], value, msg=key)

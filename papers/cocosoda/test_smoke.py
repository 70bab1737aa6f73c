"""End-to-end smoke run of every variant on tiny generated data, resume == uninterrupted, and the
smoke recipe's budget on the real data."""

from __future__ import annotations

import math
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
import torch
from pydantic import ValidationError

from common.data import shared_datasets
from common.records import load_records
from common.rundir import CHECKPOINT_NAME
from common.runner import main
from common.text import STAND_IN, load_encoder
from tests.support.datasets import spec_for_local_files, temporary_dataset
from tests.support.sentences import save_tiny_bert
from tests.support.smoke import run_straight_and_resumed, smoke_over_budget

from .__main__ import ENTRY
from .data import COSQA_DEV, RUBY_TEST
from .testdata import WORDS, write_tiny_codesearch
from .train import Config

PAPER = ENTRY.folder.name  # records are filed under the folder's name (a fork has its own)

METRICS = {"MRR", "R@1", "R@5", "R@10"}

# The real data's sizes: Ruby test queries, pool (test + valid functions), valid pairs; CoSQA
# dev's label-1 queries and their distinct functions.
RUBY_QUERIES, RUBY_POOL, RUBY_VALID = 1_261, 2_661, 1_400
COSQA_QUERIES, COSQA_POOL = 313, 290
# What ``--scale smoke`` (every variant) may ask: a few seconds of CPU each with MiniLM. The
# zero-shot evaluation alone at full size encodes ~840,000 tokens (minutes on one core).
SMOKE_BUDGET = {
    "evaluation tokens encoded": 20_000,
    "training tokens (x encoders)": 10_000,
    "optimizer steps": 40,
    "epochs (validation + checkpoint)": 10,
}


def _capped(value: int, cap: int | None) -> int:
    return value if cap is None else min(value, cap)


def smoke_work(dataset: str, variant: str, config: Any) -> dict[str, int]:
    """What one run asks of the real data, from its resolved config (nothing run)."""
    q, pool = config.eval_queries, config.eval_pool
    sets = [(RUBY_QUERIES, RUBY_POOL)] + [(COSQA_QUERIES, COSQA_POOL)] * config.cosqa
    evaluation = sum(
        _capped(nq, q) * config.nl_length + _capped(nf, pool) * config.code_length
        for nq, nf in sets
    )
    if variant == "zero-shot":
        return {"evaluation tokens encoded": evaluation, "training tokens (x encoders)": 0,
                "optimizer steps": 0, "epochs (validation + checkpoint)": 0}  # fmt: skip
    pairs = _capped(RUBY_VALID - config.holdout, config.train_pairs)
    steps = _capped(pairs // config.batch_size * config.epochs, config.max_steps)
    encoders = 1 if variant == "base" else 2  # the online encoder, plus the key encoders
    validation = config.epochs * config.holdout * (config.nl_length + config.code_length)
    return {
        "evaluation tokens encoded": evaluation + validation,
        "training tokens (x encoders)": steps * config.batch_size * encoders
        * (config.code_length + config.nl_length),
        "optimizer steps": steps,
        "epochs (validation + checkpoint)": config.epochs,
    }  # fmt: skip


def test_smoke_recipe_fits_its_budget() -> None:
    """``--scale smoke`` on the real data (every variant) stays within seconds of work."""
    assert smoke_over_budget(ENTRY, smoke_work, SMOKE_BUDGET) == {}


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


def test_the_pool_slice_must_hold_the_kept_queries() -> None:
    Config(eval_queries=8, eval_pool=8)
    with pytest.raises(ValidationError, match="eval_pool must be at least eval_queries"):
        Config(eval_queries=8, eval_pool=7)


@pytest.mark.slow
def test_smoke_on_the_real_data_takes_seconds(tmp_path: Path) -> None:
    """The costliest arm's smoke run on the shared Ruby/CoSQA files with MiniLM, in CPU seconds
    (one thread: its wall time on an idle core; the encoder's import is excluded)."""
    root = shared_datasets()
    if root is None or not (root / RUBY_TEST).is_file() or not (root / COSQA_DEV).is_file():
        pytest.skip("the shared Ruby and CoSQA files are not on this machine")
    load_encoder(STAND_IN)  # transformers' import and the first load: once a process
    argv = ["--scale", "smoke", "--data-root", str(root), "--results-dir", str(tmp_path / "r"),
            "--work-dir", str(tmp_path / "w"), "--variants", "cocosoda"]  # fmt: skip
    start = time.process_time()
    assert main(ENTRY, argv) == 0
    seconds = time.process_time() - start
    record = load_records(tmp_path / "r", PAPER)[0]
    assert any("16 test queries over 32 functions" in d for d in record.deviations)
    assert record.training.note.startswith("4 of the 4 steps")
    assert seconds < 15, f"{seconds:.1f} CPU s"

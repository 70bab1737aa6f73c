"""SentEval-style STS evaluation: hand-made pairs in a generated layout, and the real files."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr

from common.data import get_dataset, shared_datasets
from common.errors import DataError
from common.eval.sts import (
    TASKS,
    YEAR_TASKS,
    batched_encode,
    evaluate_sts,
    load_task,
    required_files,
    score_pairs,
    stsb_dev_spearman,
)
from tests.support.datasets import spec_for_local_files, temporary_dataset
from tests.support.sentences import WORDS, write_tiny_senteval

VOCAB = {w: i for i, w in enumerate(WORDS)}


def bag_of_words(sentences: list[str]) -> torch.Tensor:
    """Count vectors: a deterministic encoder whose cosines are easy to recompute by hand."""
    out = torch.zeros(len(sentences), len(WORDS))
    for row, sentence in enumerate(sentences):
        for word in sentence.split():
            out[row, VOCAB[word]] += 1
    return out


def _cos(a: str, b: str) -> float:
    x, y = bag_of_words([a, b]).double()
    return float(x @ y / (x.norm() * y.norm()))


@pytest.fixture()
def tiny_root(tmp_path: Path) -> Iterator[Path]:
    root = tmp_path / "data"
    paths = write_tiny_senteval(root, pairs=7)
    with temporary_dataset(spec_for_local_files("senteval-sts", root, paths)):
        yield root


def test_required_files_are_registered() -> None:
    registered = {f.path for f in get_dataset("senteval-sts").files}
    assert set(required_files(TASKS, ("dev", "test"))) <= registered
    assert "senteval/STS/STS13-en-test/STS.input.SMT.txt" not in required_files(["STS13"])
    with pytest.raises(DataError):
        required_files(["STS17"])


def test_empty_gold_lines_are_dropped_and_whitespace_normalised(tmp_path: Path) -> None:
    root = tmp_path / "data"
    folder = root / "senteval/STS/STS13-en-test"
    folder.mkdir(parents=True)
    for subset in ("FNWN", "headlines", "OnWN"):
        (folder / f"STS.input.{subset}.txt").write_text(
            "a  man runs\ta dog runs\nthe cat\tthe ball\na cat eats\ta cat  eats food\n"
        )
        (folder / f"STS.gs.{subset}.txt").write_text("4.0\n\n1.5\n")
    paths = required_files(["STS13"])
    with temporary_dataset(spec_for_local_files("senteval-sts", root, paths)):
        subsets = load_task(root, "STS13")
    assert list(subsets) == ["FNWN", "headlines", "OnWN"]
    pairs = subsets["FNWN"]
    assert pairs.sent1 == ["a man runs", "a cat eats"]
    assert pairs.sent2 == ["a dog runs", "a cat eats food"]
    assert pairs.gold.tolist() == [4.0, 1.5]


def test_all_mean_wmean_match_hand_computation(tiny_root: Path) -> None:
    subsets = load_task(tiny_root, "STS12")
    emb = batched_encode(bag_of_words, [s for p in subsets.values() for s in p.sent1 + p.sent2])
    scored = score_pairs(emb, subsets)
    sys_all, gold_all, per, sizes = [], [], [], []
    for pairs in subsets.values():
        sys = [_cos(a, b) for a, b in zip(pairs.sent1, pairs.sent2, strict=True)]
        per.append(spearmanr(sys, pairs.gold).statistic)
        sizes.append(len(pairs))
        sys_all += sys
        gold_all += pairs.gold.tolist()
    assert all(size == 7 for size in sizes)  # the eighth line has an empty gold score
    assert scored["all"] == pytest.approx(spearmanr(sys_all, gold_all).statistic, abs=1e-9)
    assert scored["mean"] == pytest.approx(np.mean(per), abs=1e-9)
    assert scored["wmean"] == pytest.approx(np.average(per, weights=sizes), abs=1e-9)


def test_evaluate_sts_table(tiny_root: Path) -> None:
    table = evaluate_sts(bag_of_words, tiny_root, batch_size=5)
    assert list(table) == [*TASKS, "Avg"]
    assert table["Avg"] == pytest.approx(np.mean([table[t] for t in TASKS]))
    test = load_task(tiny_root, "STSBenchmark", "test")["test"]
    sys = [_cos(a, b) for a, b in zip(test.sent1, test.sent2, strict=True)]
    assert table["STSBenchmark"] == pytest.approx(100 * spearmanr(sys, test.gold).statistic)
    mean_table = evaluate_sts(bag_of_words, tiny_root, tasks=["STS14"], aggregation="mean")
    scored = score_pairs(
        batched_encode(
            bag_of_words,
            [s for p in load_task(tiny_root, "STS14").values() for s in p.sent1 + p.sent2],
        ),
        load_task(tiny_root, "STS14"),
    )
    assert mean_table["STS14"] == pytest.approx(100 * scored["mean"])


def test_max_pairs_scores_the_first_pairs_of_each_subset(tiny_root: Path) -> None:
    seen: set[str] = set()

    def encode(sentences: list[str]) -> torch.Tensor:
        seen.update(sentences)
        return bag_of_words(sentences)

    table = evaluate_sts(encode, tiny_root, max_pairs=4)
    first: set[str] = set()
    for task in TASKS:
        for pairs in load_task(tiny_root, task).values():
            first.update(pairs.sent1[:4] + pairs.sent2[:4])
    assert seen == first  # nothing beyond the first 4 pairs of a subset is even encoded
    test = load_task(tiny_root, "STSBenchmark")["test"]
    sys = [_cos(a, b) for a, b in zip(test.sent1[:4], test.sent2[:4], strict=True)]
    assert table["STSBenchmark"] == pytest.approx(100 * spearmanr(sys, test.gold[:4]).statistic)


def test_dev_uses_the_dev_split_and_limit(tiny_root: Path) -> None:
    dev = load_task(tiny_root, "STSBenchmark", "dev")["dev"]
    sys = [_cos(a, b) for a, b in zip(dev.sent1[:5], dev.sent2[:5], strict=True)]
    expected = 100 * spearmanr(sys, dev.gold[:5]).statistic
    assert stsb_dev_spearman(bag_of_words, tiny_root, limit=5) == pytest.approx(expected)


def test_batched_encode_dedups_and_batches_by_length() -> None:
    calls: list[list[str]] = []

    def encode(sentences: list[str]) -> torch.Tensor:
        calls.append(sentences)
        return bag_of_words(sentences)

    sentences = ["a man", "a man", "the cat eats food", "a", "the dog runs"]
    emb = batched_encode(encode, sentences, batch_size=2)
    assert set(emb) == set(sentences)
    assert sum(len(c) for c in calls) == 4
    lengths = [len(s.split()) for c in calls for s in c]
    assert lengths == sorted(lengths, reverse=True)
    assert all(len(c) <= 2 for c in calls)


EXPECTED_PAIRS = {
    "STS12": 3108,
    "STS13": 1500,
    "STS14": 3750,
    "STS15": 3000,
    "STS16": 1186,
}


def test_real_files_pair_counts() -> None:
    root = shared_datasets()
    if root is None or not (root / "senteval").is_dir():
        pytest.skip("real SentEval STS files not present (../shared/datasets/senteval)")
    for task, expected in EXPECTED_PAIRS.items():
        subsets = load_task(root, task)
        assert list(subsets) == list(YEAR_TASKS[task][1])
        assert sum(len(p) for p in subsets.values()) == expected, task
    assert len(load_task(root, "STSBenchmark", "test")["test"]) == 1379
    assert len(load_task(root, "STSBenchmark", "dev")["dev"]) == 1500
    assert len(load_task(root, "SICKRelatedness", "test")["test"]) == 4927

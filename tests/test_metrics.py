"""Metrics: hand-computed cases, batching invariance, a naive loop, and scipy references."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from common.metrics import RankingAccumulator, pearson, ranking_metrics, spearman


def test_single_target_hand_computed() -> None:
    # Items ranked by score: 4 (0.9), 1 (0.8), 3 (0.7), 0 (0.2), 2 (0.1); target 3 is third.
    scores = torch.tensor([[0.2, 0.8, 0.1, 0.7, 0.9]])
    m = ranking_metrics(scores, torch.tensor([3]), ks=[2, 5])
    assert m["HR@2"].item() == 0 and m["HR@5"].item() == 1
    assert m["NDCG@5"].item() == pytest.approx(1 / math.log2(4))  # rank 2 (0-based) -> log2(4)
    assert m["MRR@5"].item() == pytest.approx(1 / 3) and m["MRR@2"].item() == 0
    assert m["Precision@5"].item() == pytest.approx(1 / 5) and m["Recall@5"].item() == 1


def test_exclude_moves_seen_items_down() -> None:
    scores = torch.tensor([[0.2, 0.8, 0.1, 0.7, 0.9]])
    seen = torch.tensor([[False, True, False, False, True]])  # items 4 and 1 already seen
    m = ranking_metrics(scores, torch.tensor([3]), ks=[1], exclude=seen)
    assert m["HR@1"].item() == 1 and m["NDCG@1"].item() == 1


def test_multi_target_hand_computed() -> None:
    # Ranking 4, 1, 3, 0, 2; relevant {1, 2}: hit at position 1 (0-based) within k=3.
    scores = torch.tensor([[0.2, 0.8, 0.1, 0.7, 0.9]])
    relevant = torch.tensor([[0, 1, 1, 0, 0]])
    m = ranking_metrics(scores, relevant, ks=[3, 5])
    assert m["Recall@3"].item() == pytest.approx(0.5) and m["Precision@3"].item() == 1 / 3
    assert m["MRR@3"].item() == pytest.approx(0.5) and m["HR@3"].item() == 1
    idcg = 1 + 1 / math.log2(3)
    assert m["NDCG@3"].item() == pytest.approx((1 / math.log2(3)) / idcg)
    assert m["NDCG@5"].item() == pytest.approx((1 / math.log2(3) + 1 / math.log2(6)) / idcg)


def _naive(scores: torch.Tensor, targets: torch.Tensor, k: int) -> dict[str, float]:
    totals = {"HR": 0.0, "NDCG": 0.0, "MRR": 0.0}
    for row, target in zip(scores.tolist(), targets.tolist(), strict=True):
        order = torch.topk(torch.tensor(row), k).indices.tolist()
        if target in order:
            pos = order.index(target)
            totals["HR"] += 1
            totals["NDCG"] += 1 / math.log2(pos + 2)
            totals["MRR"] += 1 / (pos + 1)
    return {f"{name}@{k}": v / len(targets) for name, v in totals.items()}


def test_accumulator_matches_naive_loop_and_is_batch_invariant() -> None:
    gen = torch.Generator().manual_seed(0)
    scores = torch.randn(97, 40, generator=gen)
    targets = torch.randint(0, 40, (97,), generator=gen)
    whole = RankingAccumulator([5, 10])
    whole.update(scores, targets)
    chunked = RankingAccumulator([5, 10])
    for s, t in zip(scores.split(13), targets.split(13), strict=True):
        chunked.update(s, t)
    assert whole.compute() == pytest.approx(chunked.compute())
    for k in (5, 10):
        for key, value in _naive(scores, targets, k).items():
            assert whole.compute()[key] == pytest.approx(value)


def test_correlations_hand_computed() -> None:
    assert pearson([1, 2, 3], [2, 4, 6]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [10, 20, 30, 1]) == pytest.approx(-0.2)  # 1-6·18/(4·15)
    # ties: ranks of [1, 1, 2] are [1.5, 1.5, 3]
    assert spearman([1, 1, 2], [1, 2, 3]) == pytest.approx(pearson([1.5, 1.5, 3], [1, 2, 3]))


def test_correlations_match_scipy() -> None:
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 6, 200).astype(float), rng.normal(size=200)
    y[:50] = x[:50]
    assert spearman(x, y) == pytest.approx(stats.spearmanr(x, y).statistic, abs=1e-12)
    assert pearson(x, y) == pytest.approx(stats.pearsonr(x, y).statistic, abs=1e-12)

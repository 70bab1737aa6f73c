"""The protocol's AUC, NMI and ARI against scikit-learn (the official evaluate.py's library)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score, roc_auc_score

from .metrics import ari, auc_ovr, nmi


def _softmax_probs(rng: np.random.Generator, n: int, c: int, ties: bool) -> np.ndarray:
    """Softmax rows as the probe's; with ``ties`` every row is one of 6 rows (tied scores)."""
    logits = rng.normal(size=(6 if ties else n, c))
    probs: np.ndarray = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    return probs[rng.integers(0, 6, n)] if ties else probs


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("classes", [2, 3, 4])
@pytest.mark.parametrize("ties", [False, True])
def test_auc_matches_sklearn(seed: int, classes: int, ties: bool) -> None:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, 300)
    probs = _softmax_probs(rng, 300, classes, ties)
    if classes == 2:
        expected = roc_auc_score(y, probs[:, 1])
        assert auc_ovr(y, probs[:, 1]) == pytest.approx(expected, abs=1e-12)
    else:
        expected = roc_auc_score(y, probs, multi_class="ovr")
    assert auc_ovr(y, probs) == pytest.approx(expected, abs=1e-12)


def test_auc_hand_computed_and_single_class_refused() -> None:
    # positives score 0.35, 0.8; negatives 0.1, 0.4: 3 of the 4 pairs ordered -> 0.75
    assert auc_ovr([0, 0, 1, 1], np.array([0.1, 0.4, 0.35, 0.8])) == pytest.approx(0.75)
    assert auc_ovr([0, 1], np.array([0.5, 0.5])) == pytest.approx(0.5)  # a tie counts half
    with pytest.raises(ValueError, match="one class"):
        auc_ovr([1, 1, 1], np.array([0.1, 0.2, 0.3]))


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("clusters", [2, 4, 7])
def test_nmi_and_ari_match_sklearn(seed: int, clusters: int) -> None:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, 300)
    pred = np.where(rng.random(300) < 0.6, (y * 3 + 1) % clusters, rng.integers(0, clusters, 300))
    expected_nmi = normalized_mutual_info_score(y, pred, average_method="arithmetic")
    assert nmi(y, pred) == pytest.approx(expected_nmi, abs=1e-12)
    assert ari(y, pred) == pytest.approx(adjusted_rand_score(y, pred), abs=1e-12)


def test_clustering_known_values() -> None:
    assert nmi([0, 0, 1, 1], [5, 5, 7, 7]) == pytest.approx(1.0)  # same partition, new names
    assert nmi([0, 0, 1, 1], [0, 1, 0, 1]) == pytest.approx(0.0, abs=1e-12)  # independent
    assert ari([0, 0, 1, 1], [1, 1, 0, 0]) == pytest.approx(1.0)
    # ARI of [0,0,1,1] vs [0,1,0,1]: Σ C(n_ij,2) = 0, E = 2·2/6 = 2/3, max = 2 -> -0.5
    assert ari([0, 0, 1, 1], [0, 1, 0, 1]) == pytest.approx(-0.5)

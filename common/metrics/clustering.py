"""Clustering agreement: NMI (arithmetic-mean normalisation) and the adjusted Rand index."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from common.metrics.correlation import ArrayLike


def contingency(a: ArrayLike, b: ArrayLike) -> NDArray[np.float64]:
    _, ia = np.unique(np.asarray(a), return_inverse=True)
    _, ib = np.unique(np.asarray(b), return_inverse=True)
    table = np.zeros((ia.max() + 1, ib.max() + 1), dtype=np.float64)
    np.add.at(table, (ia, ib), 1.0)
    return table


def _entropy(counts: NDArray[np.float64]) -> float:
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log(p)).sum())


def nmi(labels_true: ArrayLike, labels_pred: ArrayLike) -> float:
    """NMI = I(U;V) / ((H(U) + H(V)) / 2), as scikit-learn's default."""
    table = contingency(labels_true, labels_pred)
    n = table.sum()
    h_u, h_v = _entropy(table.sum(1)), _entropy(table.sum(0))
    if h_u == 0 and h_v == 0:
        return 1.0
    nz = table > 0
    outer = np.outer(table.sum(1), table.sum(0))
    mi = float((table[nz] / n * np.log(table[nz] * n / outer[nz])).sum())
    denom = (h_u + h_v) / 2
    return mi / denom if denom > 0 else 0.0


def ari(labels_true: ArrayLike, labels_pred: ArrayLike) -> float:
    """ARI = (Σ C(n_ij,2) − E) / (½(Σ C(a_i,2) + Σ C(b_j,2)) − E), with the expected index
    E = Σ C(a_i,2) · Σ C(b_j,2) / C(n,2) (Hubert & Arabie, 1985)."""
    table = contingency(labels_true, labels_pred)

    def pairs(x: NDArray[np.float64]) -> float:
        return float((x * (x - 1) / 2).sum())

    n = table.sum()
    sum_ij, sum_a, sum_b = pairs(table), pairs(table.sum(1)), pairs(table.sum(0))
    expected = sum_a * sum_b / (n * (n - 1) / 2) if n > 1 else 0.0
    max_index = (sum_a + sum_b) / 2
    if max_index == expected:
        return 1.0
    return (sum_ij - expected) / (max_index - expected)

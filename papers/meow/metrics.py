"""The protocol's one-vs-rest AUC, NMI and ARI, equal to scikit-learn's (tested against it).

Macro-F1 is ``evaluate.macro_f1_batch``: the probe needs it for 50 runs at once at every
iteration.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from common.metrics.correlation import ArrayLike, average_ranks


def binary_auc(y_true: ArrayLike, scores: ArrayLike) -> float:
    """Mann–Whitney AUC = (Σ ranks of positives − n₊(n₊+1)/2) / (n₊ n₋), ties averaged."""
    t = np.asarray(y_true).astype(bool)
    n_pos, n_neg = int(t.sum()), int((~t).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError("AUC is undefined when only one class is present")
    ranks = average_ranks(scores)
    return float((ranks[t].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def auc_ovr(y_true: ArrayLike, probs: NDArray[np.floating]) -> float:
    """One-vs-rest macro AUC over the classes (scikit-learn's multi_class="ovr", "macro").

    ``probs`` is [N, C]; with C == 2 (or a 1-D score) the binary AUC of class 1 is returned.
    """
    t = np.asarray(y_true, dtype=np.int64)
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim == 1:
        return binary_auc(t, p)
    if p.shape[1] == 2:
        return binary_auc(t == 1, p[:, 1])
    return float(np.mean([binary_auc(t == c, p[:, c]) for c in range(p.shape[1])]))


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
    """NMI = I(U;V) / ((H(U) + H(V)) / 2), as scikit-learn's default (arithmetic mean)."""
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

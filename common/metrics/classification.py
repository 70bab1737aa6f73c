"""Macro/micro F1 and one-vs-rest AUC for node classification probes."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from common.metrics.correlation import ArrayLike, average_ranks


def f1_scores(
    y_true: ArrayLike, y_pred: ArrayLike, num_classes: int | None = None
) -> tuple[float, float]:
    """(macro-F1, micro-F1). Per class F1 = 2TP / (2TP + FP + FN); macro averages the classes
    present in y_true or y_pred (as scikit-learn), micro pools TP/FP/FN (= accuracy here)."""
    t = np.asarray(y_true, dtype=np.int64)
    p = np.asarray(y_pred, dtype=np.int64)
    n = int(num_classes or max(t.max(initial=0), p.max(initial=0)) + 1)
    tp = np.bincount(t[t == p], minlength=n).astype(np.float64)
    fp = np.bincount(p, minlength=n) - tp
    fn = np.bincount(t, minlength=n) - tp
    present = (np.bincount(t, minlength=n) + np.bincount(p, minlength=n)) > 0
    denom = 2 * tp + fp + fn
    per_class = np.divide(2 * tp, denom, out=np.zeros(n), where=denom > 0)
    macro = float(per_class[present].mean()) if present.any() else 0.0
    micro_denom = 2 * tp.sum() + fp.sum() + fn.sum()
    micro = float(2 * tp.sum() / micro_denom) if micro_denom > 0 else 0.0
    return macro, micro


def macro_f1(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    return f1_scores(y_true, y_pred)[0]


def micro_f1(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    return f1_scores(y_true, y_pred)[1]


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

"""The HeCo/DMGI evaluation protocol of MEOW's ``utils/evaluate.py``, vectorised.

Classification, per label rate (20/40/60 labelled nodes per class; fixed val/test of 1000):
50 logistic regressions (``Linear(d, C)``, Xavier-uniform weights, zero bias, Adam at the
dataset's ``eva_lr``/``eva_wd``, full batch, 200 iterations). For each run: the test Macro-F1 at
the first iteration of best validation Macro-F1, the test Micro-F1 at the first iteration of
best validation Micro-F1, and the one-vs-rest AUC of the softmax test probabilities at that same
(Micro-F1) iteration. Reported: mean (and std) over the 50 runs, in percent.

The 50 runs are trained at once as one (50, d, C) weight tensor: Adam is element-wise and the
summed loss gives each run exactly its own gradient, so this equals 50 separate runs.

Clustering: K-means (k = number of classes, 10 initialisations as scikit-learn 1.1's default)
repeated 10 times on the embeddings of all target nodes; NMI (arithmetic) and ARI, in percent.
AUC, NMI and ARI come from ``metrics.py`` (equal to scikit-learn's, which the official code uses).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.cluster import KMeans

from . import metrics


@dataclass(frozen=True)
class ProbeConfig:
    lr: float
    weight_decay: float
    runs: int = 50
    iterations: int = 200


def macro_f1_batch(preds: torch.Tensor, labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Macro-F1 of each row of ``preds`` (R, n) as scikit-learn computes it: the mean over the
    classes present in the labels or the predictions, F1 = 0 for a class never predicted right."""
    onehot_p = F.one_hot(preds, num_classes).float()  # R, n, C
    onehot_y = F.one_hot(labels, num_classes).float().unsqueeze(0)
    tp = (onehot_p * onehot_y).sum(1)
    fp = onehot_p.sum(1) - tp
    fn = onehot_y.sum(1) - tp
    denom = 2 * tp + fp + fn
    f1 = torch.where(denom > 0, 2 * tp / denom.clamp_min(1), torch.zeros_like(tp))
    present = denom > 0
    return (f1 * present).sum(1) / present.sum(1)


def xavier_init(runs: int, dim: int, num_classes: int, gen: torch.Generator) -> torch.Tensor:
    """Xavier-uniform weights of ``runs`` Linear(dim, C) layers, stored as (runs, dim, C)."""
    bound = float(np.sqrt(6.0 / (dim + num_classes)))
    return (torch.rand(runs, dim, num_classes, generator=gen) * 2 - 1) * bound


def _first_better(best: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
    return value > best  # strict: the first iteration reaching the maximum wins (list.index)


def probe(
    embeds: torch.Tensor,
    labels: torch.Tensor,
    split: dict[str, np.ndarray],
    cfg: ProbeConfig,
    generator: torch.Generator,
    init: torch.Tensor | None = None,
) -> dict[str, np.ndarray]:
    """Per-run test and validation scores (fractions) of the logistic regressions.

    ``init`` (runs, d, C) replaces the Xavier-uniform draw (tests use it to compare one batched
    call with separate runs).
    """
    num_classes = int(labels.max()) + 1
    x = {k: embeds[torch.as_tensor(v)] for k, v in split.items()}
    y = {k: labels[torch.as_tensor(v)] for k, v in split.items()}
    dim, runs = embeds.shape[1], cfg.runs
    if init is None:
        init = xavier_init(runs, dim, num_classes, generator)
    weight = init.clone().requires_grad_(True)
    bias = torch.zeros(runs, 1, num_classes, requires_grad=True)
    opt = torch.optim.Adam([weight, bias], lr=cfg.lr, weight_decay=cfg.weight_decay)
    neg = torch.full((runs,), -1.0)
    best = {"ma": neg.clone(), "mi": neg.clone()}
    test_ma, test_mi = torch.zeros(runs), torch.zeros(runs)
    val_ma, val_mi = torch.zeros(runs), torch.zeros(runs)
    test_prob = torch.zeros(runs, len(y["test"]), num_classes)
    val_prob = torch.zeros(runs, len(y["val"]), num_classes)
    for _ in range(cfg.iterations):
        opt.zero_grad()
        logits = torch.baddbmm(bias, x["train"].expand(runs, -1, -1), weight)
        loss = F.cross_entropy(
            logits.transpose(1, 2), y["train"].expand(runs, -1), reduction="none"
        )
        loss.mean(1).sum().backward()
        opt.step()
        with torch.no_grad():
            lv = torch.baddbmm(bias, x["val"].expand(runs, -1, -1), weight)
            lt = torch.baddbmm(bias, x["test"].expand(runs, -1, -1), weight)
            pv, pt = lv.argmax(2), lt.argmax(2)
            ma_v = macro_f1_batch(pv, y["val"], num_classes)
            mi_v = (pv == y["val"]).float().mean(1)
            up = _first_better(best["ma"], ma_v)
            best["ma"] = torch.where(up, ma_v, best["ma"])
            val_ma = torch.where(up, ma_v, val_ma)
            test_ma = torch.where(up, macro_f1_batch(pt, y["test"], num_classes), test_ma)
            up = _first_better(best["mi"], mi_v)
            best["mi"] = torch.where(up, mi_v, best["mi"])
            val_mi = torch.where(up, mi_v, val_mi)
            test_mi = torch.where(up, (pt == y["test"]).float().mean(1), test_mi)
            test_prob[up] = torch.softmax(lt[up], dim=2)
            val_prob[up] = torch.softmax(lv[up], dim=2)
    yt, yv = y["test"].numpy(), y["val"].numpy()
    return {
        "test_ma": test_ma.numpy(),
        "test_mi": test_mi.numpy(),
        "test_auc": np.array([metrics.auc_ovr(yt, p) for p in test_prob.numpy()]),
        "val_ma": val_ma.numpy(),
        "val_mi": val_mi.numpy(),
        "val_auc": np.array([metrics.auc_ovr(yv, p) for p in val_prob.numpy()]),
    }


def cluster_scores(
    embeds: np.ndarray, labels: np.ndarray, repeats: int, seed: int
) -> dict[str, float]:
    """Mean NMI and ARI (fractions) of ``repeats`` K-means runs with k = number of classes."""
    k = int(labels.max()) + 1
    nmi, ari = [], []
    for r in range(repeats):
        pred = KMeans(n_clusters=k, n_init=10, random_state=seed * 1000 + r).fit_predict(embeds)
        nmi.append(metrics.nmi(labels, pred))
        ari.append(metrics.ari(labels, pred))
    return {"NMI": float(np.mean(nmi)), "ARI": float(np.mean(ari))}


@dataclass
class Evaluation:
    test: dict[str, float]
    validation: dict[str, float]
    spread: dict[str, float]  # std over the 50 probe runs, percent


def evaluate_embeddings(
    embeds: np.ndarray,
    labels: np.ndarray,
    splits: dict[int, dict[str, np.ndarray]],
    probe_cfg: ProbeConfig,
    kmeans_repeats: int,
    seed: int,
) -> Evaluation:
    """The full protocol; metrics ``Ma-F1@20``, ``Mi-F1@20``, ``AUC@20``, …, ``NMI``, ``ARI``."""
    emb = torch.as_tensor(np.asarray(embeds, dtype=np.float32))
    lab = torch.as_tensor(labels, dtype=torch.long)
    gen = torch.Generator().manual_seed(seed)
    test, val, spread = {}, {}, {}
    for rate, split in splits.items():
        s = probe(emb, lab, split, probe_cfg, gen)
        for name, key in (("Ma-F1", "ma"), ("Mi-F1", "mi"), ("AUC", "auc")):
            test[f"{name}@{rate}"] = 100 * float(s[f"test_{key}"].mean())
            spread[f"{name}@{rate}"] = 100 * float(s[f"test_{key}"].std())
            val[f"{name}@{rate}"] = 100 * float(s[f"val_{key}"].mean())
    for key, value in cluster_scores(np.asarray(embeds), labels, kmeans_repeats, seed).items():
        test[key] = 100 * value
    return Evaluation(test=test, validation=val, spread=spread)

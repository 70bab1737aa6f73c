"""Frozen-feature evaluation shared by the vision papers: the weighted kNN monitor and a
linear probe.

kNN (Wu et al. 2018, InstDisc; the monitor of most SSL repositories): features L2-normalised;
each query's k nearest training features by cosine vote for their class with weight
exp(sim / τ); accuracy of the top-voted class. Linear probe: a softmax layer on standardised
features, trained full-batch with Adam from a seeded initialisation.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def knn_top1(
    bank: Tensor,
    bank_labels: Tensor,
    queries: Tensor,
    labels: Tensor,
    num_classes: int,
    k: int = 200,
    temperature: float = 0.1,
) -> float:
    """Top-1 accuracy (percent) of the weighted kNN classifier."""
    bank, queries = F.normalize(bank, dim=1), F.normalize(queries, dim=1)
    k = min(k, len(bank))
    correct = 0
    for chunk, chunk_labels in zip(queries.split(1024), labels.split(1024), strict=True):
        sim, idx = (chunk @ bank.T).topk(k, dim=1)
        votes = torch.zeros(len(chunk), num_classes)
        votes.scatter_add_(1, bank_labels[idx], (sim / temperature).exp())
        correct += int((votes.argmax(dim=1) == chunk_labels).sum())
    return 100.0 * correct / max(len(labels), 1)


def linear_probe_top1(
    train: Tensor,
    train_labels: Tensor,
    test: Tensor,
    labels: Tensor,
    num_classes: int,
    steps: int = 300,
    lr: float = 0.01,
) -> float:
    """Top-1 (percent) of a softmax classifier trained full-batch on standardised features."""
    mean, std = train.mean(0), train.std(0) + 1e-6
    x, xt = (train - mean) / std, (test - mean) / std
    gen = torch.Generator().manual_seed(0)
    clf = nn.Linear(x.shape[1], num_classes)
    with torch.no_grad():
        clf.weight.copy_(torch.randn(clf.weight.shape, generator=gen) * 0.01)
        clf.bias.zero_()
    optimizer = torch.optim.Adam(clf.parameters(), lr=lr)
    with torch.enable_grad():
        for _ in range(steps):
            optimizer.zero_grad()
            F.cross_entropy(clf(x), train_labels).backward()
            optimizer.step()
    with torch.no_grad():
        return 100.0 * float((clf(xt).argmax(1) == labels).float().mean())

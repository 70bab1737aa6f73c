"""Instance-level evaluation on frozen, average-pooled backbone features.

kNN: cosine similarity to every training feature, the k nearest vote for their class with
weight exp(similarity / τ) (k = 200, τ = 0.1, the InstDisc monitor). Linear probe: a softmax
layer on standardised features, trained full-batch with Adam.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


@torch.no_grad()
def pooled_features(backbone: nn.Module, images: Tensor, mean: float, std: float) -> Tensor:
    backbone.eval()
    return torch.cat([backbone((c - mean) / std).mean(dim=(2, 3)) for c in images.split(512)])


def knn_top1(
    bank: Tensor, bank_labels: Tensor, queries: Tensor, labels: Tensor, classes: int,
    k: int = 200, temperature: float = 0.1,
) -> float:  # fmt: skip
    bank, queries = F.normalize(bank, dim=1), F.normalize(queries, dim=1)
    k = min(k, len(bank))
    hits = 0
    for q, y in zip(queries.split(1024), labels.split(1024), strict=True):
        sim, idx = (q @ bank.T).topk(k, dim=1)
        votes = torch.zeros(len(q), classes).scatter_add_(
            1, bank_labels[idx], (sim / temperature).exp()
        )
        hits += int((votes.argmax(dim=1) == y).sum())
    return 100.0 * hits / max(len(labels), 1)


def linear_top1(
    train: Tensor, train_labels: Tensor, test: Tensor, labels: Tensor, classes: int,
    steps: int = 300, lr: float = 0.01,
) -> float:  # fmt: skip
    mu, sd = train.mean(0), train.std(0) + 1e-6
    x, xt = (train - mu) / sd, (test - mu) / sd
    layer = nn.Linear(x.shape[1], classes)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        layer.weight.copy_(torch.randn(layer.weight.shape, generator=gen) * 0.01)
        layer.bias.zero_()
    opt = torch.optim.Adam(layer.parameters(), lr=lr)
    with torch.enable_grad():
        for _ in range(steps):
            opt.zero_grad()
            F.cross_entropy(layer(x), train_labels).backward()
            opt.step()
    with torch.no_grad():
        return 100.0 * float((layer(xt).argmax(dim=1) == labels).float().mean())

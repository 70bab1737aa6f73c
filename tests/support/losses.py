"""Naive references for contrastive losses (python loops, exp / log by hand) and their inputs.

Used by ``tests/test_losses.py`` and by the tests of losses written in a paper folder.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import Tensor

Vec = list[float]

SIMS = ["cosine", "dot"]
BATCHES = [2, 3, 7]
TEMPS = [0.1, 0.5, 1.0]


def rows(t: Tensor) -> list[Vec]:
    return [[float(v) for v in row] for row in t.detach().double().tolist()]


def dot(a: Vec, b: Vec) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def sim(a: Vec, b: Vec, similarity: str) -> float:
    if similarity == "dot":
        return dot(a, b)
    return dot(a, b) / math.sqrt(dot(a, a) * dot(b, b))


def log_sum_exp(values: Sequence[float]) -> float:
    top = max(values)
    return top + math.log(sum(math.exp(v - top) for v in values))


def views(z1: Tensor, z2: Tensor) -> tuple[list[Vec], int]:
    """The 2N views [z1; z2] as lists, and N; view a's positive is (a + N) mod 2N."""
    return rows(z1) + rows(z2), z1.shape[0]


def randn(*shape: int, seed: int, scale: float = 1.0) -> Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=torch.float64) * scale


def pair(n: int, d: int, seed: int, similarity: str) -> tuple[Tensor, Tensor]:
    # dot products of moderate size so that small temperatures stay well conditioned
    scale = 0.5 if similarity == "dot" else 1.0
    return randn(n, d, seed=seed, scale=scale), randn(n, d, seed=seed + 1, scale=scale)


def orthonormal(n: int, d: int) -> Tensor:
    return torch.eye(d, dtype=torch.float64)[:n]


def leaf(*shape: int, seed: int) -> Tensor:
    """A float64 tensor that requires grad, for gradcheck."""
    return randn(*shape, seed=seed).requires_grad_()


def gradcheck_two_views(loss: Callable[[Tensor, Tensor], Tensor]) -> bool:
    """``torch.autograd.gradcheck`` of ``loss(z1, z2)`` at two small float64 views [3, 4]."""
    return bool(torch.autograd.gradcheck(loss, (leaf(3, 4, seed=4), leaf(3, 4, seed=5))))

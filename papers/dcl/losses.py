"""Decoupled contrastive learning: DCL and its von Mises-Fisher weighted variant DCLW.

Built on ``common.losses.base`` (the view layout of ``common.losses.nt_xent``), so that DCL and
NT-Xent differ only in the columns of the denominator.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from common.losses.base import Similarity, check_temperature, column_mask, two_view_logits

__all__ = ["dcl", "dclw"]

WeightFn = Callable[[Tensor, Tensor], Tensor]


def _decoupled_loss(
    z1: Tensor,
    z2: Tensor,
    *,
    temperature: float,
    similarity: Similarity,
    gather: bool,
    weight_fn: WeightFn | None,
) -> Tensor:
    """Mean over the 2N local anchors of -w_i * s(a, p(a))/t + logsumexp over negatives.

    ``weight_fn`` receives the (normalised, gathered) global views z1_all, z2_all and
    returns one weight per global pair; it is evaluated without gradient.
    """
    lay = two_view_logits(z1, z2, temperature, similarity, gather)
    rows, cols = lay.logits.shape
    if cols < 4:
        raise ValueError("the decoupled loss needs a (global) batch of at least 2 pairs")
    rows_idx = torch.arange(rows, device=lay.logits.device)
    positive = lay.logits[rows_idx, lay.pos_idx]
    drop = column_mask(rows, cols, lay.self_idx) | column_mask(rows, cols, lay.pos_idx)
    negative = torch.logsumexp(lay.logits.masked_fill(drop, float("-inf")), dim=1)
    if weight_fn is not None:
        with torch.no_grad():
            weights = weight_fn(lay.z1_all.detach(), lay.z2_all.detach())
        batch = z1.shape[0]
        local = weights[lay.offset : lay.offset + batch]
        positive = positive * torch.cat([local, local])
    return (negative - positive).mean()


def dcl(
    z1: Tensor,
    z2: Tensor,
    *,
    temperature: float = 0.1,
    similarity: Similarity = "cosine",
    gather: bool = False,
) -> Tensor:
    """Decoupled contrastive loss: NT-Xent with the positive removed from the denominator.

    With logits s / temperature (s: cosine, rows normalised inside, or dot), each of the
    2N anchors a (both views) with positive p(a) and the 2N-2 other views as negatives::

        l_a = -s(a, p(a))/t + log sum_{b not in {a, p(a)}} exp(s(a, b)/t),  loss = mean_a l_a

    This is the mean over anchors, i.e. half the sum of the two one-way losses of the
    authors' code (which adds them). ``gather=True``: negatives from all processes.
    Needs N >= 2 (globally).

    Reference: Yeh et al., "Decoupled Contrastive Learning", ECCV 2022.
    """
    return _decoupled_loss(
        z1, z2, temperature=temperature, similarity=similarity, gather=gather, weight_fn=None
    )


def vmf_weights(z1: Tensor, z2: Tensor, sigma: float) -> Tensor:
    """Negative von Mises-Fisher weights w_i = 2 - N exp(<z1_i,z2_i>/σ) / Σ_j exp(<z1_j,z2_j>/σ).

    Inputs are the L2-normalised views [N, D]; the weights average to exactly 1.
    """
    s = (z1 * z2).sum(dim=1) / sigma
    return 2.0 - z1.shape[0] * torch.softmax(s, dim=0)


def dclw(
    z1: Tensor,
    z2: Tensor,
    *,
    temperature: float = 0.1,
    sigma: float = 0.5,
    gather: bool = False,
) -> Tensor:
    """DCL with the positive term weighted by the negative von Mises-Fisher weight.

    Cosine similarity, logits = cos / temperature, for the 2N anchors a of pair i::

        l_a = -w_i cos(a, p(a))/t + log sum_{b not in {a, p(a)}} exp(cos(a, b)/t)
        w_i = 2 - exp(cos(z1_i, z2_i)/σ) / ((1/N) Σ_j exp(cos(z1_j, z2_j)/σ))

    w is computed without gradient (as in the paper's Eq. and lightly's DCLWLoss); with
    ``gather=True`` N and the sum over j run over the global batch.

    Reference: Yeh et al., "Decoupled Contrastive Learning", ECCV 2022.
    """
    check_temperature(sigma, "sigma")
    return _decoupled_loss(
        z1,
        z2,
        temperature=temperature,
        similarity="cosine",
        gather=gather,
        weight_fn=lambda a, b: vmf_weights(a, b, sigma),
    )

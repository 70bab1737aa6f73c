"""SimCLR's normalised temperature-scaled cross-entropy (NT-Xent)."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from common.losses.base import Similarity, column_mask, two_view_logits

__all__ = ["nt_xent"]


def nt_xent(
    z1: Tensor,
    z2: Tensor,
    *,
    temperature: float = 0.5,
    similarity: Similarity = "cosine",
    gather: bool = False,
) -> Tensor:
    """NT-Xent over the 2N views [z1; z2] ([N, D] each; rows i of z1 and z2 are positives).

    With logits s(a, b) / temperature (s: cosine, rows normalised inside, or dot), each
    of the 2N anchors a has one positive p(a) (its other view) and 2N-2 negatives (all
    other views; the self-similarity is excluded)::

        l_a = -log( exp(s(a, p(a))/t) / sum_{b != a} exp(s(a, b)/t) ),  loss = mean_a l_a

    ``gather=True`` takes positives and negatives from the views of all processes
    (gather_with_grad), the anchors stay local, so the mean over ranks of the returned
    value is the loss of the global batch.

    Reference: Chen et al., "A Simple Framework for Contrastive Learning of Visual
    Representations", ICML 2020.
    """
    lay = two_view_logits(z1, z2, temperature, similarity, gather)
    rows, cols = lay.logits.shape
    logits = lay.logits.masked_fill(column_mask(rows, cols, lay.self_idx), float("-inf"))
    return F.cross_entropy(logits, lay.pos_idx)

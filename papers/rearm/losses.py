"""REARM's loss terms (official ``model.py`` ``loss`` and ``utils/helper.py``) and the
baselines' (MMRec ``common/loss.py``), as small pure functions."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def bpr_logsigmoid(pos_scores: Tensor, neg_scores: Tensor) -> Tensor:
    """REARM's BPR: −mean log σ(s⁺ − s⁻) (``nn.LogSigmoid``; Rendle et al., UAI 2009)."""
    return -F.logsigmoid(pos_scores - neg_scores).mean()


def bpr_gamma(pos_scores: Tensor, neg_scores: Tensor, gamma: float = 1e-10) -> Tensor:
    """MMRec's ``BPRLoss`` for the baselines: −mean log(γ + σ(s⁺ − s⁻)), γ = 1e-10."""
    return -torch.log(gamma + torch.sigmoid(pos_scores - neg_scores)).mean()


def embedding_norm(*tables: Tensor) -> Tensor:
    """MMRec's ``EmbLoss``: Σ‖E‖_F (plain norms, not squared) divided by the batch size."""
    total = sum(
        (torch.linalg.vector_norm(t) for t in tables), torch.zeros((), device=tables[0].device)
    )
    return total / tables[-1].shape[0]


def modal_info_nce(a: Tensor, b: Tensor, tau: float) -> Tensor:
    """The official ``ssl_loss`` on already-selected rows (the batch's distinct users, or its
    distinct items): with â, b̂ the L2-normalised rows,

        L = −(1/n) Σ_i log( exp(â_i·b̂_i / τ) / Σ_j exp(â_i·b̂_j / τ) ),

    τ = ``cl_tmp`` divides the cosine (SimCLR / InfoNCE convention; Oord et al. 2018). Row i's
    visual part is the anchor, its text part the positive, the other rows' text parts the
    negatives (one direction only, as the official code). Computed with logsumexp (the official
    code exponentiates directly: the same value while exp(1/τ) is finite)."""
    na, nb = F.normalize(a, dim=1), F.normalize(b, dim=1)
    logits = na @ nb.T / tau
    return (torch.logsumexp(logits, dim=1) - logits.diagonal()).mean()


def orthogonality(a: Tensor, b: Tensor) -> Tensor:
    """The official ``cal_diff_loss`` (a squared-Frobenius "difference" loss, as in Domain
    Separation Networks, Bousmalis et al. 2016): centre each part over the rows, divide each row
    by its (detached) norm + 1e-6, then mean over the d x d entries of (AᵀB)²."""
    a = a - a.mean(dim=0, keepdim=True)
    b = b - b.mean(dim=0, keepdim=True)
    a = a / (torch.linalg.vector_norm(a, dim=1, keepdim=True).detach() + 1e-6)
    b = b / (torch.linalg.vector_norm(b, dim=1, keepdim=True).detach() + 1e-6)
    return (a.T @ b).pow(2).mean()

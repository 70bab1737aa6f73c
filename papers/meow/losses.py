"""MEOW's losses (jianxiangyu/MEOW ``module/contrast.py``, ``code_adameow/module/adameow.py``).

Weighted InfoNCE (MEOW), anchor ``c`` (projected coarse view), candidates ``f`` (projected fine
view), ``s_ij = c_i·f_j / τ``, and ``w_ij`` the number of the K clusterings of ``f`` in which
``i`` and ``j`` fall in different clusters (so ``w_ii = 0``: the positive is not in the sum)::

    L = −1/N Σ_i log( exp(s_ii) / Σ_j w_ij exp(s_ij) )

Prototype loss (PCL, Li et al. ICLR 2021) on the coarse anchor, per clustering with centroids
``μ_k`` (L2-normalised) and per-cluster temperatures ``φ_k``::

    L_proto = −1/N Σ_i log( exp(c_i·μ_{k(i)}/φ_{k(i)}) / (N · mean_k exp(c_i·μ_k/φ_k)) )

averaged over clusterings (the official ``N · mean_k`` instead of ``Σ_k`` only adds the constant
``log(N/K)``; kept so that loss values match the official code).

AdaMEOW: anchor ``f``, candidates ``c``, learned ``w_ij = σ(MLP(f_i + c_j))`` on every pair,
the positive included in the denominator::

    L = −1/N Σ_i log( exp(s_ii) / Σ_j w_ij exp(s_ij) ),  s_ij = f_i·c_j / τ

All sums are computed in log space (``logsumexp``), which equals the official
``exp``-then-``log`` up to rounding and never overflows.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from .cluster import Clustering


def negative_weights(assignments: list[torch.Tensor]) -> torch.Tensor:
    """``w_ij = Σ_k [cluster_k(i) ≠ cluster_k(j)]`` (N×N)."""
    n = assignments[0].shape[0]
    weight = torch.zeros(n, n)
    for a in assignments:
        weight += (a.unsqueeze(1) != a.unsqueeze(0)).float()
    return weight


def weighted_info_nce(
    anchor: torch.Tensor, candidates: torch.Tensor, weight: torch.Tensor, tau: float
) -> torch.Tensor:
    sim = anchor @ candidates.t() / tau
    log_denominator = torch.logsumexp(sim + torch.log(weight), dim=1)
    return (log_denominator - sim.diagonal()).mean()


def proto_nce(anchor: torch.Tensor, clusterings: list[Clustering]) -> torch.Tensor:
    n = anchor.shape[0]
    total = anchor.new_zeros(())
    for c in clusterings:
        logits = anchor @ c.centroids.t() / c.density.unsqueeze(0)
        pos = logits.gather(1, c.assignment.unsqueeze(1)).squeeze(1)
        k = logits.shape[1]
        log_neg = torch.logsumexp(logits, dim=1) - math.log(k) + math.log(n)
        total = total + (log_neg - pos).mean()
    return total / len(clusterings)


def adaptive_info_nce(
    anchor: torch.Tensor, candidates: torch.Tensor, weight_logits: torch.Tensor, tau: float
) -> torch.Tensor:
    sim = anchor @ candidates.t() / tau
    log_denominator = torch.logsumexp(sim + F.logsigmoid(weight_logits), dim=1)
    return (log_denominator - sim.diagonal()).mean()


def fused_weighted_info_nce(
    anchor: torch.Tensor,
    candidates: torch.Tensor,
    assignments: list[torch.Tensor],
    tau: float,
    block_floats: int = 1 << 20,
) -> torch.Tensor:
    """``weighted_info_nce(anchor, candidates, negative_weights(assignments), tau)`` without
    the N×N weight matrix, and with its N×N gradient computed in the same row blocks (of about
    ``block_floats`` entries, 4 MB: they stay in cache between the passes).

    Sums are taken in linear space, ``log Σ_j w_ij exp(s_ij)`` with one ``exp`` per pair, as the
    official code does, when |s_ij| ≤ ‖a_i‖‖c_j‖/τ cannot overflow float32 (MEOW's embeddings
    are L2-normalised: |s| ≤ 1/τ); otherwise each row is shifted by its maximum first."""
    sim = (anchor / tau) @ candidates.t()  # τ folded into the N×64 factor: one N×N pass less
    rows = max(1, block_floats // sim.shape[1])
    bound = float(anchor.detach().norm(dim=1).max() * candidates.detach().norm(dim=1).max()) / tau
    shift = not bound < SAFE_EXP
    lse: torch.Tensor = _WeightedLogSumExp.apply(sim, tuple(assignments), rows, shift)  # type: ignore[no-untyped-call]
    return lse - sim.diagonal().mean()


SAFE_EXP = 80.0  # exp(80) ≈ 5.5e34: N·K·exp(80) stays far below float32's 3.4e38 for any N here


class _WeightedLogSumExp(torch.autograd.Function):
    """``mean_i log Σ_j w_ij exp(s_ij)`` with ``w_ij`` the number of clusterings separating
    ``i`` and ``j``, one row block at a time; the gradient ``w_ij exp(s_ij) / (N Σ_j …)`` is
    stored while the block is in cache and only scaled in ``backward`` (the output is a
    scalar)."""

    @staticmethod
    def forward(
        ctx: Any, sim: torch.Tensor, assignments: tuple[torch.Tensor, ...], rows: int, shift: bool
    ) -> torch.Tensor:
        n = sim.shape[0]
        lse = sim.new_empty(n)
        grad = torch.empty_like(sim) if ctx.needs_input_grad[0] else None
        first, *others = assignments
        for start in range(0, n, rows):
            block = slice(start, start + rows)
            weighted = (first[block].unsqueeze(1) != first.unsqueeze(0)).to(sim.dtype)
            for a in others:
                weighted += a[block].unsqueeze(1) != a.unsqueeze(0)
            if shift:
                top = sim[block].max(dim=1, keepdim=True).values
                weighted.mul_(torch.sub(sim[block], top).exp_())
            else:
                weighted.mul_(sim[block].exp())
            total = weighted.sum(dim=1)
            lse[block] = total.log() + (top.squeeze(1) if shift else 0.0)
            if grad is not None:
                torch.div(weighted, total.unsqueeze(1) * n, out=grad[block])
        ctx.save_for_backward(grad)
        return lse.mean()

    @staticmethod
    def backward(ctx: Any, out: torch.Tensor) -> tuple[torch.Tensor | None, None, None, None]:
        (grad,) = ctx.saved_tensors
        if grad is None:
            return None, None, None, None
        # scaled in place, not copied (64 MB on ACM); a second backward through the same graph
        # is refused by autograd's saved-tensor version check
        return grad.mul_(out), None, None, None

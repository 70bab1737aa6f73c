"""Shuffled group whitening whitens each group and is equivariant to the channel shuffle."""

from __future__ import annotations

import torch

from .model import group_whiten


def test_groups_are_whitened() -> None:
    torch.manual_seed(0)
    mix = torch.randn(12, 12)
    x = torch.randn(200, 12) @ mix + 3.0
    out = group_whiten(x, groups=3).double()
    assert out.mean(0).abs().max() < 1e-4
    for g in range(3):
        block = out[:, 4 * g : 4 * (g + 1)]
        cov = block.T @ block / 200
        torch.testing.assert_close(cov, torch.eye(4, dtype=torch.float64), atol=1e-3, rtol=0)
    full_cov = out.T @ out / 200  # across groups nothing is decorrelated
    assert full_cov[:4, 4:].abs().max() > 0.05


def test_shuffle_is_undone_and_changes_groups() -> None:
    torch.manual_seed(1)
    x = torch.randn(100, 8) @ torch.randn(8, 8)
    perm = torch.randperm(8)
    shuffled = group_whiten(x, 2, perm)
    # same as whitening the permuted matrix and un-permuting by hand
    manual = group_whiten(x[:, perm], 2)[:, torch.argsort(perm)]
    torch.testing.assert_close(shuffled, manual)
    assert not torch.allclose(shuffled, group_whiten(x, 2), atol=1e-3)


def _zca(xc: torch.Tensor) -> torch.Tensor:
    """ZCA matrix Σ^{-1/2} of centred rows ``xc`` [B, d], differentiable through Σ."""
    eigval, eigvec = torch.linalg.eigh(xc.T @ xc / len(xc))
    w: torch.Tensor = eigvec @ torch.diag(eigval.rsqrt()) @ eigvec.T
    return w


def test_whitening_matrix_is_constant_in_backward() -> None:
    """As the official code (its ``torch.tensor(covs)`` copy cuts Σ from the graph), the gradient
    flows through the centring and the product only: for a probe Σ c ⊙ out, per group
    d/dx = (c − mean c) W, W = Σ^{-1/2}. Letting it flow through W too gives another gradient."""
    torch.manual_seed(0)
    x = (torch.randn(50, 6) @ torch.randn(6, 6)).double().requires_grad_()
    probe = torch.randn(50, 6, dtype=torch.float64)  # a weighted sum: its gradient is not zero
    (group_whiten(x, 2) * probe).sum().backward()
    assert x.grad is not None

    constant_w, through_w = [], []
    for g in range(2):
        cols = slice(3 * g, 3 * (g + 1))
        xc = x[:, cols] - x[:, cols].mean(0)
        w = _zca(xc.detach())
        c = probe[:, cols]
        constant_w.append((c - c.mean(0)) @ w)
        (grad,) = torch.autograd.grad((xc @ _zca(xc) * c).sum(), x)
        through_w.append(grad[:, cols])
    expected, other = torch.cat(constant_w, 1), torch.cat(through_w, 1)
    assert (expected - other).abs().max() > 0.1  # the probe tells the two behaviours apart
    torch.testing.assert_close(x.grad, expected)

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


def test_whitening_matrix_is_constant_in_backward() -> None:
    x = torch.randn(50, 6, requires_grad=True)
    out = group_whiten(x, 2)
    out.sum().backward()
    # with W fixed, d/dx sum((x - mean) W) = 0 per column because centring removes the mean
    assert x.grad is not None and x.grad.abs().max() < 1e-5

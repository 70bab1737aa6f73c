"""Tests of common.losses against loop-based references, closed forms and gradcheck."""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor

from common.losses import info_nce, nt_xent
from tests.support.losses import (
    BATCHES,
    SIMS,
    TEMPS,
    Vec,
    gradcheck_two_views,
    leaf,
    log_sum_exp,
    orthonormal,
    pair,
    randn,
    rows,
    sim,
    views,
)

# --------------------------------------------------------------------------------------
# Naive references: python loops over anchors, exp / log by hand with math.
# --------------------------------------------------------------------------------------


def ref_info_nce(
    q: Tensor,
    k: Tensor,
    t: float,
    similarity: str,
    extra: Tensor | None = None,
    symmetric: bool = False,
) -> list[float]:
    """Per-row loss: -log exp(s_ii/t) / (sum_j exp(s_ij/t) + sum_m exp(s(q_i, n_m)/t))."""
    qs, ks = rows(q), rows(k)
    ns = rows(extra) if extra is not None else []

    def one_way(anchors: list[Vec], cands: list[Vec]) -> list[float]:
        out = []
        for i, a in enumerate(anchors):
            logits = [sim(a, c, similarity) / t for c in cands + ns]
            out.append(-logits[i] + log_sum_exp(logits))
        return out

    forward = one_way(qs, ks)
    if not symmetric:
        return forward
    backward = one_way(ks, qs)
    return [0.5 * (x + y) for x, y in zip(forward, backward, strict=True)]


def ref_nt_xent(z1: Tensor, z2: Tensor, t: float, similarity: str) -> float:
    vs, n = views(z1, z2)
    total = 0.0
    for a in range(2 * n):
        p = (a + n) % (2 * n)
        logits = {b: sim(vs[a], vs[b], similarity) / t for b in range(2 * n) if b != a}
        total += -logits[p] + log_sum_exp(list(logits.values()))
    return total / (2 * n)


# --------------------------------------------------------------------------------------
# Against the loop references
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("similarity", SIMS)
@pytest.mark.parametrize("n", [1, *BATCHES])
@pytest.mark.parametrize("t", TEMPS)
@pytest.mark.parametrize("symmetric", [False, True])
@pytest.mark.parametrize("n_extra", [0, 4])
def test_info_nce_matches_reference(
    similarity: str, n: int, t: float, symmetric: bool, n_extra: int
) -> None:
    q, k = pair(n, 5, seed=n, similarity=similarity)
    extra = randn(n_extra, 5, seed=99) if n_extra else None
    expected = ref_info_nce(q, k, t, similarity, extra, symmetric)
    kwargs = dict(temperature=t, similarity=similarity, extra_negatives=extra, symmetric=symmetric)
    per_row = info_nce(q, k, reduction="none", **kwargs)  # type: ignore[arg-type]
    assert per_row.shape == (n,)
    torch.testing.assert_close(per_row, torch.tensor(expected, dtype=torch.float64))
    mean = info_nce(q, k, **kwargs)  # type: ignore[arg-type]
    total = info_nce(q, k, reduction="sum", **kwargs)  # type: ignore[arg-type]
    assert mean.item() == pytest.approx(sum(expected) / n, rel=1e-10)
    assert total.item() == pytest.approx(sum(expected), rel=1e-10)


def test_info_nce_default_temperature_matches_reference() -> None:
    q, k = pair(6, 8, seed=3, similarity="cosine")
    expected = sum(ref_info_nce(q, k, 0.07, "cosine")) / 6
    assert info_nce(q, k).item() == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize("similarity", SIMS)
@pytest.mark.parametrize("n", [1, *BATCHES])
@pytest.mark.parametrize("t", TEMPS)
def test_nt_xent_matches_reference(similarity: str, n: int, t: float) -> None:
    z1, z2 = pair(n, 5, seed=10 + n, similarity=similarity)
    got = nt_xent(z1, z2, temperature=t, similarity=similarity)  # type: ignore[arg-type]
    assert got.item() == pytest.approx(ref_nt_xent(z1, z2, t, similarity), rel=1e-10)


# --------------------------------------------------------------------------------------
# Closed forms on embeddings of known geometry
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [2, 3, 5])
@pytest.mark.parametrize("t", [0.1, 0.5, 1.0])
def test_closed_forms_orthonormal_identical_views(n: int, t: float) -> None:
    # z1 = z2 = e_1..e_n: positive cosine 1, every other pair cosine 0.
    z = orthonormal(n, 6)
    # info_nce: -1/t + log(e^{1/t} + (n-1) e^0) = log(1 + (n-1) e^{-1/t})
    assert info_nce(z, z, temperature=t).item() == pytest.approx(
        math.log(1 + (n - 1) * math.exp(-1 / t)), rel=1e-12
    )
    # nt_xent: 2n-2 negatives of logit 0 -> log(1 + (2n-2) e^{-1/t})
    assert nt_xent(z, z, temperature=t).item() == pytest.approx(
        math.log(1 + (2 * n - 2) * math.exp(-1 / t)), rel=1e-12
    )


@pytest.mark.parametrize("n", [2, 4])
@pytest.mark.parametrize("t", [0.2, 1.0])
def test_closed_forms_antipodal_views(n: int, t: float) -> None:
    # z2 = -z1 with orthonormal z1: positive cosine -1, all other pairs cosine 0.
    z1 = orthonormal(n, 5)
    z2 = -z1
    # info_nce: 1/t + log(e^{-1/t} + (n-1)) = log(1 + (n-1) e^{1/t})
    assert info_nce(z1, z2, temperature=t).item() == pytest.approx(
        math.log(1 + (n - 1) * math.exp(1 / t)), rel=1e-12
    )
    # nt_xent: log(1 + (2n-2) e^{1/t})
    assert nt_xent(z1, z2, temperature=t).item() == pytest.approx(
        math.log(1 + (2 * n - 2) * math.exp(1 / t)), rel=1e-12
    )


@pytest.mark.parametrize("n", [2, 3, 6])
@pytest.mark.parametrize("t", [0.1, 1.0])
def test_closed_forms_collapsed_embeddings(n: int, t: float) -> None:
    # all 2n views equal: every logit is 1/t, so each softmax is uniform.
    z = torch.ones(n, 4, dtype=torch.float64)
    # info_nce: uniform over n keys -> log n
    assert info_nce(z, z, temperature=t).item() == pytest.approx(math.log(n))
    # nt_xent: uniform over 2n-1 candidates -> log(2n-1)
    assert nt_xent(z, z, temperature=t).item() == pytest.approx(math.log(2 * n - 1))


# --------------------------------------------------------------------------------------
# Relationships
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("similarity", SIMS)
@pytest.mark.parametrize("n", BATCHES)
@pytest.mark.parametrize("t", TEMPS)
def test_nt_xent_is_mean_of_symmetric_single_pair_info_nce(
    similarity: str, n: int, t: float
) -> None:
    # For pair i the 2n-2 negatives of anchor z1_i and of anchor z2_i are the same set
    # {z1_j, z2_j : j != i}. So NT-Xent is the mean over i of the symmetric InfoNCE of
    # the single pair (z1_i, z2_i) with those views as extra negatives.
    z1, z2 = pair(n, 5, seed=80 + n, similarity=similarity)
    parts = []
    for i in range(n):
        others = torch.cat([z1[torch.arange(n) != i], z2[torch.arange(n) != i]])
        parts.append(
            info_nce(
                z1[i : i + 1],
                z2[i : i + 1],
                temperature=t,
                similarity=similarity,  # type: ignore[arg-type]
                extra_negatives=others,
                symmetric=True,
            )
        )
    expected = torch.stack(parts).mean()
    got = nt_xent(z1, z2, temperature=t, similarity=similarity)  # type: ignore[arg-type]
    torch.testing.assert_close(got, expected)


@pytest.mark.parametrize("similarity", SIMS)
@pytest.mark.parametrize("symmetric", [False, True])
def test_extra_negatives_increase_every_row(similarity: str, symmetric: bool) -> None:
    q, k = pair(5, 4, seed=110, similarity=similarity)
    kw = dict(similarity=similarity, symmetric=symmetric, reduction="none", temperature=0.2)
    base = info_nce(q, k, **kw)  # type: ignore[arg-type]
    one = info_nce(q, k, extra_negatives=randn(1, 4, seed=111), **kw)  # type: ignore[arg-type]
    more = info_nce(q, k, extra_negatives=randn(16, 4, seed=111), **kw)  # type: ignore[arg-type]
    assert torch.all(one > base)
    assert torch.all(more > one)  # the first row of the 16 is the same single negative


def test_extra_negatives_are_normalised_for_cosine() -> None:
    q, k = pair(4, 3, seed=120, similarity="cosine")
    neg = randn(6, 3, seed=121)
    a = info_nce(q, k, extra_negatives=neg)
    b = info_nce(q, k, extra_negatives=neg * 7.5)
    torch.testing.assert_close(a, b)


def test_temperature_scaling_dot_similarity() -> None:
    # logits are s / t: scaling the query by c and the temperature by c leaves them unchanged
    q, k = pair(6, 4, seed=130, similarity="dot")
    for c in (0.25, 3.0):
        torch.testing.assert_close(
            info_nce(c * q, k, temperature=0.3 * c, similarity="dot"),
            info_nce(q, k, temperature=0.3, similarity="dot"),
        )
        torch.testing.assert_close(
            nt_xent(c * q, c * k, temperature=0.3 * c * c, similarity="dot"),
            nt_xent(q, k, temperature=0.3, similarity="dot"),
        )
    # cosine similarity does not see the scale at all
    torch.testing.assert_close(info_nce(4 * q, 0.5 * k), info_nce(q, k))


def test_temperature_limits() -> None:
    q, k = pair(5, 4, seed=140, similarity="cosine")
    # t -> infinity: all logits -> 0, uniform softmax
    assert info_nce(q, k, temperature=1e8).item() == pytest.approx(math.log(5), rel=1e-6)
    assert nt_xent(q, k, temperature=1e8).item() == pytest.approx(math.log(9), rel=1e-6)
    # t -> 0 with well separated identical views: loss -> 0
    z = orthonormal(4, 4)
    assert info_nce(z, z, temperature=1e-3).item() == pytest.approx(0.0, abs=1e-12)
    assert nt_xent(z, z, temperature=1e-3).item() == pytest.approx(0.0, abs=1e-12)


# --------------------------------------------------------------------------------------
# gradcheck (float64, small inputs)
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("similarity", SIMS)
@pytest.mark.parametrize("symmetric", [False, True])
def test_gradcheck_info_nce(similarity: str, symmetric: bool) -> None:
    q, k, neg = leaf(3, 4, seed=1), leaf(3, 4, seed=2), leaf(2, 4, seed=3)

    def f(q: Tensor, k: Tensor, neg: Tensor) -> Tensor:
        return info_nce(
            q,
            k,
            temperature=0.3,
            similarity=similarity,  # type: ignore[arg-type]
            extra_negatives=neg,
            symmetric=symmetric,
        )

    assert torch.autograd.gradcheck(f, (q, k, neg))
    assert torch.autograd.gradcheck(
        lambda q, k: info_nce(q, k, reduction="none", symmetric=symmetric), (q, k)
    )


@pytest.mark.parametrize("similarity", SIMS)
def test_gradcheck_nt_xent(similarity: str) -> None:
    assert gradcheck_two_views(
        lambda a, b: nt_xent(a, b, temperature=0.4, similarity=similarity)  # type: ignore[arg-type]
    )


# --------------------------------------------------------------------------------------
# Argument checking
# --------------------------------------------------------------------------------------


def test_bad_arguments_raise_value_error() -> None:
    z = randn(3, 4, seed=0)
    with pytest.raises(ValueError, match="temperature"):
        info_nce(z, z, temperature=0.0)
    with pytest.raises(ValueError, match="similarity"):
        nt_xent(z, z, similarity="l2")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="same shape"):
        info_nce(z, z[:2])
    with pytest.raises(ValueError, match="extra_negatives"):
        info_nce(z, z, extra_negatives=randn(2, 5, seed=1))
    with pytest.raises(ValueError, match="reduction"):
        info_nce(z, z, reduction="max")  # type: ignore[arg-type]

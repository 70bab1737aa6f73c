"""DCL and DCLW against a loop reference, closed forms, the exact gap to NT-Xent and gradcheck."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from common.losses import nt_xent
from tests.support.distributed import (
    LossFn,
    assert_gather_is_a_no_op_without_process_group,
    assert_gathered_equals_single_process,
    assert_local_loss_differs,
    gathered_losses,
    spawn_world,
)
from tests.support.losses import (
    BATCHES,
    SIMS,
    TEMPS,
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

from .losses import _decoupled_loss, dcl, dclw, vmf_weights

# --------------------------------------------------------------------------------------
# Naive references: python loops over anchors, exp / log by hand with math.
# --------------------------------------------------------------------------------------


def ref_vmf_weights(z1: Tensor, z2: Tensor, sigma: float) -> list[float]:
    r1, r2 = rows(z1), rows(z2)
    n = len(r1)
    e = [math.exp(sim(a, b, "cosine") / sigma) for a, b in zip(r1, r2, strict=True)]
    mean_e = sum(e) / n
    return [2.0 - ei / mean_e for ei in e]


def ref_dcl(
    z1: Tensor, z2: Tensor, t: float, similarity: str, weights: list[float] | None = None
) -> float:
    vs, n = views(z1, z2)
    total = 0.0
    for a in range(2 * n):
        p = (a + n) % (2 * n)
        w = 1.0 if weights is None else weights[a % n]
        negs = [sim(vs[a], vs[b], similarity) / t for b in range(2 * n) if b not in (a, p)]
        total += -w * sim(vs[a], vs[p], similarity) / t + log_sum_exp(negs)
    return total / (2 * n)


@pytest.mark.parametrize("similarity", SIMS)
@pytest.mark.parametrize("n", BATCHES)
@pytest.mark.parametrize("t", TEMPS)
def test_dcl_matches_reference(similarity: str, n: int, t: float) -> None:
    z1, z2 = pair(n, 5, seed=20 + n, similarity=similarity)
    got = dcl(z1, z2, temperature=t, similarity=similarity)  # type: ignore[arg-type]
    assert got.item() == pytest.approx(ref_dcl(z1, z2, t, similarity), rel=1e-10)


@pytest.mark.parametrize("n", BATCHES)
@pytest.mark.parametrize("t", TEMPS)
@pytest.mark.parametrize("sigma", [0.2, 0.5, 2.0])
def test_dclw_matches_reference(n: int, t: float, sigma: float) -> None:
    z1, z2 = pair(n, 5, seed=30 + n, similarity="cosine")
    weights = ref_vmf_weights(z1, z2, sigma)
    expected = ref_dcl(z1, z2, t, "cosine", weights)
    assert dclw(z1, z2, temperature=t, sigma=sigma).item() == pytest.approx(expected, rel=1e-10)
    got_w = vmf_weights(F.normalize(z1, dim=1), F.normalize(z2, dim=1), sigma)
    torch.testing.assert_close(got_w, torch.tensor(weights, dtype=torch.float64))
    # w = 2 - exp(s_i)/mean_j exp(s_j) averages to exactly 1
    assert got_w.mean().item() == pytest.approx(1.0, abs=1e-12)


# --------------------------------------------------------------------------------------
# Closed forms on embeddings of known geometry
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [2, 3, 5])
@pytest.mark.parametrize("t", [0.1, 0.5, 1.0])
def test_closed_forms_orthonormal_identical_views(n: int, t: float) -> None:
    # z1 = z2 = e_1..e_n: positive cosine 1, every other pair cosine 0.
    z = orthonormal(n, 6)
    # dcl: -1/t + log((2n-2) e^0) = log(2n-2) - 1/t
    assert dcl(z, z, temperature=t).item() == pytest.approx(math.log(2 * n - 2) - 1 / t, rel=1e-12)
    # dclw: all positive cosines equal -> w_i = 2 - 1 = 1, same as dcl
    assert dclw(z, z, temperature=t).item() == pytest.approx(math.log(2 * n - 2) - 1 / t, rel=1e-12)


@pytest.mark.parametrize("n", [2, 4])
@pytest.mark.parametrize("t", [0.2, 1.0])
def test_closed_form_antipodal_views(n: int, t: float) -> None:
    # z2 = -z1 with orthonormal z1: positive cosine -1, all other pairs cosine 0 -> 1/t + log(2n-2)
    z1 = orthonormal(n, 5)
    assert dcl(z1, -z1, temperature=t).item() == pytest.approx(math.log(2 * n - 2) + 1 / t)


@pytest.mark.parametrize("n", [2, 3, 6])
@pytest.mark.parametrize("t", [0.1, 1.0])
def test_closed_form_collapsed_embeddings(n: int, t: float) -> None:
    # all 2n views equal, every logit 1/t: -1/t + log((2n-2) e^{1/t}) = log(2n-2)
    z = torch.ones(n, 4, dtype=torch.float64)
    assert dcl(z, z, temperature=t).item() == pytest.approx(math.log(2 * n - 2))


# --------------------------------------------------------------------------------------
# Relationships
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("similarity", SIMS)
@pytest.mark.parametrize("n", BATCHES)
@pytest.mark.parametrize("t", TEMPS)
def test_dcl_below_nt_xent_by_exact_gap(similarity: str, n: int, t: float) -> None:
    # per anchor: nt = -s_p + log(e^{s_p} + S_neg) = dcl + log(1 + e^{s_p} / S_neg) > dcl
    z1, z2 = pair(n, 5, seed=100 + n, similarity=similarity)
    nt = nt_xent(z1, z2, temperature=t, similarity=similarity)  # type: ignore[arg-type]
    dc = dcl(z1, z2, temperature=t, similarity=similarity)  # type: ignore[arg-type]
    assert dc.item() < nt.item()
    vs, _ = views(z1, z2)
    gap = 0.0
    for a in range(2 * n):
        p = (a + n) % (2 * n)
        s_p = sim(vs[a], vs[p], similarity) / t
        negs = [sim(vs[a], vs[b], similarity) / t for b in range(2 * n) if b not in (a, p)]
        gap += math.log1p(math.exp(s_p - log_sum_exp(negs)))
    assert nt.item() - dc.item() == pytest.approx(gap / (2 * n), rel=1e-9)


def test_temperature_limit() -> None:
    # t -> infinity: all logits -> 0, uniform over the 2n-2 = 8 negatives
    q, k = pair(5, 4, seed=140, similarity="cosine")
    assert dcl(q, k, temperature=1e8).item() == pytest.approx(math.log(8), rel=1e-6)


def test_dclw_weights_have_no_gradient() -> None:
    # The analytic gradient of dclw equals that of DCL with the weights frozen at w(z).
    z1 = randn(5, 4, seed=160).requires_grad_()
    z2 = randn(5, 4, seed=161).requires_grad_()
    w = vmf_weights(F.normalize(z1, dim=1), F.normalize(z2, dim=1), 0.5).detach()
    frozen = _decoupled_loss(
        z1, z2, temperature=0.1, similarity="cosine", gather=False, weight_fn=lambda a, b: w
    )
    g_frozen = torch.autograd.grad(frozen, (z1, z2))
    g = torch.autograd.grad(dclw(z1, z2, temperature=0.1, sigma=0.5), (z1, z2))
    for x, y in zip(g, g_frozen, strict=True):
        torch.testing.assert_close(x, y)


# --------------------------------------------------------------------------------------
# gradcheck (float64, small inputs) and argument checking
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("similarity", SIMS)
def test_gradcheck_dcl(similarity: str) -> None:
    assert gradcheck_two_views(
        lambda a, b: dcl(a, b, temperature=0.4, similarity=similarity)  # type: ignore[arg-type]
    )


def test_gradcheck_dclw() -> None:
    # dclw's weights carry no gradient, so gradcheck the shared decoupled loss with the
    # weights frozen at their value; test_dclw_weights_have_no_gradient ties it to dclw.
    z1, z2 = leaf(4, 3, seed=6), leaf(4, 3, seed=7)
    w = vmf_weights(F.normalize(z1, dim=1), F.normalize(z2, dim=1), 0.5).detach()

    def frozen(a: Tensor, b: Tensor) -> Tensor:
        return _decoupled_loss(
            a, b, temperature=0.3, similarity="cosine", gather=False, weight_fn=lambda x, y: w
        )

    assert torch.autograd.gradcheck(frozen, (z1, z2))


def test_bad_arguments_raise_value_error() -> None:
    z = randn(3, 4, seed=0)
    with pytest.raises(ValueError, match="at least 2"):
        dcl(z[:1], z[:1])
    with pytest.raises(ValueError, match="sigma"):
        dclw(z, z, sigma=-1.0)
    with pytest.raises(ValueError, match="temperature"):
        dcl(z, z, temperature=0.0)


# --------------------------------------------------------------------------------------
# gather=True: negatives from every process (2 processes, gloo)
# --------------------------------------------------------------------------------------

CASES: dict[str, LossFn] = {
    "dcl": lambda a, b, g: dcl(a, b, temperature=0.1, gather=g),
    "dclw": lambda a, b, g: dclw(a, b, temperature=0.1, sigma=0.5, gather=g),
}


def _on_rank(rank: int) -> dict[str, Any]:
    return gathered_losses(CASES, rank)


@pytest.fixture(scope="module")
def ranks(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    return spawn_world(_on_rank, tmp_path_factory.mktemp("dist"))


def test_gather_flag_is_a_no_op_without_process_group() -> None:
    for fn in CASES.values():
        assert_gather_is_a_no_op_without_process_group(fn)


@pytest.mark.distributed
@pytest.mark.parametrize("name", list(CASES))
def test_gathered_loss_and_grads_equal_single_process(
    ranks: list[dict[str, Any]], name: str
) -> None:
    assert_gathered_equals_single_process(ranks, name, CASES[name])
    assert_local_loss_differs(ranks, name, CASES[name])

"""Tests of common.distributed, including 2-process gloo runs of the gathered losses."""

from __future__ import annotations

from typing import Any

import pytest
import torch
import torch.distributed as dist

from common import distributed as cd
from common.losses import info_nce, nt_xent
from tests.support.distributed import (
    OUT_DIM,
    WORLD,
    LossFn,
    assert_gather_is_a_no_op_without_process_group,
    assert_gathered_equals_single_process,
    assert_local_loss_differs,
    gathered_losses,
    spawn_world,
)

# Every case maps (z1, z2, gather) to a loss. The queue of the MoCo-style case is shared
# by all ranks (it is never gathered) and carries no gradient.
_QUEUE = torch.randn(6, OUT_DIM, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
CASES: dict[str, LossFn] = {
    "info_nce": lambda a, b, g: info_nce(a, b, temperature=0.1, gather=g),
    "info_nce_sym_dot_queue": lambda a, b, g: info_nce(
        a, b, temperature=0.5, similarity="dot", symmetric=True, extra_negatives=_QUEUE, gather=g
    ),
    "nt_xent": lambda a, b, g: nt_xent(a, b, temperature=0.2, gather=g),
    "nt_xent_dot": lambda a, b, g: nt_xent(a, b, temperature=0.7, similarity="dot", gather=g),
}


def _on_rank(rank: int) -> dict[str, Any]:
    """What one process of the 2-process run finds."""
    result: dict[str, Any] = {
        "backend": dist.get_backend(),
        "env": (cd.is_distributed(), cd.rank(), cd.world_size()),
        **gathered_losses(CASES, rank),
    }
    # the gathered tensor is [rank0 rows; rank1 rows] and its backward sums over ranks
    mine = torch.full((2, 3), float(rank), dtype=torch.float64, requires_grad=True)
    gathered = cd.gather_with_grad(mine)
    coef = torch.arange(12, dtype=torch.float64).reshape(4, 3)
    torch.autograd.backward((gathered * coef).sum())
    result["gathered"] = gathered.detach()
    result["gather_grad"] = mine.grad

    # unequal local batch sizes are refused with a clear ValueError on every rank
    try:
        cd.gather_with_grad(torch.zeros(3 + rank, 2))
        result["unequal"] = "no error"
    except ValueError as err:
        result["unequal"] = str(err)
    return result


@pytest.fixture(scope="module")
def ranks(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    return spawn_world(_on_rank, tmp_path_factory.mktemp("dist"))


# --------------------------------------------------------------------------------------
# Single process
# --------------------------------------------------------------------------------------


def test_helpers_without_process_group(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("RANK", "WORLD_SIZE"):
        monkeypatch.delenv(var, raising=False)
    assert cd.init_from_env() is False
    assert cd.is_distributed() is False
    assert (cd.rank(), cd.world_size()) == (0, 1)
    t = torch.randn(3, 2)
    assert cd.gather_with_grad(t) is t
    cd.cleanup()  # no-op


def test_gather_flag_is_a_no_op_without_process_group() -> None:
    for fn in CASES.values():
        assert_gather_is_a_no_op_without_process_group(fn)


# --------------------------------------------------------------------------------------
# Two processes, gloo
# --------------------------------------------------------------------------------------


@pytest.mark.distributed
def test_process_group_from_env(ranks: list[dict[str, Any]]) -> None:
    for r, res in enumerate(ranks):
        assert res["init"] is True
        assert res["backend"] == "gloo"
        assert res["env"] == (True, r, WORLD)
        assert res["after_cleanup"] == (False, 0, 1)


@pytest.mark.distributed
def test_gather_with_grad_forward_and_backward(ranks: list[dict[str, Any]]) -> None:
    expected = torch.tensor([0.0, 0.0, 1.0, 1.0], dtype=torch.float64)[:, None].repeat(1, 3)
    coef = torch.arange(12, dtype=torch.float64).reshape(4, 3)
    for r, res in enumerate(ranks):
        torch.testing.assert_close(res["gathered"], expected)
        # every rank's loss sum(coef * gathered) sees rank r's rows through coef[2r:2r+2];
        # summed over the two ranks the gradient is 2 * coef[2r:2r+2]
        torch.testing.assert_close(res["gather_grad"], WORLD * coef[2 * r : 2 * r + 2])


@pytest.mark.distributed
def test_gather_with_grad_rejects_unequal_batches(ranks: list[dict[str, Any]]) -> None:
    for res in ranks:
        assert "equal" in res["unequal"] and "(3, 2)" in res["unequal"], res["unequal"]


@pytest.mark.distributed
@pytest.mark.parametrize("name", list(CASES))
def test_gathered_loss_and_grads_equal_single_process(
    ranks: list[dict[str, Any]], name: str
) -> None:
    assert_gathered_equals_single_process(ranks, name, CASES[name])


@pytest.mark.distributed
@pytest.mark.parametrize("name", ["info_nce", "nt_xent"])
def test_local_loss_without_gather_differs(ranks: list[dict[str, Any]], name: str) -> None:
    assert_local_loss_differs(ranks, name, CASES[name])

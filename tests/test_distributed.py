"""Tests of common.distributed, including 2-process gloo runs of the gathered losses."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.multiprocessing.spawn import spawn

from common import distributed as cd
from common.losses import dcl, dclw, info_nce, nt_xent

WORLD = 2
GLOBAL_BATCH = 8
IN_DIM, OUT_DIM = 5, 4

LossFn = Callable[[Tensor, Tensor, bool], Tensor]

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
    "dcl": lambda a, b, g: dcl(a, b, temperature=0.1, gather=g),
    "dclw": lambda a, b, g: dclw(a, b, temperature=0.1, sigma=0.5, gather=g),
}


def _data() -> tuple[dict[str, Tensor], Tensor, Tensor]:
    g = torch.Generator().manual_seed(1234)
    model = nn.Linear(IN_DIM, OUT_DIM, dtype=torch.float64)
    with torch.no_grad():
        model.weight.copy_(torch.randn(OUT_DIM, IN_DIM, generator=g, dtype=torch.float64))
        model.bias.copy_(torch.randn(OUT_DIM, generator=g, dtype=torch.float64))
    x1 = torch.randn(GLOBAL_BATCH, IN_DIM, generator=g, dtype=torch.float64)
    x2 = x1 + 0.3 * torch.randn(GLOBAL_BATCH, IN_DIM, generator=g, dtype=torch.float64)
    return model.state_dict(), x1, x2


def _loss_and_grads(
    fn: LossFn, state: dict[str, Tensor], x1: Tensor, x2: Tensor, gather: bool
) -> tuple[Tensor, dict[str, Tensor]]:
    model = nn.Linear(IN_DIM, OUT_DIM, dtype=torch.float64)
    model.load_state_dict(state)
    loss = fn(model(x1), model(x2), gather)
    torch.autograd.backward(loss)
    grads = {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}
    return loss.detach(), grads


def _worker(rank: int, port: int, out_dir: str) -> None:
    """One process of the 2-process run; writes its findings to out_dir/rank{rank}.pt."""
    torch.set_num_threads(1)
    os.environ.update(
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        WORLD_SIZE=str(WORLD),
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
    )
    result: dict[str, Any] = {"init": cd.init_from_env()}
    try:
        result["backend"] = dist.get_backend()
        result["env"] = (cd.is_distributed(), cd.rank(), cd.world_size())
        state, x1, x2 = _data()
        local = slice(rank * GLOBAL_BATCH // WORLD, (rank + 1) * GLOBAL_BATCH // WORLD)
        for name, fn in CASES.items():
            loss, grads = _loss_and_grads(fn, state, x1[local], x2[local], gather=True)
            # mean of the per-rank losses, and DDP-style averaging of the gradients
            dist.all_reduce(loss)
            for g in grads.values():
                dist.all_reduce(g)
            result[name] = (loss / WORLD, {n: g / WORLD for n, g in grads.items()})

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
    finally:
        cd.cleanup()
    result["after_cleanup"] = (cd.is_distributed(), cd.rank(), cd.world_size())
    torch.save(result, Path(out_dir) / f"rank{rank}.pt")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def ranks(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    out = tmp_path_factory.mktemp("dist")
    spawn(_worker, args=(_free_port(), str(out)), nprocs=WORLD, join=True)
    return [torch.load(out / f"rank{r}.pt", weights_only=False) for r in range(WORLD)]


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
    state, x1, x2 = _data()
    for fn in CASES.values():
        a, ga = _loss_and_grads(fn, state, x1, x2, gather=False)
        b, gb = _loss_and_grads(fn, state, x1, x2, gather=True)
        torch.testing.assert_close(a, b)
        for n in ga:
            torch.testing.assert_close(ga[n], gb[n])


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
    state, x1, x2 = _data()
    loss, grads = _loss_and_grads(CASES[name], state, x1, x2, gather=False)
    for res in ranks:
        dist_loss, dist_grads = res[name]
        torch.testing.assert_close(dist_loss, loss, rtol=1e-10, atol=1e-12)
        assert dist_grads.keys() == grads.keys()
        for n, g in grads.items():
            torch.testing.assert_close(dist_grads[n], g, rtol=1e-9, atol=1e-12)


@pytest.mark.distributed
def test_local_loss_without_gather_differs(ranks: list[dict[str, Any]]) -> None:
    # sanity check that the comparison above is not vacuous: the mean of the per-half
    # losses without gathering is not the global-batch loss
    state, x1, x2 = _data()
    for name in ("info_nce", "nt_xent", "dcl"):
        full, _ = _loss_and_grads(CASES[name], state, x1, x2, gather=False)
        h = GLOBAL_BATCH // 2
        halves = [
            _loss_and_grads(CASES[name], state, x1[s], x2[s], gather=False)[0]
            for s in (slice(0, h), slice(h, None))
        ]
        assert abs(float(sum(halves)) / 2 - float(full)) > 1e-3
        assert abs(float(ranks[0][name][0]) - float(full)) < 1e-10

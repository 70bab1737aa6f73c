"""Two-process gloo runs of gathered losses, compared with the single-process loss.

A loss case maps ``(z1, z2, gather)`` to a scalar. ``spawn_world(body)`` runs ``body(rank)``
in each of 2 CPU processes with a process group set up by ``common.distributed.init_from_env``;
inside it, ``gathered_losses(cases, rank)`` computes each case on this rank's half of a fixed
global batch with ``gather=True``, DDP style (loss and gradients averaged over ranks), to be
compared with ``loss_and_grads(case, *data(), gather=False)`` on the whole batch.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.multiprocessing.spawn import spawn

from common import distributed as cd

WORLD = 2
GLOBAL_BATCH = 8
IN_DIM, OUT_DIM = 5, 4

LossFn = Callable[[Tensor, Tensor, bool], Tensor]
Grads = dict[str, Tensor]
Body = Callable[[int], dict[str, Any]]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def data() -> tuple[dict[str, Tensor], Tensor, Tensor]:
    """A float64 linear projection's state and a global batch of two correlated views."""
    g = torch.Generator().manual_seed(1234)
    model = nn.Linear(IN_DIM, OUT_DIM, dtype=torch.float64)
    with torch.no_grad():
        model.weight.copy_(torch.randn(OUT_DIM, IN_DIM, generator=g, dtype=torch.float64))
        model.bias.copy_(torch.randn(OUT_DIM, generator=g, dtype=torch.float64))
    x1 = torch.randn(GLOBAL_BATCH, IN_DIM, generator=g, dtype=torch.float64)
    x2 = x1 + 0.3 * torch.randn(GLOBAL_BATCH, IN_DIM, generator=g, dtype=torch.float64)
    return model.state_dict(), x1, x2


def loss_and_grads(
    fn: LossFn, state: dict[str, Tensor], x1: Tensor, x2: Tensor, gather: bool
) -> tuple[Tensor, Grads]:
    model = nn.Linear(IN_DIM, OUT_DIM, dtype=torch.float64)
    model.load_state_dict(state)
    loss = fn(model(x1), model(x2), gather)
    torch.autograd.backward(loss)
    grads = {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}
    return loss.detach(), grads


def gathered_losses(cases: dict[str, LossFn], rank: int) -> dict[str, tuple[Tensor, Grads]]:
    """Inside the process group: each case on this rank's half, gathered, averaged over ranks."""
    state, x1, x2 = data()
    local = slice(rank * GLOBAL_BATCH // WORLD, (rank + 1) * GLOBAL_BATCH // WORLD)
    out = {}
    for name, fn in cases.items():
        loss, grads = loss_and_grads(fn, state, x1[local], x2[local], gather=True)
        # mean of the per-rank losses, and DDP-style averaging of the gradients
        dist.all_reduce(loss)
        for g in grads.values():
            dist.all_reduce(g)
        out[name] = (loss / WORLD, {n: g / WORLD for n, g in grads.items()})
    return out


def _worker(rank: int, port: int, out_dir: str, body: Body) -> None:
    """One process: ``body(rank)`` between init and cleanup; writes out_dir/rank{rank}.pt."""
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
        result.update(body(rank))
    finally:
        cd.cleanup()
    result["after_cleanup"] = (cd.is_distributed(), cd.rank(), cd.world_size())
    torch.save(result, Path(out_dir) / f"rank{rank}.pt")


def spawn_world(body: Body, out_dir: Path) -> list[dict[str, Any]]:
    """Each rank's ``body(rank)`` result (plus ``init`` and ``after_cleanup``).

    ``body`` must be a module-level function (the processes import it by name).
    """
    spawn(_worker, args=(free_port(), str(out_dir), body), nprocs=WORLD, join=True)
    return [torch.load(out_dir / f"rank{r}.pt", weights_only=False) for r in range(WORLD)]


def assert_gather_is_a_no_op_without_process_group(fn: LossFn) -> None:
    state, x1, x2 = data()
    a, ga = loss_and_grads(fn, state, x1, x2, gather=False)
    b, gb = loss_and_grads(fn, state, x1, x2, gather=True)
    torch.testing.assert_close(a, b)
    for n in ga:
        torch.testing.assert_close(ga[n], gb[n])


def assert_gathered_equals_single_process(
    ranks: list[dict[str, Any]], name: str, fn: LossFn
) -> None:
    """Every rank's ``gathered_losses`` result for ``name`` equals the whole-batch loss."""
    state, x1, x2 = data()
    loss, grads = loss_and_grads(fn, state, x1, x2, gather=False)
    for res in ranks:
        dist_loss, dist_grads = res[name]
        torch.testing.assert_close(dist_loss, loss, rtol=1e-10, atol=1e-12)
        assert dist_grads.keys() == grads.keys()
        for n, g in grads.items():
            torch.testing.assert_close(dist_grads[n], g, rtol=1e-9, atol=1e-12)


def assert_local_loss_differs(ranks: list[dict[str, Any]], name: str, fn: LossFn) -> None:
    """The comparison is not vacuous: the mean of the per-half losses without gathering is not
    the global-batch loss, which the gathered run gives."""
    state, x1, x2 = data()
    full, _ = loss_and_grads(fn, state, x1, x2, gather=False)
    h = GLOBAL_BATCH // 2
    halves = [
        loss_and_grads(fn, state, x1[s], x2[s], gather=False)[0]
        for s in (slice(0, h), slice(h, None))
    ]
    assert abs(float(sum(halves)) / 2 - float(full)) > 1e-3
    assert abs(float(ranks[0][name][0]) - float(full)) < 1e-10

"""Seconds per training epoch and per full evaluation (ours), and the propagation choice.

    python -m papers.ncl.benchmark --data-root DATA [--epochs 3] [--threads 1] [--repeats 30]
        [--json FILE]

For ml-100k with the reduced recipe's model but K-means every epoch and the prototype term from
the first epoch (``m_step 1``, ``warm_up_step 0``: the official per-epoch work, so that
``benchmark_official.py`` times the same thing), prints, and with ``--json`` writes as a
``common.bench`` measurement file: training seconds per epoch (E-step included), one sample per
epoch after a warm-up epoch, and seconds per full validation ranking (three samples after a
warm-up), for NCL and LightGCN, process CPU and wall time (CPU time is the fairer number on a
shared machine). Then the 3-layer propagation forward + backward on the ml-100k training graph:
our symmetric CSR product, ``torch.sparse.mm`` with autograd, and torch_geometric's ``LGConv``
on an edge list and on the CSR matrix. ``nox -s bench -- ncl`` runs this and the official side.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import faiss
import torch
from torch import Tensor
from torch_geometric.nn import LGConv

from common.bench import Measurement, count_flops, time_samples, write_measurements
from common.interactions import NegativeSampler, UserItems
from common.records import package_versions

from .data import Filter, load_dataset
from .model import normalized_adjacency, propagate
from .train import Config, Trainer, evaluate

VERSIONS = ("torch", "numpy", "scipy", "faiss-cpu", "torch-geometric")


def time_variant(variant: str, data_root: Path, epochs: int) -> list[Measurement]:
    """One sample per training epoch (K-means included) and per full validation ranking."""
    data = load_dataset("ml-100k", data_root, Filter(3.0), 2020)
    config = Config(variant=variant, num_clusters=156, m_step=1, warm_up_step=0)
    torch.manual_seed(0)
    trainer = Trainer(config, data, torch.device("cpu"))
    sampler = NegativeSampler(data.train, data.n_items)
    epoch = iter(range(epochs + 2))  # warm-up, the timed epochs, one counted

    def train_epoch() -> None:
        trainer.train_epoch(next(epoch), data.train, sampler, 0)

    cpu, wall = time_samples(train_epoch, repeats=epochs)
    flops = count_flops(train_epoch)  # dense products only (faiss K-means, sparse not counted)
    valid, history = UserItems(data.valid, data.n_users), UserItems(data.train, data.n_users)
    eval_cpu, eval_wall = time_samples(
        lambda: evaluate(trainer.model, valid, history, config, torch.device("cpu")), repeats=3
    )
    return [
        Measurement(
            workload=f"train epoch, {variant}", unit="s/epoch", cpu=cpu, wall=wall, flops=flops
        ),
        Measurement(
            workload=f"full validation ranking, {variant}", unit="s", cpu=eval_cpu, wall=eval_wall
        ),
    ]


def _propagators(adjacency: Tensor) -> dict[str, Callable[[Tensor], Tensor]]:
    coo = adjacency.to_sparse_coo().coalesce()
    edge_index, edge_weight = coo.indices(), coo.values()
    conv = LGConv(normalize=False)
    return {
        "symmetric CSR product (ours)": lambda x: propagate(adjacency, x),
        "torch.sparse.mm (CSR, autograd)": lambda x: torch.sparse.mm(adjacency, x),
        "torch.sparse.mm (COO, autograd; as RecBole)": lambda x: torch.sparse.mm(coo, x),
        "LGConv, edge_index + edge_weight": lambda x: conv(x, edge_index, edge_weight),
        "LGConv, CSR adjacency": lambda x: conv(x, adjacency),
    }


def time_propagation(data_root: Path, repeats: int) -> dict[str, float]:
    """CPU milliseconds per 3-layer forward + backward on the ml-100k training graph, d = 64."""
    data = load_dataset("ml-100k", data_root, Filter(3.0), 2020)
    adjacency = normalized_adjacency(data.train, data.n_users, data.n_items)
    x = torch.randn(data.n_users + data.n_items, 64, requires_grad=True)
    weights = torch.randn_like(x)
    out = {}
    for name, step in _propagators(adjacency).items():
        for _ in range(3):  # warm-up
            _layers(step, x, weights)
        start = time.process_time()
        for _ in range(repeats):
            _layers(step, x, weights)
        out[name] = (time.process_time() - start) / repeats * 1000
    return out


def _layers(step: Callable[[Tensor], Tensor], x: Tensor, weights: Tensor) -> None:
    x.grad = None
    h, total = x, torch.zeros(())
    for _ in range(3):
        h = step(h)
        total = total + (h * weights).sum()
    total.backward()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-root", required=True)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--json", type=Path, default=None, help="write the measurement file here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    faiss.omp_set_num_threads(args.threads)
    print(f"threads={args.threads} load average={os.getloadavg()[0]:.2f}")
    root, measured = Path(args.data_root), []
    for variant in ("ncl", "lightgcn"):
        for m in time_variant(variant, root, args.epochs):
            print(f"{m.workload}: median {statistics.median(m.cpu):.3f} CPU {m.unit} "
                  f"(min {min(m.cpu):.3f}; wall median {statistics.median(m.wall):.3f})",
                  flush=True)  # fmt: skip
            measured.append(m)
    if args.json is not None:
        write_measurements(args.json, "ours", measured, package_versions(VERSIONS))
    for name, ms in time_propagation(root, args.repeats).items():
        print(f"propagation, {name}: {ms:.1f} ms cpu per 3-layer forward+backward", flush=True)


if __name__ == "__main__":
    main()

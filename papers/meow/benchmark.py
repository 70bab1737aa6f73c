"""CPU seconds of MEOW's preprocessing and of one training epoch on ACM (ours).

    python -m papers.meow.benchmark --data-root DATA [--epochs 5] [--prep-repeats 2]
        [--threads 1] [--json FILE] [--profile]

The ACM recipe of ``configs/full.yaml`` (the official ``acm_params``: 64 dimensions, τ 0.4,
feature mask 0.3, edge masks 0.3/0.2, PathSim top-110/700, K-means with 100 and 300 clusters,
λ 1, lr 7e-4), seed 0, ``--threads`` torch and faiss threads. Timed, process CPU and wall
seconds, one sample per repeat after one warm-up:

- ``preprocessing``: ``train.prepare_inputs`` — PathSim top-k pruning, normalisation, the edge
  and feature masks, and the sparse/dense operators — after the files are loaded (the official
  side times its ``pathsim``, ``mask_features``, ``normalize_adj`` and ``mask_edges`` after its
  ``load_data``);
- ``train epoch``: one iteration of ``train.train``'s loop (``zero_grad``, ``MEOW.loss``:
  encoder, faiss K-means, fused weighted InfoNCE and ProtoNCE; ``backward``, ``Adam.step``),
  one sample per epoch.

``--json`` writes a ``common.bench`` measurement file; ``benchmark_official.py`` times the
official ``code_meow`` the same way with the same workload names (``WORKLOADS``);
``nox -s bench -- meow --data-root DATA`` runs both and records them. ``--profile`` prints
where an epoch's CPU time goes instead (encoder, projection head, K-means, InfoNCE, ProtoNCE,
backward, optimiser step; the same computation as ``MEOW.loss``, split up with clocks).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections import defaultdict
from pathlib import Path

import torch

from common.bench import Measurement, count_flops, time_samples, write_measurements
from common.config import load_config
from common.records import package_versions

from .cluster import run_kmeans
from .data import HeteroGraph, load_graph
from .losses import fused_weighted_info_nce, proto_nce
from .model import GraphInputs
from .train import MEOW, Config, prepare_inputs

# Kept identical to benchmark_official.py's WORKLOADS (test_benchmark.py compares them).
WORKLOADS = {
    "preprocessing": "preprocessing (PathSim, masks, normalisation), meow (ACM)",
    "epoch": "train epoch, meow (ACM)",
}
SEED = 0  # the official acm_params seed
FULL = Path(__file__).parent / "configs" / "full.yaml"


def recipe(threads: int = 1) -> Config:
    return load_config(Config, FULL, "acm", fixed={"variant": "meow", "threads": threads})


def _prepare(config: Config, graph: HeteroGraph) -> GraphInputs:
    return prepare_inputs(graph, config.nei_max, config.adj_mask, config.feat_mask, SEED,
                          config.dense_above, config.tie_break)  # fmt: skip


def _model(
    config: Config, graph: HeteroGraph, inputs: GraphInputs
) -> tuple[MEOW, torch.optim.Adam]:
    torch.manual_seed(SEED)
    model = MEOW(config, graph, inputs, adaptive=False)
    opt = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    return model, opt


def measure(data_root: Path, epochs: int, prep_repeats: int, threads: int) -> list[Measurement]:
    config = recipe(threads)
    graph = load_graph("acm", data_root)
    prepared: list[GraphInputs] = []

    def preprocess() -> None:
        prepared[:] = [_prepare(config, graph)]

    prep_cpu, prep_wall = time_samples(preprocess, prep_repeats)
    inputs = prepared[0]
    model, opt = _model(config, graph, inputs)
    state = {"best": float("inf"), "wait": 0.0}

    def epoch() -> None:  # one iteration of train.train's loop (without logging)
        model.train()
        opt.zero_grad()
        loss, _ = model.loss(inputs)
        loss.backward()
        opt.step()
        value = float(loss.detach())
        if value < state["best"]:
            state["best"], state["wait"] = value, 0.0
        else:
            state["wait"] += 1

    cpu, wall = time_samples(epoch, epochs)
    flops = count_flops(epoch)  # dense products only: the sparse graph products are not counted
    return [
        Measurement(workload=WORKLOADS["preprocessing"], unit="s", cpu=prep_cpu, wall=prep_wall),
        Measurement(workload=WORKLOADS["epoch"], unit="s/epoch", cpu=cpu, wall=wall, flops=flops),
    ]


class _Stopwatch:
    """Process CPU seconds since the previous call, added to ``parts[name]``."""

    def __init__(self) -> None:
        self.parts: dict[str, float] = {}
        self.last = time.process_time()

    def __call__(self, name: str) -> None:
        now = time.process_time()
        self.parts[name] = self.parts.get(name, 0.0) + now - self.last
        self.last = now


def profile(data_root: Path, epochs: int, threads: int) -> dict[str, list[float]]:
    """CPU seconds per part of each epoch (after one warm-up): ``MEOW.loss`` split up."""
    config = recipe(threads)
    graph = load_graph("acm", data_root)
    inputs = _prepare(config, graph)
    model, opt = _model(config, graph, inputs)
    parts: dict[str, list[float]] = defaultdict(list)
    for index in range(epochs + 1):
        tick = _Stopwatch()
        model.train()
        opt.zero_grad()
        views = model.encoder(inputs)
        tick("encoder (forward)")
        coarse, fine = model.head(views.coarse), model.head(views.z)
        tick("projection head")
        clusterings = run_kmeans(fine, config.num_clusters, config.tau, config.kmeans_niter,
                                 config.kmeans_nredo)  # fmt: skip
        tick("faiss K-means + concentration")
        info = fused_weighted_info_nce(coarse, fine, [c.assignment for c in clusterings],
                                       config.tau)  # fmt: skip
        tick("weighted InfoNCE (fused, with its gradient)")
        loss = info + config.lam_proto * proto_nce(coarse, clusterings)
        tick("ProtoNCE")
        loss.backward()
        tick("backward")
        opt.step()
        float(loss.detach())
        tick("Adam step")
        if index:  # the first epoch is the warm-up
            for name, seconds in tick.parts.items():
                parts[name].append(seconds)
            parts["total"].append(sum(tick.parts.values()))
    return dict(parts)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-root", required=True)
    parser.add_argument("--epochs", type=int, default=5, help="timed epochs (after a warm-up)")
    parser.add_argument("--prep-repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", type=Path, default=None, help="write the measurement file here")
    parser.add_argument("--profile", action="store_true", help="print CPU s per part of an epoch")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"threads={args.threads} load average={os.getloadavg()[0]:.2f}", flush=True)
    if args.profile:
        for name, seconds in profile(Path(args.data_root), args.epochs, args.threads).items():
            print(f"{name}: median {statistics.median(seconds):.3f} CPU s/epoch "
                  f"(min {min(seconds):.3f}, max {max(seconds):.3f})")  # fmt: skip
        return
    measured = measure(Path(args.data_root), args.epochs, args.prep_repeats, args.threads)
    for m in measured:
        print(f"{m.workload}: median {statistics.median(m.cpu):.2f} CPU {m.unit} "
              f"(min {min(m.cpu):.2f})", flush=True)  # fmt: skip
    if args.json is not None:
        versions = package_versions(("torch", "numpy", "scipy", "scikit-learn", "faiss-cpu"))
        write_measurements(args.json, "ours", measured, versions)


if __name__ == "__main__":
    main()

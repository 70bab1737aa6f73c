"""Time the official MEOW code (jianxiangyu/MEOW ``code_meow``) the way ``benchmark.py`` times ours.

    OMP_NUM_THREADS=1 OFFICIAL_PYTHON papers/meow/benchmark_official.py --official DIR \\
        --data-root DATA [--epochs 5] [--prep-repeats 2] [--threads 1] [--json FILE]

``nox -s bench -- meow --data-root DATA`` builds the environment (``environments/
official-meow.txt``: the same torch, numpy, scipy, scikit-learn and faiss-cpu versions as our
graph environment), runs this with DIR = ``../scratch/official/jianxiangyu+MEOW`` (or
``--official DIR``), then ``benchmark.py``, and records both (``common.bench``); ``--json``
writes the measurement file (plain JSON, without importing ``common.bench``).

DIR is a checkout of https://github.com/jianxiangyu/MEOW at 6a072d7. Run this file by its path
with a Python that has the official requirements; it imports the official modules from
``DIR/code_meow`` through ``sys.path`` (``utils.load_data``, ``utils.set_params``,
``module.preprocess``, ``module.meow.MEOW``) and nothing from this repository, and nothing in
the repository imports it. The official files are never edited.

Data: ``load_acm`` reads ``../data/acm/`` relative to the working directory. This script makes
a temporary folder holding ``data/acm`` (a link to ``DATA/hetero/acm``, the HeCo/MEOW layout:
the same file names) and ``run/``, and works from ``run/``.

CPU adaptations, applied at runtime by monkeypatching before the official modules are
imported (the official code targets a CUDA GPU, Python 3.9, numpy 1.23 and faiss-gpu 1.7.2):

- ``torch.Tensor.cuda`` and ``torch.nn.Module.cuda`` return ``self`` (a no-op): the official
  code calls ``.cuda()`` unconditionally in ``module/meow.py`` (``nei_index``),
  ``module/contrast.py`` (the N×N weight matrix, node indices, the loss accumulator and the
  cluster buffers) and ``module/cluster.py`` (centroids, assignments, densities); every
  tensor stays on the CPU.
- ``faiss.StandardGpuResources``, ``faiss.GpuIndexFlatConfig`` and ``faiss.GpuIndexFlatIP``
  are replaced by stand-ins whose index is ``faiss.IndexFlatIP(d)`` (``run_kmeans`` in
  ``module/cluster.py``: faiss-cpu has no GPU classes); the K-means itself
  (``faiss.Clustering``, 20 iterations, 5 restarts, fixed seeds) is the official call.
- ``numpy.float`` is set to ``float`` (the alias numpy removed in 1.24, which
  ``mask_feature`` in ``module/preprocess.py`` uses as ``astype(np.float)``): float64, as
  before its removal.
- ``sys.argv`` is ``["main.py", "acm"]`` while ``utils`` is imported and ``set_params`` runs
  (``utils/params.py`` reads the dataset from ``sys.argv[1]`` at import): the official ACM
  arguments, unchanged.

What is timed (process CPU and wall seconds, one sample per repeat, after one warm-up):

- ``preprocessing``: what ``main.py`` does between ``load_data`` and building the model —
  ``pathsim(adjs, nei_max)`` (top-k PathSim pruning), ``mask_features``, ``normalize_adj`` of
  each pruned graph, ``mask_edges`` — with the seeds of ``main.py`` (0) set before each sample.
- ``train epoch``: one iteration of ``main.py``'s loop — ``model.train()``,
  ``optimizer.zero_grad()``, ``loss = model(feats, mask_feat, mask_adjs, adjs_norm,
  num_cluster)`` (encoder, faiss K-means, InfoNCE and ProtoNCE), ``loss.backward()``,
  ``optimizer.step()`` and the patience bookkeeping — called directly, one sample per epoch.

Evaluation is not timed. The workload names (``WORKLOADS``) are the same in ``benchmark.py``
(``test_benchmark.py`` checks it).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

# Kept identical to benchmark.py's WORKLOADS (test_benchmark.py compares them).
WORKLOADS = {
    "preprocessing": "preprocessing (PathSim, masks, normalisation), meow (ACM)",
    "epoch": "train epoch, meow (ACM)",
}
SEED = 0  # code_meow/utils/params.py, acm_params: --seed 0


def _patch_for_cpu() -> None:
    """The CPU adaptations listed in the module docstring (no official file is edited)."""
    import faiss
    import numpy
    import torch

    def same(self: Any, *args: Any, **kwargs: Any) -> Any:
        return self

    torch.Tensor.cuda = same  # type: ignore[method-assign]
    torch.nn.Module.cuda = same  # type: ignore[method-assign]

    class GpuResources:
        pass

    class GpuIndexFlatConfig:
        useFloat16 = False
        device = 0

    def gpu_index_flat_ip(resources: Any, d: int, config: Any = None) -> Any:
        return faiss.IndexFlatIP(d)

    stand_ins = {"StandardGpuResources": GpuResources, "GpuIndexFlatConfig": GpuIndexFlatConfig,
                 "GpuIndexFlatIP": gpu_index_flat_ip}  # fmt: skip
    for name, stand_in in stand_ins.items():
        setattr(faiss, name, stand_in)
    numpy.float = float  # type: ignore[attr-defined]


def _data_layout(data_root: Path, work: Path) -> Path:
    """``work/data/acm`` -> ``DATA/hetero/acm``; returns ``work/run`` (load_acm reads ../data)."""
    source = data_root / "hetero" / "acm"
    if not (source / "pap.npz").is_file():
        raise SystemExit(f"no ACM data at {source} (expected the HeCo layout: pap.npz, ...)")
    (work / "data").mkdir(parents=True)
    (work / "data" / "acm").symlink_to(source.resolve(), target_is_directory=True)
    (work / "run").mkdir()
    return work / "run"


def _seed(seed: int) -> None:
    import numpy
    import torch

    numpy.random.seed(seed)
    random.seed(seed)
    torch.manual_seed(seed)


def _samples(step: Callable[[], object], repeats: int) -> dict[str, list[float]]:
    step()  # warm-up
    cpu, wall = [], []
    for _ in range(repeats):
        start, begin = time.perf_counter(), time.process_time()
        step()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - begin)
    return {"cpu": cpu, "wall": wall}


def measure(
    official: Path, data_root: Path, epochs: int, prep_repeats: int
) -> list[dict[str, Any]]:
    code = official / "code_meow"
    if not (code / "module" / "meow.py").is_file():
        raise SystemExit(f"no code_meow/module/meow.py under {official}")
    _patch_for_cpu()
    import torch

    with tempfile.TemporaryDirectory() as tmp:
        run_dir = _data_layout(data_root, Path(tmp))
        cwd, argv = os.getcwd(), sys.argv
        os.chdir(run_dir)
        sys.path.insert(0, str(code))
        sys.argv = ["main.py", "acm"]
        try:
            utils = importlib.import_module("utils")
            pre = importlib.import_module("module.preprocess")
            meow = importlib.import_module("module.meow")
            args = utils.set_params()
            _seed(args.seed)
            nei_index, feats, adjs, _label, _train, _val, _test = utils.load_data(
                args.dataset, args.ratio, args.type_num
            )
        finally:
            sys.argv = argv
        feats_dim_list = [f.shape[1] for f in feats]
        sub_num = len(adjs)
        prepared: dict[str, Any] = {}

        def preprocess() -> None:  # main.py between load_data and MEOW(...)
            _seed(args.seed)
            pruned = pre.pathsim(adjs, args.nei_max)
            prepared["mask_feat"] = pre.mask_features(feats[0], args.feat_mask)
            prepared["adjs_norm"] = [pre.normalize_adj(adj) for adj in pruned]
            prepared["mask_adjs"] = pre.mask_edges(pruned, sub_num, args.adj_mask)

        prep = _samples(preprocess, prep_repeats)
        _seed(args.seed)
        model = meow.MEOW(feats_dim_list, sub_num, args.hidden_dim, args.embed_dim, args.tau,
                          prepared["adjs_norm"], args.lam_proto, args.dropout, nei_index,
                          args.dataset)  # fmt: skip
        optimizer = torch.optim.Adam(model.parameters(), lr=args.lr, weight_decay=args.l2_coef)
        state: dict[str, Any] = {"best": 1e9, "wait": 0}

        def epoch() -> None:  # one iteration of main.py's training loop
            model.train()
            optimizer.zero_grad()
            loss = model(feats, prepared["mask_feat"], prepared["mask_adjs"],
                         prepared["adjs_norm"], args.num_cluster)  # fmt: skip
            loss.backward()
            optimizer.step()
            if state["best"] > loss:
                state["best"], state["wait"] = loss, 0
            else:
                state["wait"] += 1

        train = _samples(epoch, epochs)
        os.chdir(cwd)
    return [
        {"workload": WORKLOADS["preprocessing"], "unit": "s", **prep},
        {"workload": WORKLOADS["epoch"], "unit": "s/epoch", **train},
    ]


def _versions() -> dict[str, str]:
    from importlib import metadata

    names = ("torch", "numpy", "scipy", "scikit-learn", "faiss-cpu")
    return {n: metadata.version(n) for n in names}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--official", required=True, help="checkout of jianxiangyu/MEOW")
    parser.add_argument("--data-root", required=True, help="holds hetero/acm (HeCo layout)")
    parser.add_argument("--epochs", type=int, default=5, help="timed epochs (after a warm-up)")
    parser.add_argument("--prep-repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", default=None, help="write the measurement file here")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    json_path = os.path.abspath(args.json) if args.json else None
    import faiss
    import torch

    torch.set_num_threads(args.threads)
    faiss.omp_set_num_threads(args.threads)
    official, data_root = Path(args.official).resolve(), Path(args.data_root).resolve()
    print(f"official={official} torch={torch.__version__} threads={torch.get_num_threads()} "
          f"load average={os.getloadavg()[0]:.2f}", flush=True)  # fmt: skip
    measured = measure(official, data_root, args.epochs, args.prep_repeats)
    for m in measured:
        print(f"official {m['workload']}: median {statistics.median(m['cpu']):.2f} CPU "
              f"{m['unit']} (min {min(m['cpu']):.2f})", flush=True)  # fmt: skip
    if json_path:
        os.makedirs(os.path.dirname(json_path), exist_ok=True)
        with open(json_path, "w") as handle:
            json.dump({"side": "official", "versions": _versions(), "measurements": measured},
                      handle, indent=2)  # fmt: skip


if __name__ == "__main__":
    main()

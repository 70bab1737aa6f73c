"""Time RecBole 1.2.1's NCL and LightGCN (the official model) the way ``benchmark.py`` times ours.

    OMP_NUM_THREADS=1 RECBOLE_PYTHON papers/ncl/benchmark_official.py --data-root DATA \\
        [--epochs 3] [--threads 1] [--json FILE]

Run it by its path with the Python of the equivalence environment (``environments/recbole.txt``);
it imports nothing from this repository. DATA is the data root holding
``movielens/ml-100k/ml-100k.inter`` (RecBole's atomic files). The config is the official one
(RUCAIBox/NCL ``properties/overall.yaml`` + ``NCL.yaml`` + ml-1m's rating >= 3) with
``benchmark.py``'s changes: 156 clusters, K-means every epoch and the prototype term from the
first epoch. Timed: ``model.e_step()`` + ``NCLTrainer._train_epoch`` per epoch (what its ``fit``
does per epoch, without validation), after one warm-up epoch; then one ``Trainer.evaluate`` of
the validation set (full ranking) with the cached embeddings cleared, after one warm-up. faiss's
``gpu=True`` is switched off (faiss-cpu), as the equivalence test does. One sample per epoch and
three per evaluation; ``--json`` writes them in ``common.bench``'s measurement-file format (plain
JSON, written here without importing it). ``nox -s bench -- ncl`` runs this and ``benchmark.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from typing import Any

import faiss
import torch
from recbole.config import Config
from recbole.data import create_dataset, data_preparation
from recbole.model.general_recommender import NCL, LightGCN
from recbole.trainer import NCLTrainer, Trainer
from recbole.utils import init_seed

SETTINGS = {
    "embedding_size": 64, "n_layers": 3, "reg_weight": 1e-4, "ssl_temp": 0.1, "ssl_reg": 1e-7,
    "hyper_layers": 1, "alpha": 1.0, "proto_reg": 8e-8, "num_clusters": 156, "m_step": 1,
    "warm_up_step": 0, "train_batch_size": 4096, "eval_batch_size": 4096000,
    "metrics": ["Recall", "NDCG"], "topk": [10, 20, 50], "valid_metric": "NDCG@10",
    "load_col": {"inter": ["user_id", "item_id", "rating"]},
    "val_interval": {"rating": "[3,inf)"}, "use_gpu": False, "device": "cpu",
    "show_progress": False, "state": "ERROR",
}  # fmt: skip


def _cpu_kmeans() -> None:
    original = faiss.Kmeans

    def kmeans(*args: Any, **kwargs: Any) -> Any:
        kwargs["gpu"] = False
        return original(*args, **kwargs)

    faiss.Kmeans = kmeans  # type: ignore[misc,assignment]


def _clocks() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def _configured(model_class: type, data_root: str) -> Any:
    options = {**SETTINGS, "data_path": os.path.join(data_root, "movielens"),
               "checkpoint_dir": tempfile.mkdtemp()}  # fmt: skip
    argv, sys.argv = sys.argv, sys.argv[:1]  # RecBole parses --key=value from the command line
    try:
        config = Config(model=model_class, dataset="ml-100k", config_dict=options)
    finally:
        sys.argv = argv
    init_seed(config["seed"], config["reproducibility"])
    return config


def _samples(step: Any, repeats: int) -> dict[str, list[float]]:
    step()  # warm-up
    cpu, wall = [], []
    for _ in range(repeats):
        start = _clocks()
        step()
        wall.append(time.perf_counter() - start[0])
        cpu.append(time.process_time() - start[1])
    return {"cpu": cpu, "wall": wall}


def time_model(name: str, model_class: type, trainer_class: type, data_root: str, epochs: int,
               threads: int) -> list[dict[str, Any]]:  # fmt: skip
    config = _configured(model_class, data_root)
    torch.set_num_threads(threads)
    dataset = create_dataset(config)
    train, valid, _ = data_preparation(config, dataset)
    model = model_class(config, train.dataset)
    trainer = trainer_class(config, model)
    epoch = iter(range(epochs + 1))

    def train_epoch() -> None:  # what NCLTrainer.fit does per epoch, without validation
        if hasattr(model, "e_step"):
            model.e_step()
        trainer._train_epoch(train, next(epoch), show_progress=False)

    def evaluate() -> None:
        model.restore_user_e = model.restore_item_e = None
        trainer.evaluate(valid, load_best_model=False, show_progress=False)

    return [
        {"workload": f"train epoch, {name}", "unit": "s/epoch", **_samples(train_epoch, epochs)},
        {"workload": f"full validation ranking, {name}", "unit": "s", **_samples(evaluate, 3)},
    ]


def _versions() -> dict[str, str]:
    from importlib import metadata

    names = ("torch", "numpy", "scipy", "faiss-cpu", "recbole")
    return {n: metadata.version(n) for n in names}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-root", required=True)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", default=None, help="write the measurement file here")
    args = parser.parse_args()
    faiss.omp_set_num_threads(args.threads)
    _cpu_kmeans()
    data_root = os.path.abspath(args.data_root)
    args.json = os.path.abspath(args.json) if args.json else None
    os.chdir(tempfile.mkdtemp())  # RecBole's Trainer writes log_tensorboard/ into the cwd
    print(f"threads={args.threads} load average={os.getloadavg()[0]:.2f}")
    measured = []
    for name, model_class, trainer_class in (("ncl", NCL, NCLTrainer),
                                             ("lightgcn", LightGCN, Trainer)):  # fmt: skip
        for m in time_model(name, model_class, trainer_class, data_root, args.epochs,
                            args.threads):  # fmt: skip
            print(f"RecBole {m['workload']}: median {statistics.median(m['cpu']):.3f} CPU "
                  f"{m['unit']} (min {min(m['cpu']):.3f})", flush=True)  # fmt: skip
            measured.append(m)
    if args.json:
        content = {"side": "official", "versions": _versions(), "measurements": measured}
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as handle:
            json.dump(content, handle, indent=2)


if __name__ == "__main__":
    main()

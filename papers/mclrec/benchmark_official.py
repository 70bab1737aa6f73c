"""Time the official MCLRec code (QinHsiu/MCLRec) the way ``benchmark.py`` times ours.

    OMP_NUM_THREADS=1 OFFICIAL_PYTHON papers/mclrec/benchmark_official.py --official DIR \\
        [--batches 20] [--repeats 3] [--threads 1] [--split test] [--json FILE]

``nox -s bench -- mclrec --data-root DATA`` builds the environment (``environments/
official-mclrec.txt``), runs this with DIR = ``../scratch/official/QinHsiu+MCLRec`` (or
``--official DIR``), then ``benchmark.py``, and records both (``common.bench``); ``--json``
writes the measurement file (plain JSON, without importing ``common.bench``).

DIR is a checkout of https://github.com/QinHsiu/MCLRec (a modified RecBole 0.2.1 with its
own ``seq.yaml`` and ``dataset/Amazon_Beauty/Amazon_Beauty.inter``). Run this file by its path
with a Python that has the official requirements; it imports ``recbole`` from DIR through
``sys.path`` and nothing from this repository, and nothing in the repository imports it.

Setting up the official environment (CPU, tested with Python 3.11 and torch 2.13.0+cpu):

    python3.11 -m venv offvenv
    offvenv/bin/pip install torch "numpy<1.24" scipy pandas tqdm scikit-learn pyyaml \\
        colorlog colorama

- ``numpy<1.24`` is required: RecBole 0.2.1 uses the removed aliases ``np.float``, ``np.bool``,
  ``np.long`` (1.23 only warns). Its ``scipy==1.6.0`` pin has no wheel for Python 3.11; any
  recent scipy works, as do pandas 2.x and scikit-learn 1.x for the code paths used here.
- No edit of the official files is needed for CPU: this script passes ``use_gpu=False`` (the
  config then picks ``cpu``; a CPU-only torch would too), points ``data_path`` at
  ``DIR/dataset`` and the checkpoint/log directories at a temporary folder, and hides its own
  command line from RecBole's parser (which otherwise reads ``--key=value`` from ``sys.argv``).

What is timed, per variant (one line each):
- ``prep``: ``create_dataset`` + ``data_preparation`` (RecBole materialises every training
  prefix up front, ``real_time_process: False``); not part of the epoch time.
- ``s/batch``: the official ``Trainer._train_epoch`` run unmodified over N batches of 256
  (after one warm-up batch) pulled from one live iterator of the official train dataloader, so
  it includes the dataloader's per-batch MCLRec augmentation (``mclrec_aug``, pure Python) and,
  with ``joint=0``, the three optimisation steps per batch. ``cpu`` is the process CPU time
  (``time.process_time``), less sensitive than wall time to other jobs on the machine; ``data``
  is the part of the wall time spent inside the dataloader.
- ``s/epoch``: s/batch x training samples / 256 (as ``benchmark.py``).
- ``eval``: one ``Trainer.evaluate`` over every user of the chosen split (full ranking,
  ``eval_batch_size`` from ``seq.yaml``, 256 users per batch).

Variants: ``mclrec`` is the Beauty recipe of ``scripts/train_beauty.sh``. The official code has
no clean SASRec or CL4SRec setting: ``MCLRec.calculate_loss`` always runs the two augmented
encoder passes and the meta-contrastive term, and ``joint=0`` always takes three steps per
batch (``lmd=0, beta=0`` only zeroes the weights, the computation is the same). ``joint`` (one
joint step per batch, the code's ``--joint=1`` option) is offered as an extra variant.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

BEAUTY = {  # scripts/train_beauty.sh
    "epochs": 100,
    "hidden_dropout_prob": 0.5,
    "attn_dropout_prob": 0.5,
    "use_rl": 1,
    "joint": 0,
    "train_batch_size": 256,
    "lmd": 0.0,
    "beta": 0.05,
    "sim": "dot",
}
VARIANTS = {"mclrec": BEAUTY, "joint": {**BEAUTY, "joint": 1}}


class _Take:
    """Yields the next ``n`` batches of a live iterator and adds the time spent fetching them."""

    def __init__(self, iterator: Iterator[Any], n: int) -> None:
        self.iterator, self.n, self.fetch_seconds = iterator, n, 0.0

    def __len__(self) -> int:
        return self.n

    def __iter__(self) -> Iterator[Any]:
        for _ in range(self.n):
            start = time.perf_counter()
            batch = next(self.iterator)
            self.fetch_seconds += time.perf_counter() - start
            yield batch


def _build(
    official: Path, overrides: dict[str, Any], work: Path
) -> tuple[Any, Any, Any, dict[str, Any], float]:
    """RecBole's config, trainer, train data, {valid, test} data and the preparation seconds."""
    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.utils import get_model, get_trainer, init_seed

    settings = {
        **overrides,
        "use_gpu": False,
        "show_progress": False,
        "data_path": str(official / "dataset"),
        "checkpoint_dir": str(work / "checkpoint"),
    }
    argv, sys.argv = sys.argv, sys.argv[:1]  # RecBole parses --key=value from sys.argv
    try:
        config = Config(
            model="MCLRec",
            dataset="Amazon_Beauty",
            config_file_list=[str(official / "seq.yaml")],
            config_dict=settings,
        )
    finally:
        sys.argv = argv
    config["log_dir"] = str(work)
    init_seed(config["seed"], config["reproducibility"])
    start = time.perf_counter()
    dataset = create_dataset(config)
    train_data, valid_data, test_data = data_preparation(config, dataset)
    prep = time.perf_counter() - start
    model = get_model(config["model"])(config, train_data).to(config["device"])
    trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)
    return config, trainer, train_data, {"valid": valid_data, "test": test_data}, prep


def _samples(step: Any, repeats: int) -> dict[str, list[float]]:
    cpu, wall = [], []
    for _ in range(repeats):
        start, begin = time.perf_counter(), time.process_time()
        step()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - begin)
    return {"cpu": cpu, "wall": wall}


def _time_variant(
    official: Path, overrides: dict[str, Any], batches: int, repeats: int, split: str, name: str
) -> tuple[list[dict[str, Any]], dict[str, float]]:
    """Measurements (``common.bench`` format) of a training epoch and a full evaluation."""
    with tempfile.TemporaryDirectory() as tmp:
        config, trainer, train_data, eval_data, prep = _build(official, overrides, Path(tmp))
        stream = iter(train_data)  # one pass over a shuffled epoch
        trainer._train_epoch(_Take(stream, 1), 0)  # warm-up
        takes: list[_Take] = []

        def chunk() -> None:
            takes.append(_Take(stream, batches))
            trainer._train_epoch(takes[-1], 1)

        train = _samples(chunk, repeats)
        scale = train_data.pr_end / config["train_batch_size"] / batches
        train = {key: [v * scale for v in values] for key, values in train.items()}
        evaluation = _samples(lambda: trainer.evaluate(eval_data[split], load_best_model=False), 2)
    info = {"prep": prep, "data": sum(t.fetch_seconds for t in takes) / batches / repeats,
            "samples": train_data.pr_end, "users": eval_data[split].pr_end}  # fmt: skip
    return [
        {"workload": f"train epoch, {name} (Beauty)", "unit": "s/epoch", **train},
        {"workload": f"full {split} ranking, {name} (Beauty)", "unit": "s", **evaluation},
    ], info


def _versions() -> dict[str, str]:
    from importlib import metadata

    return {n: metadata.version(n) for n in ("torch", "numpy")}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--official", required=True, help="checkout of QinHsiu/MCLRec")
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--split", choices=("valid", "test"), default="test")
    parser.add_argument("--variants", nargs="+", choices=sorted(VARIANTS), default=["mclrec"])
    parser.add_argument("--data-root", default=None, help="ignored: the data is DIR/dataset")
    parser.add_argument("--json", default=None, help="write the measurement file here")
    args = parser.parse_args()
    official = Path(args.official).resolve()
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    sys.path.insert(0, str(official))

    import torch

    torch.set_num_threads(args.threads)
    print(
        f"official={official} torch={torch.__version__} threads={torch.get_num_threads()} "
        f"load average={os.getloadavg()[0]:.2f}"
    )
    measured = []
    for name in args.variants:
        found, info = _time_variant(official, VARIANTS[name], args.batches, args.repeats,
                                    args.split, name)  # fmt: skip
        for m in found:
            print(f"official {m['workload']}: median {statistics.median(m['cpu']):.1f} CPU "
                  f"{m['unit']} (min {min(m['cpu']):.1f})", flush=True)  # fmt: skip
        print(f"  dataloader {info['data']:.3f} s/batch, {info['samples']} samples, "
              f"{info['users']} users, prep {info['prep']:.0f} s", flush=True)  # fmt: skip
        measured += found
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as handle:
            json.dump({"side": "official", "versions": _versions(), "measurements": measured},
                      handle, indent=2)  # fmt: skip


if __name__ == "__main__":
    main()

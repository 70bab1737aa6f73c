"""CPU seconds of REARM's graph construction, of a training epoch and of a validation ranking
(ours), on ml-100k as ``data.py`` builds it.

    python -m papers.rearm.benchmark --data-root DATA --export work/bench/rearm/ml-100k
    python -m papers.rearm.benchmark --data-root DATA [--data DIR] [--batches 10] [--repeats 3]
        [--prep-repeats 3] [--eval-repeats 3] [--threads 1] [--json FILE]

The data: ml-100k with our seeded 8:1:1 split (``data.split_seed`` 2025), MiniLM text features
and the knowledge-graph SVD features in the place of the visual ones (``data.py``). The official
code reads only its own layout (``data/<name>/{train,valid,test}.npy``: int (2, N) arrays, users
then items; ``image_feat.npy``, ``text_feat.npy``: float n_items x d), so ``--export DIR`` writes
exactly that (with ``provenance.json``: what the files are, their sha256) and exits;
``benchmark_official.py --data DIR`` times the official code on it without importing anything of
ours. This side checks that DIR holds the splits and features it builds (a one-line error
otherwise, or when DIR is missing: export first). ``nox -s bench -- rearm`` passes the same
options to both sides, official first, so the export is one command to run once beforehand (the
README says it).

The config is ``configs/full.yaml``'s ml-100k recipe (the official Baby command), seed 2025 (the
official parser's default). Timed, process CPU and wall seconds per sample (CPU time is the fairer
number on a shared machine), with ``--threads`` torch threads:

- ``preprocessing``: ``train.Trainer`` for ``rearm``: the user-item normalised adjacency, both
  co-occurrence graphs (matrix, ranking, top-k sampling), the four semantic kNN graphs and their
  mixes, the users' modal preferences and the model; after one warm-up, ``--prep-repeats``
  samples. The official side times ``Load_dataset`` + ``REARM.__init__`` (the same graphs).
- ``epoch``: ``--repeats`` samples of ``--batches`` training batches of 2048 (negatives drawn,
  forward over the whole graph, the loss, backward, AdamW), after one warm-up batch, each scaled
  to an epoch of ceil(n_train / 2048) batches.
- ``evaluation``: one full validation ranking (forward, scores of every item, training items
  masked, top-20, Recall/NDCG/Precision), ``--eval-repeats`` samples after one warm-up.

``--json`` writes a ``common.bench`` measurement file. The workloads carry the same names on both
sides (``WORKLOADS``, compared by ``test_benchmark.py``).
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import math
import os
import statistics
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from common.bench import Measurement, count_flops, positive_int, time_samples, write_measurements
from common.config import load_config
from common.errors import DataError
from common.interactions import Interactions, NegativeSampler, UserItems, bpr_batches, concat
from common.records import package_versions

from .data import Dataset, load
from .train import Config, Trainer, evaluate

# Kept identical to benchmark_official.py's WORKLOADS, SEED and DEFAULT_DATA (test_benchmark.py).
WORKLOADS = {
    "preprocessing": "graph construction (co-occurrence, top-k, semantic kNN) + model, rearm "
    "(ml-100k)",
    "epoch": "train epoch, rearm (ml-100k)",
    "evaluation": "full validation ranking, rearm (ml-100k)",
}
SEED = 2025  # the official parser's default seed
DEFAULT_DATA = "work/bench/rearm/ml-100k"  # the exported folder, relative to the repository root
SPLIT_FILES = ("train.npy", "valid.npy", "test.npy")
FEATURE_FILES = ("image_feat.npy", "text_feat.npy")  # image_feat = the KG modality on ml-100k
FULL = Path(__file__).parent / "configs" / "full.yaml"
CPU = torch.device("cpu")


def recipe(threads: int = 1) -> Config:
    """``configs/full.yaml`` for ml-100k (the official Baby command), variant ``rearm``."""
    return load_config(Config, FULL, "ml-100k", fixed={"variant": "rearm", "threads": threads})


def load_movielens(data_root: Path, config: Config) -> Dataset:
    """ml-100k as a run builds it; MiniLM features cached where runs cache them."""
    work = Path(os.environ.get("CLREPRO_WORK_DIR") or "work")
    d = config.data
    return load("ml-100k", data_root, features=True, split_seed=d.split_seed, kg_dim=d.kg_dim,
                cache=work / "rearm" / "ml-100k" / "cache")  # fmt: skip


def official_arrays(data: Dataset) -> dict[str, np.ndarray]:
    """The files of the official layout: int64 (2, N) splits, float32 feature matrices."""
    assert data.visual is not None and data.text is not None

    def split(part: Interactions) -> np.ndarray:
        return torch.stack([part.user, part.item]).numpy().astype(np.int64)

    arrays = dict(zip(SPLIT_FILES, map(split, (data.train, data.valid, data.test)), strict=True))
    arrays["image_feat.npy"] = data.visual.numpy().astype(np.float32)
    arrays["text_feat.npy"] = data.text.numpy().astype(np.float32)
    return arrays


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def export(data: Dataset, config: Config, folder: Path) -> dict[str, str]:
    """Write the official layout into ``folder`` (and ``provenance.json``); the files' sha256."""
    folder.mkdir(parents=True, exist_ok=True)
    sums = {}
    for name, array in official_arrays(data).items():
        np.save(folder / name, array)
        sums[name] = _sha256(folder / name)
    provenance = {
        "dataset": "ml-100k",
        "n_users": data.n_users,
        "n_items": data.n_items,
        "split_seed": config.data.split_seed,
        "image_feat.npy": f"knowledge-graph modality (SVD rank {config.data.kg_dim}), NOT visual",
        "text_feat.npy": "all-MiniLM-L6-v2 over title, year, genres",
        "written_by": "python -m papers.rearm.benchmark --export",
        "source_files": data.files,
        "sha256": sums,
    }
    (folder / "provenance.json").write_text(json.dumps(provenance, indent=2) + "\n")
    return sums


def check_export(data: Dataset, folder: Path) -> None:
    """The exported folder must hold the arrays built here (else the two sides would time
    different data): the splits exactly, the features to within 1e-5 relative, 1e-6 absolute
    (the last bits of the KG features' SVD depend on the BLAS thread count). A one-line
    DataError names the first file that differs."""
    for name, ours in official_arrays(data).items():
        path = folder / name
        if not path.is_file():
            raise DataError(f"{path} is missing: export again (--export {folder})")
        theirs = np.load(path, allow_pickle=False)
        same = theirs.shape == ours.shape and theirs.dtype == ours.dtype
        if same and name in SPLIT_FILES:
            same = np.array_equal(theirs, ours)
        elif same:
            same = np.allclose(theirs, ours, rtol=1e-5, atol=1e-6)
        if not same:
            raise DataError(f"{path} differs from the data built here: export again "
                            f"(--export {folder})")  # fmt: skip


def _batches(data: Dataset, batch_size: int) -> Iterator[tuple[Tensor, Tensor, Tensor]]:
    """Training batches epoch after epoch (negatives drawn on demand, as in training)."""
    sampler = NegativeSampler(concat(data.train, data.valid, data.test), data.n_items)
    for epoch in itertools.count():
        yield from bpr_batches(data.train, sampler, batch_size, SEED, epoch)


def measure(data: Dataset, config: Config, batches: int, repeats: int, prep_repeats: int,
            eval_repeats: int) -> list[Measurement]:  # fmt: skip
    built: list[Trainer] = []

    def prepare() -> None:
        torch.manual_seed(SEED)
        built[:] = [Trainer(config, data, CPU, SEED)]

    prep_cpu, prep_wall = time_samples(prepare, prep_repeats)
    trainer = built[0]
    trainer.model.train()
    stream = _batches(data, config.batch_size)
    trainer.train_batch(*next(stream))  # warm-up

    def chunk() -> None:
        for _ in range(batches):
            trainer.train_batch(*next(stream))

    cpu, wall = time_samples(chunk, repeats, warmup=0)
    per_epoch = math.ceil(len(data.train) / config.batch_size)
    batch_flops = count_flops(lambda: trainer.train_batch(*next(stream)))  # sparse not counted
    scale = per_epoch / batches
    valid, history = UserItems(data.valid, data.n_users), UserItems(data.train, data.n_users)
    eval_cpu, eval_wall = time_samples(
        lambda: evaluate(trainer.model, valid, history, config, CPU), eval_repeats
    )
    return [
        Measurement(workload=WORKLOADS["preprocessing"], unit="s", cpu=prep_cpu, wall=prep_wall),
        Measurement(
            workload=WORKLOADS["epoch"],
            unit="s/epoch",
            cpu=[c * scale for c in cpu],
            wall=[w * scale for w in wall],
            flops=batch_flops * per_epoch if batch_flops else None,
        ),
        Measurement(workload=WORKLOADS["evaluation"], unit="s", cpu=eval_cpu, wall=eval_wall),
    ]


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m papers.rearm.benchmark",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--data-root", required=True)
    p.add_argument(
        "--data",
        type=Path,
        default=Path(DEFAULT_DATA),
        help="the official-layout folder (checked against the data built here)",
    )
    p.add_argument("--export", type=Path, default=None,
                   help="write the official-layout folder here and exit")  # fmt: skip
    p.add_argument("--batches", type=positive_int, default=10, help="timed batches per sample")
    p.add_argument("--repeats", type=positive_int, default=3, help="samples of --batches batches")
    p.add_argument("--prep-repeats", type=positive_int, default=3)
    p.add_argument("--eval-repeats", type=positive_int, default=3)
    p.add_argument("--threads", type=positive_int, default=1)
    p.add_argument("--official", default=None, help="ignored (the official side's checkout)")
    p.add_argument("--json", type=Path, default=None, help="write the measurement file here")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    torch.set_num_threads(args.threads)
    config = recipe(args.threads)
    try:
        if args.export is None and not args.data.is_dir():
            raise DataError(f"no prepared ml-100k folder at {args.data}: run `python -m "
                            f"papers.rearm.benchmark --data-root DATA --export {args.data}` "
                            "first (the official side times the same folder)")  # fmt: skip
        data = load_movielens(Path(args.data_root), config)
        if args.export is not None:
            sums = export(data, config, args.export)
            print(f"wrote {args.export}: " + ", ".join(f"{n} {s[:12]}" for n, s in sums.items()))
            return 0
        check_export(data, args.data)
        print(f"{args.data} holds the same splits and features as built here", flush=True)
    except DataError as error:
        print(f"error: {error}")
        return 2
    print(f"threads={args.threads} load average={os.getloadavg()[0]:.2f} users={data.n_users} "
          f"items={data.n_items} train={len(data.train)}", flush=True)  # fmt: skip
    measured = measure(data, config, args.batches, args.repeats, args.prep_repeats,
                       args.eval_repeats)  # fmt: skip
    for m in measured:
        print(f"{m.workload}: median {statistics.median(m.cpu):.3f} CPU {m.unit} "
              f"(min {min(m.cpu):.3f}; wall median {statistics.median(m.wall):.3f})",
              flush=True)  # fmt: skip
    if args.json is not None:
        write_measurements(args.json, "ours", measured, package_versions(("torch", "numpy",
                                                                          "scipy")))  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Time the official REARM code (MrShouxingMa/REARM) the way ``benchmark.py`` times ours.

    OMP_NUM_THREADS=1 OFFICIAL_PYTHON papers/rearm/benchmark_official.py --official DIR \\
        [--data work/bench/rearm/ml-100k] [--batches 10] [--repeats 3] [--prep-repeats 1] \\
        [--eval-repeats 3] [--threads 1] [--json FILE]

``nox -s bench -- rearm --data-root DATA`` builds the official environment (``environments/
base.txt``: torch, numpy, scipy, tqdm, matplotlib, what the official modules this file imports
need, at the versions ours runs with), runs this with DIR = ``../scratch/official/
MrShouxingMa+REARM`` (or ``--official DIR``), then ``benchmark.py``, and records both
(``common.bench``). Run by its path; it imports the official modules from DIR through
``sys.path`` and nothing from this repository, and nothing in the repository imports it.

The data: ``--data`` is a folder in the official layout (``{train,valid,test}.npy``: int (2, N)
arrays, users then items; ``image_feat.npy``, ``text_feat.npy``: float n_items x d), written once
beforehand by ``python -m papers.rearm.benchmark --data-root DATA --export DIR``: ml-100k with our
seeded 8:1:1 split, our MiniLM text features and our knowledge-graph SVD features as the
"image" modality (not visual). Without it, one line says that command and the exit status is 2.

The config: the official parser (``utils/parser.py``) given ``RECIPE`` as flags (the README's
Baby command, our ``configs/full.yaml`` ml-100k recipe; ``test_benchmark.py`` compares them),
dataset ``ml-100k``, seed 2025. Timed, process CPU and wall seconds per sample:

- ``preprocessing``: ``Load_dataset(config)`` + ``REARM(config, dataset)``, what ``main.Net``
  does before training: ``creat_co_occur_matrix`` (users, items), ``creat_dict_graph``,
  ``get_knn_adj_mat`` (four graphs), ``get_norm_adj_mat``, ``topk_sample`` (users, items) and the
  graph mixes. ``--prep-repeats`` samples (default 1), no warm-up.
- ``epoch``: the official ``trainer.train`` over ``--batches`` batches of 2048 taken lazily from
  one live iterator of the official ``DataLoader`` (``shuffle=True``; so each batch's negative
  sampling, ``Load_dataset.__getitem__``, is timed), ``--repeats`` samples after one warm-up
  batch, each scaled to the loader's ``len`` (batches per epoch).
- ``evaluation``: ``utils.evaluator.evaluate_model`` on the validation split
  (``Load_eval_dataset``, built outside the timing), ``--eval-repeats`` samples after a warm-up.

Adaptations, all at runtime in this process (the checkout is not edited):

- CPU: ``use_gpu`` is set False after parsing (the parser's ``type=bool`` would turn any string
  into True); ``Config`` then picks ``cpu`` (it would on a CPU-only torch anyway).
- ``random.sample(set, 1)`` in ``Load_dataset.__getitem__``: Python >= 3.11 refuses a set; the
  loader module's ``random`` is replaced by a shim whose ``sample`` first makes the set a tuple,
  which is what Python <= 3.10 (the official environment: 3.8) did itself: the same draws.
- ``scipy.sparse.dok_matrix._update`` (used by ``get_norm_adj_mat``, removed from current scipy)
  is restored as an unchecked ``dict.update`` of the matrix's entries, what it was.
- ``DataLoader(num_workers=0)`` instead of ``min(cpu_count // 2, 8)`` (1 on this 2-core
  machine): the negative sampling then runs in the timed process, whose CPU time is measured.
- The working directory is a temporary folder holding ``data/ml-100k/`` -> the prepared files, so
  that ``load_or_create_matrix`` finds no cached ``.pt`` and builds every graph (it saves them
  there, as on a first official run). ``main.py`` (tensorboardX) and the file logger are not
  used; the loader's "normal" logger stays silent.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import sys
import tempfile
import time
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

# Kept identical to benchmark.py's WORKLOADS, SEED and DEFAULT_DATA (test_benchmark.py).
WORKLOADS = {
    "preprocessing": "graph construction (co-occurrence, top-k, semantic kNN) + model, rearm "
    "(ml-100k)",
    "epoch": "train epoch, rearm (ml-100k)",
    "evaluation": "full validation ranking, rearm (ml-100k)",
}
SEED = 2025  # the official parser's default seed
DEFAULT_DATA = "work/bench/rearm/ml-100k"  # the exported folder, relative to the repository root
FILES = ("train.npy", "valid.npy", "test.npy", "image_feat.npy", "text_feat.npy")
# The official README's Baby command (ml-100k has no official recipe), as parser flags.
RECIPE = {
    "seed": 2025,
    "batch_size": 2048,
    "eval_batch_size": 8192,
    "embedding_dim": 64,
    "l_r": 5e-05,
    "reg_weight": 0.0005,
    "num_layer": 4,
    "rank": 3,
    "s_drop": 0.4,
    "m_drop": 0.6,
    "u_mm_image_weight": 0.2,
    "i_mm_image_weight": 0.0,
    "uu_co_weight": 0.4,
    "ii_co_weight": 0.2,
    "user_knn_k": 40,
    "item_knn_k": 10,
    "n_ii_layers": 1,
    "n_uu_layers": 1,
    "cl_tmp": 0.6,
    "cl_loss_weight": 5e-06,
    "diff_loss_weight": 5e-05,
    "num_epoch": 2000,
    "stopping_step": 20,
}
DATASET = "ml-100k"


def fail(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


def check_data(folder: Path) -> None:
    missing = [name for name in FILES if not (folder / name).is_file()]
    if missing:
        command = f"python -m papers.rearm.benchmark --data-root DATA --export {folder}"
        fail(f"no prepared ml-100k folder at {folder} (missing {', '.join(missing)}): "
             f"run `{command}` first")  # fmt: skip


class _RandomShim(types.SimpleNamespace):
    """The ``random`` module for the official loader, with Python 3.10's ``sample`` of a set."""

    def __init__(self, module: Any) -> None:
        super().__init__(**{k: getattr(module, k) for k in dir(module) if not k.startswith("__")})
        original = module.sample

        def sample(population: Any, k: int, **kwargs: Any) -> Any:
            if isinstance(population, (set, frozenset)):
                population = tuple(population)
            return original(population, k, **kwargs)

        self.sample = sample


def adapt(loader: Any) -> None:
    """The runtime adaptations listed in the docstring (set, dok_matrix)."""
    import scipy.sparse as sp

    loader.random = _RandomShim(loader.random)
    if not hasattr(sp.dok_matrix, "_update"):

        def _update(self: Any, data: dict[Any, Any]) -> None:
            self._dict.update(data)

        sp.dok_matrix._update = _update


def official_config(utils_parser: Any, configurator: Any) -> Any:
    flags = ["--dataset", DATASET]
    for key, value in RECIPE.items():
        flags += [f"--{key}", str(value)]
    argv, sys.argv = sys.argv, ["main.py", *flags]
    try:
        args = utils_parser.parse_args()
    finally:
        sys.argv = argv
    args.use_gpu = False
    return configurator.Config(args)


def _samples(step: Callable[[], object], repeats: int, warmup: int) -> dict[str, list[float]]:
    for _ in range(warmup):
        step()
    cpu, wall = [], []
    for _ in range(repeats):
        start, begin = time.perf_counter(), time.process_time()
        step()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - begin)
    return {"cpu": cpu, "wall": wall}


class _Take:
    """The next ``n`` batches of a live iterator, fetched lazily (sampling is timed)."""

    def __init__(self, iterator: Iterator[Any], n: int) -> None:
        self.iterator, self.n = iterator, n

    def __len__(self) -> int:
        return self.n

    def __iter__(self) -> Iterator[Any]:
        for _ in range(self.n):
            yield next(self.iterator)


def measure(data: Path, batches: int, repeats: int, prep_repeats: int,
            eval_repeats: int) -> list[dict[str, Any]]:  # fmt: skip
    import model as official_model
    import torch
    import trainer as official_trainer
    from torch.utils.data import DataLoader
    from utils import configurator, evaluator
    from utils import data_loader as loader
    from utils import parser as utils_parser

    adapt(loader)
    work = Path(tempfile.mkdtemp(prefix="rearm-official-"))
    (work / "data" / DATASET).mkdir(parents=True)
    for name in FILES:
        (work / "data" / DATASET / name).symlink_to(data / name)
    os.chdir(work)  # the official code reads ./data/<dataset>/ and caches its graphs there
    config = official_config(utils_parser, configurator)
    built: list[Any] = []

    def prepare() -> None:
        for cached in (work / "data" / DATASET).glob("*.pt"):
            cached.unlink()  # every sample builds the graphs
        dataset = loader.Load_dataset(config)
        built[:] = [dataset, official_model.REARM(config, dataset).to(config.device)]

    prep = _samples(prepare, prep_repeats, warmup=0)
    dataset, rearm = built
    valid, _ = dataset.load_eval_data()
    net = types.SimpleNamespace(
        model=rearm,
        optimizer=torch.optim.AdamW(
            rearm.parameters(), config.learning_rate, weight_decay=config.reg_weight
        ),
        logger=loader.getLogger("normal"),
        writer=None,
        topk=config.topk,
        metrics=config.metrics,
        valid_metric=config.valid_metric,
        device=config.device,
        valid_data=loader.Load_eval_dataset("Validation", config, valid),
    )
    train_loader = DataLoader(dataset, batch_size=config.batch_size, shuffle=True, num_workers=0)
    stream = itertools.chain.from_iterable(iter(train_loader) for _ in itertools.count())
    net.train_data = _Take(stream, 1)
    official_trainer.train(net, 0)  # warm-up batch

    def chunk() -> None:
        net.train_data = _Take(stream, batches)
        official_trainer.train(net, 1)

    train = _samples(chunk, repeats, warmup=0)
    scale = len(train_loader) / batches
    train = {key: [v * scale for v in values] for key, values in train.items()}
    evaluation = _samples(lambda: evaluator.evaluate_model(net, 0, net.valid_data, "valid"),
                          eval_repeats, warmup=1)  # fmt: skip
    print(f"users={dataset.n_users} items={dataset.n_items} train={len(dataset)} "
          f"batches/epoch={len(train_loader)}", flush=True)  # fmt: skip
    return [
        {"workload": WORKLOADS["preprocessing"], "unit": "s", **prep},
        {"workload": WORKLOADS["epoch"], "unit": "s/epoch", **train},
        {"workload": WORKLOADS["evaluation"], "unit": "s", **evaluation},
    ]


def _versions() -> dict[str, str]:
    from importlib import metadata

    return {n: metadata.version(n) for n in ("torch", "numpy", "scipy")}


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="benchmark_official.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--official", required=True, help="checkout of MrShouxingMa/REARM")
    p.add_argument("--data", default=DEFAULT_DATA, help="the official-layout ml-100k folder")
    p.add_argument("--batches", type=_positive, default=10, help="timed batches per sample")
    p.add_argument("--repeats", type=_positive, default=3, help="samples of --batches batches")
    p.add_argument("--prep-repeats", type=_positive, default=1)
    p.add_argument("--eval-repeats", type=_positive, default=3)
    p.add_argument("--threads", type=_positive, default=1)
    p.add_argument("--data-root", default=None, help="ignored: the data is --data")
    p.add_argument("--json", default=None, help="write the measurement file here")
    return p


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    official = Path(args.official).resolve()
    if not (official / "utils" / "helper.py").is_file():
        fail(f"{official} is not a checkout of MrShouxingMa/REARM (no utils/helper.py)")
    data = Path(args.data).resolve()
    check_data(data)
    out = os.path.abspath(args.json) if args.json else None
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    here = Path(__file__).resolve().parent  # holds our model.py, data.py: never imported here
    sys.path[:] = [str(official), *(p for p in sys.path if Path(p or ".").resolve() != here)]

    import torch

    torch.set_num_threads(args.threads)
    print(f"official={official} data={data} torch={torch.__version__} "
          f"threads={torch.get_num_threads()} load average={os.getloadavg()[0]:.2f}",
          flush=True)  # fmt: skip
    measured = measure(data, args.batches, args.repeats, args.prep_repeats, args.eval_repeats)
    for m in measured:
        print(f"official {m['workload']}: median {statistics.median(m['cpu']):.3f} CPU "
              f"{m['unit']} (min {min(m['cpu']):.3f}; wall median "
              f"{statistics.median(m['wall']):.3f})", flush=True)  # fmt: skip
    if out:
        os.makedirs(os.path.dirname(out), exist_ok=True)
        with open(out, "w") as handle:
            json.dump({"side": "official", "versions": _versions(), "measurements": measured},
                      handle, indent=2)  # fmt: skip


if __name__ == "__main__":
    main()

"""Seconds per training epoch (extrapolated from N batches) and per full evaluation.

    python -m papers.mclrec.benchmark --data-root DATA [--batches 20] [--threads 1]

Prints one line per variant; the README records the numbers with the machine's load.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import torch

from .data import load_dataset
from .train import Config, Trainer, _batches, evaluate


def _epoch_seconds(variant: str, data_root: Path, batches: int) -> tuple[float, float]:
    data = load_dataset("beauty", data_root, 50)
    config = Config(variant=variant, lam=0.0, beta=0.05)  # the Beauty recipe
    trainer = Trainer(config, data.n_items, torch.device("cpu"))
    stream = _batches(data.train, config, 0, 0, torch.device("cpu"))
    trainer.train_batch(*next(stream))  # warm-up
    start = time.perf_counter()
    for _ in range(batches):
        trainer.train_batch(*next(stream))
    per_batch = (time.perf_counter() - start) / batches
    per_epoch = per_batch * len(data.train) / config.batch_size
    start = time.perf_counter()
    evaluate(trainer.model, data.test, 2048, torch.device("cpu"))
    return per_epoch, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-root", required=True)
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"threads={args.threads} load average={os.getloadavg()[0]:.2f}")
    for variant in ("sasrec", "cl4srec", "mclrec"):
        epoch, full_eval = _epoch_seconds(variant, Path(args.data_root), args.batches)
        print(f"{variant}: {epoch:.0f} s/epoch (Beauty, batch 256), full eval {full_eval:.1f} s")


if __name__ == "__main__":
    main()

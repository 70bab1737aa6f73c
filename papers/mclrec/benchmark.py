"""Seconds per training epoch (extrapolated from N batches) and per full evaluation.

    python -m papers.mclrec.benchmark --data-root DATA [--batches 20] [--threads 1]

Prints one line per variant, wall and process CPU time (the CPU time is the fairer number on a
shared machine). ``benchmark_official.py`` times the official code the same way; the README
records both and their ratio.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Literal

import torch

from .data import load_dataset
from .train import Config, Trainer, _batches, evaluate

Variant = Literal["sasrec", "cl4srec", "mclrec"]
VARIANTS: tuple[Variant, ...] = ("sasrec", "cl4srec", "mclrec")


def _clocks() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def _since(start: tuple[float, float]) -> tuple[float, float]:
    wall, cpu = _clocks()
    return wall - start[0], cpu - start[1]


def _epoch_seconds(variant: Variant, data_root: Path, batches: int) -> dict[str, float]:
    data = load_dataset("beauty", data_root, 50)
    config = Config(variant=variant, lam=0.0, beta=0.05)  # the Beauty recipe
    trainer = Trainer(config, data.n_items, torch.device("cpu"))
    stream = _batches(data.train, config, 0, 0, torch.device("cpu"))
    trainer.train_batch(*next(stream))  # warm-up
    start = _clocks()
    for _ in range(batches):
        trainer.train_batch(*next(stream))
    wall, cpu = _since(start)
    scale = len(data.train) / config.batch_size / batches
    start = _clocks()
    evaluate(trainer.model, data.test, 2048, torch.device("cpu"))
    eval_wall, eval_cpu = _since(start)
    return {"epoch": wall * scale, "epoch_cpu": cpu * scale, "eval": eval_wall,
            "eval_cpu": eval_cpu}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-root", required=True)
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"threads={args.threads} load average={os.getloadavg()[0]:.2f}")
    for variant in VARIANTS:
        t = _epoch_seconds(variant, Path(args.data_root), args.batches)
        print(
            f"{variant}: {t['epoch']:.0f} s/epoch (cpu {t['epoch_cpu']:.0f}; Beauty, batch "
            f"256), full eval {t['eval']:.1f} s (cpu {t['eval_cpu']:.1f})",
            flush=True,
        )


if __name__ == "__main__":
    main()

"""Seconds per training epoch (extrapolated from chunks of batches) and per full evaluation.

    python -m papers.mclrec.benchmark --data-root DATA [--batches 20] [--repeats 3]
        [--threads 1] [--json FILE]

For each variant, the Beauty recipe: ``--repeats`` samples of ``--batches`` training batches of
256 (after one warm-up batch) extrapolated to one epoch of the 131,413 training prefixes, and
one full test ranking of the 22,363 users (two samples after a warm-up); process CPU and wall
seconds (CPU time is the fairer number on a shared machine), and the FLOPs of a training batch
(``torch.utils.flop_counter``, forward + backward) so that the achieved GFLOP/s can be set
against the machine's matmul peak. ``--json`` writes a ``common.bench`` measurement file;
``benchmark_official.py`` times the official code the same way; ``nox -s bench -- mclrec`` runs
both and records them. The two sides draw their batches from their own shuffles of the same
training prefixes (same distribution of lengths, not the same batches).
"""

from __future__ import annotations

import argparse
import os
import statistics
from pathlib import Path
from typing import Literal

import torch
from torch.utils.flop_counter import FlopCounterMode

from common.bench import Measurement, time_samples, write_measurements
from common.records import package_versions

from .data import load_dataset
from .train import Config, Trainer, _batches, evaluate

Variant = Literal["sasrec", "cl4srec", "mclrec"]
VARIANTS: tuple[Variant, ...] = ("mclrec", "sasrec", "cl4srec")
CPU = torch.device("cpu")


def _measure(variant: Variant, data_root: Path, batches: int, repeats: int) -> list[Measurement]:
    data = load_dataset("beauty", data_root, 50)
    config = Config(variant=variant, lam=0.0, beta=0.05)  # the Beauty recipe
    trainer = Trainer(config, data.n_items, CPU)
    stream = _batches(data.train, config, 0, 0, CPU)
    per_epoch = len(data.train) / config.batch_size

    def chunk() -> None:
        for _ in range(batches):
            trainer.train_batch(*next(stream))

    cpu, wall = time_samples(chunk, repeats, warmup=0)
    with FlopCounterMode(display=False) as counter:
        trainer.train_batch(*next(stream))
    scale = per_epoch / batches
    eval_cpu, eval_wall = time_samples(lambda: evaluate(trainer.model, data.test, 2048, CPU), 2)
    return [
        Measurement(
            workload=f"train epoch, {variant} (Beauty)",
            unit="s/epoch",
            cpu=[c * scale for c in cpu],
            wall=[w * scale for w in wall],
            flops=counter.get_total_flops() * per_epoch,
        ),
        Measurement(
            workload=f"full test ranking, {variant} (Beauty)",
            unit="s",
            cpu=eval_cpu,
            wall=eval_wall,
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-root", required=True)
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    parser.add_argument("--json", type=Path, default=None, help="write the measurement file here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"threads={args.threads} load average={os.getloadavg()[0]:.2f}")
    measured = []
    for variant in args.variants:
        for m in _measure(variant, Path(args.data_root), args.batches, args.repeats):
            print(f"{m.workload}: median {statistics.median(m.cpu):.1f} CPU {m.unit} "
                  f"(min {min(m.cpu):.1f})", flush=True)  # fmt: skip
            measured.append(m)
    if args.json is not None:
        write_measurements(args.json, "ours", measured, package_versions(("torch", "numpy")))


if __name__ == "__main__":
    main()

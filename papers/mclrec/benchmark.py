"""Seconds per training epoch (extrapolated from chunks of batches) and per full evaluation.

    python -m papers.mclrec.benchmark --data-root DATA [--batches 20] [--repeats 3]
        [--threads 1] [--json FILE] [--profile]

For each variant, the Beauty recipe: ``--repeats`` samples of ``--batches`` training batches of
256 (after one warm-up batch) extrapolated to one epoch of the 131,413 training prefixes, and
one full test ranking of the 22,363 users (two samples after a warm-up); process CPU and wall
seconds (CPU time is the fairer number on a shared machine), and the FLOPs of a training batch
(``torch.utils.flop_counter``, forward + backward) so that the achieved GFLOP/s can be set
against the machine's matmul peak. ``--json`` writes a ``common.bench`` measurement file;
``benchmark_official.py`` times the official code the same way; ``nox -s bench -- mclrec`` runs
both and records them. The two sides draw their batches from their own shuffles of the same
training prefixes (same distribution of lengths, not the same batches).

``--profile`` prints, instead, where the CPU time goes: the operators of ``--batches`` training
batches (``torch.profiler``, self CPU time) grouped by kind, with the number of operator calls
per batch, and a full test ranking split into encoder, score matrix and top-k metrics.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path
from typing import Literal

import torch

from common.bench import Measurement, count_flops, time_samples, write_measurements
from common.metrics.ranking import ranking_metrics
from common.records import package_versions

from .data import SeqRecData, load_dataset
from .train import RANK_KS, Config, Trainer, _batches, evaluate

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
    batch_flops = count_flops(lambda: trainer.train_batch(*next(stream)))
    scale = per_epoch / batches
    eval_cpu, eval_wall = time_samples(lambda: evaluate(trainer.model, data.test, 2048, CPU), 2)
    return [
        Measurement(
            workload=f"train epoch, {variant} (Beauty)",
            unit="s/epoch",
            cpu=[c * scale for c in cpu],
            wall=[w * scale for w in wall],
            flops=batch_flops * per_epoch if batch_flops else None,
        ),
        Measurement(
            workload=f"full test ranking, {variant} (Beauty)",
            unit="s",
            cpu=eval_cpu,
            wall=eval_wall,
        ),
    ]


# operator name -> kind, for the profile; anything else is "other element-wise and bookkeeping"
OP_KINDS = {
    "matrix products": ("aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm"),
    "dropout masks (random numbers)": ("aten::bernoulli_", "aten::uniform_"),
    "log-softmax over the items (cross-entropy)": (
        "aten::_log_softmax",
        "aten::_log_softmax_backward_data",
    ),
    "gathers, scatters and length groups": (
        "aten::index",
        "aten::_index_put_impl_",
        "aten::nonzero",
        "aten::index_select",
        "aten::embedding_dense_backward",
    ),
    "copies and fills": ("aten::copy_", "aten::fill_", "aten::zero_"),
}


def profile_training(variant: Variant, data: SeqRecData, batches: int) -> dict[str, float]:
    """Share of the self CPU time of ``batches`` training batches per operator kind, plus the
    operator calls per batch and the CPU seconds per batch."""
    from torch.profiler import ProfilerActivity, profile

    config = Config(variant=variant, lam=0.0, beta=0.05)
    trainer = Trainer(config, data.n_items, CPU)
    stream = _batches(data.train, config, 0, 0, CPU)
    trainer.train_batch(*next(stream))  # warm-up
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(batches):
            trainer.train_batch(*next(stream))
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events)
    shares = {kind: 0.0 for kind in OP_KINDS}
    for event in events:
        kind = next((k for k, names in OP_KINDS.items() if event.key in names), None)
        if kind is not None:
            shares[kind] += event.self_cpu_time_total / total
    shares["other element-wise and bookkeeping"] = 1.0 - sum(shares.values())
    shares["operator calls per batch"] = sum(e.count for e in events) / batches
    shares["CPU s per batch (profiled)"] = total / 1e6 / batches
    return shares


@torch.inference_mode()
def profile_evaluation(data: SeqRecData, batch_size: int = 2048) -> dict[str, float]:
    """CPU seconds of one full test ranking, split as ``evaluate`` runs it (untrained model)."""
    model = Trainer(Config(variant="sasrec"), data.n_items, CPU).model.eval()
    parts = {"encoder": 0.0, "score matrix": 0.0, "top-k and metrics": 0.0}
    samples = data.test
    for start in range(0, len(samples), batch_size):
        part = samples.subset(torch.arange(start, min(start + batch_size, len(samples))))
        t0 = time.process_time()
        hidden = model(part.history, part.length)
        t1 = time.process_time()
        scores = model.full_scores(hidden)
        scores[:, 0] = float("-inf")
        t2 = time.process_time()
        ranking_metrics(scores, part.target, RANK_KS)
        t3 = time.process_time()
        parts["encoder"] += t1 - t0
        parts["score matrix"] += t2 - t1
        parts["top-k and metrics"] += t3 - t2
    return parts


def print_profile(data_root: Path, variants: list[Variant], batches: int) -> None:
    data = load_dataset("beauty", data_root, 50)
    for variant in variants:
        print(f"training, {variant} (Beauty, {batches} batches of 256):")
        for kind, value in profile_training(variant, data, batches).items():
            shown = (
                f"{value:.0f}"
                if "calls" in kind
                else f"{value:.3f}"
                if "s per" in kind
                else f"{value:.1%}"
            )
            print(f"  {kind:<45} {shown}")
    print(f"full test ranking ({len(data.test)} users x {data.n_items} items), CPU s:")
    for part, seconds in profile_evaluation(data).items():
        print(f"  {part:<45} {seconds:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-root", required=True)
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    parser.add_argument("--json", type=Path, default=None, help="write the measurement file here")
    parser.add_argument("--profile", action="store_true", help="print where the CPU time goes")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"threads={args.threads} load average={os.getloadavg()[0]:.2f}")
    if args.profile:
        print_profile(Path(args.data_root), args.variants, args.batches)
        return
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

"""Seconds per evaluation and per CoCoSoDa training step (ours), on a seeded slice of Ruby.

    python -m papers.cocosoda.benchmark --data-root DATA [--queries 128] [--pool 256]
        [--batch 16] [--steps 3] [--repeats 3] [--threads 1] [--json FILE] [--model M]
        [--skip evaluation|training]

``nox -s bench -- cocosoda --data-root DATA`` runs ``benchmark_official.py`` (the official
``run.py`` / ``model.py``) and then this, with the same options, and records both
(``common.bench``). Both sides select the same rows from ``DATA/codesearch/ruby``: ``--queries``
test rows drawn with seed 0 and a pool of ``--pool`` functions (their gold functions plus
distractors drawn with seed 1 from test ∪ valid, in file order; :func:`.data.slice_retrieval`,
which the official harness re-implements with the standard library, tested equal), and the
first ``--batch × (steps + 1)`` valid rows as training batches; each prints a digest of the
URLs it took, also kept in its measurement file (``versions["ruby slice"]``).

Timed, with all-MiniLM-L6-v2 (``--model``) at code length 256 and query length 128, fp32 CPU:

* ``evaluation``: :func:`.evaluate.evaluate_pairs` (tokenisation, length-bucketed encoding in
  batches of 64, the scores, the top-1,000 ranks) after one warm-up call, ``--repeats`` times;
* ``training``: a CoCoSoDa step at batch ``--batch`` (padding to the batch's longest row, the
  soft augmentation of ``step % 4``, the momentum update, the query and key encoders, the
  multimodal loss with K = 1024, backward, clipping, AdamW, the schedule) after one warm-up
  step, ``--steps`` times (steps 2, 3, … as the official loop counts them).

Process CPU seconds (``time.process_time``) and wall seconds per unit; with ``--json`` they are
written as a ``common.bench`` measurement file.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from common.bench import Measurement, count_flops, time_samples, write_measurements
from common.records import package_versions
from common.text import STAND_IN, load_encoder, pad_batch

from .data import Pair, load_ruby, pool_of, slice_retrieval
from .evaluate import evaluate_pairs, token_ids
from .train import Config, augment_options, batch_loss, build, update

CPU = torch.device("cpu")
SEED = 0  # the queries' draw; the pool's distractors use SEED + 1 (slice_retrieval)
# workload names and units, the same literals in benchmark_official.py (a test compares them)
WORKLOADS = {
    "evaluation": "evaluation, {queries} Ruby test queries × {pool} functions "
    "(tokenise, encode, rank)",
    "training": "CoCoSoDa training step, batch {batch}, K = 1024",
}
UNITS = {"evaluation": "s/evaluation", "training": "s/step"}
VERSIONS = ("torch", "transformers", "tokenizers")


def select_rows(
    data_root: Path, queries: int, pool: int, train: int
) -> tuple[list[Pair], list[Pair], list[Pair]]:
    """(queries, pool, training pairs) of the benchmark, in file order."""
    ruby = load_ruby(data_root)
    kept, kept_pool = slice_retrieval(
        ruby.test, pool_of(ruby.test, ruby.valid), queries, pool, SEED
    )
    if train > len(ruby.valid):
        raise SystemExit(f"error: {train} training rows asked, Ruby valid has {len(ruby.valid)}")
    return kept, kept_pool, ruby.valid[:train]


def rows_digest(queries: Sequence[str], pool: Sequence[str], train: Sequence[str]) -> str:
    """The first 12 hex digits of the sha256 of the three URL lists (as both sides compute it)."""
    text = "\n\n".join("\n".join(urls) for urls in (queries, pool, train))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


Timed = tuple[list[float], list[float], float | None]  # cpu, wall, FLOPs per unit


def time_evaluation(encoder: torch.nn.Module, tokenizer: object, queries: list[Pair],
                    pool: list[Pair], repeats: int) -> Timed:  # fmt: skip
    result: dict[str, float] = {}

    def run() -> None:
        result.update(evaluate_pairs(encoder, tokenizer, queries, pool, 256, 128, CPU, 64))

    cpu, wall = time_samples(run, repeats)
    print(f"ours: MRR {result['MRR']:.4f} on {len(queries)} queries x {len(pool)} functions")
    return cpu, wall, count_flops(run)


def time_training(encoder: torch.nn.Module, tokenizer: object, pairs: list[Pair], batch: int,
                  steps: int) -> Timed:  # fmt: skip
    """Per-step (cpu, wall) of ``steps`` CoCoSoDa steps after one warm-up step, and the FLOPs of
    one more step (on the first batch's rows)."""
    config = Config(variant="cocosoda", batch_size=batch)
    model, optim, sched = build(encoder, config, CPU, 1000)
    augment = augment_options(tokenizer, config.aug_prob)
    augment["generator"] = torch.Generator().manual_seed(SEED)
    pad = int(tokenizer.pad_token_id)  # type: ignore[attr-defined]
    code = token_ids(tokenizer, [p.code for p in pairs], config.code_length)
    nl = token_ids(tokenizer, [p.query for p in pairs], config.nl_length)
    model.train()
    step = 0

    def run_step(index: int, step_number: int) -> None:
        rows = range(index * batch, (index + 1) * batch)
        c, q = pad_batch([code[i] for i in rows], pad), pad_batch([nl[i] for i in rows], pad)
        loss = batch_loss(model, config.variant, c, q, step_number, augment, CPU)
        update(model, loss, optim, sched, config.max_grad_norm)

    def one_step() -> None:
        nonlocal step
        run_step(step, step + 1)  # steps counted from 1, as run.py's loop
        step += 1

    cpu, wall = time_samples(one_step, steps)
    return cpu, wall, count_flops(lambda: run_step(0, step + 1))


def measure(args: argparse.Namespace, load: Callable[[str], tuple[object, torch.nn.Module]]
            ) -> tuple[list[Measurement], str]:  # fmt: skip
    """The measurements ``args`` ask for and the rows' digest; ``load`` gives a fresh
    (tokenizer, encoder) for each workload."""
    queries, pool, train = select_rows(
        args.data_root, args.queries, args.pool, args.batch * (args.steps + 1)
    )
    digest = rows_digest([p.key for p in queries], [p.key for p in pool], [p.key for p in train])
    print(f"ours: rows {digest} ({len(queries)} queries, {len(pool)} functions, "
          f"{len(train)} training pairs)", flush=True)  # fmt: skip
    measured = []
    if args.skip != "evaluation":
        tokenizer, encoder = load(args.model)
        cpu, wall, flops = time_evaluation(encoder, tokenizer, queries, pool, args.repeats)
        name = WORKLOADS["evaluation"].format(queries=len(queries), pool=len(pool))
        measured.append(Measurement(workload=name, unit=UNITS["evaluation"], cpu=cpu, wall=wall,
                                    flops=flops))  # fmt: skip
    if args.skip != "training":
        tokenizer, encoder = load(args.model)
        cpu, wall, flops = time_training(encoder, tokenizer, train, args.batch, args.steps)
        name = WORKLOADS["training"].format(batch=args.batch)
        measured.append(Measurement(workload=name, unit=UNITS["training"], cpu=cpu, wall=wall,
                                    flops=flops))  # fmt: skip
    return measured, digest


def parser() -> argparse.ArgumentParser:
    out = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    out.add_argument("--data-root", type=Path, required=True)
    out.add_argument("--queries", type=int, default=128, help="Ruby test queries (seed 0)")
    out.add_argument("--pool", type=int, default=256, help="functions they are ranked among")
    out.add_argument("--batch", type=int, default=16, help="training batch")
    out.add_argument("--steps", type=int, default=3, help="timed training steps")
    out.add_argument("--repeats", type=int, default=3, help="timed evaluations")
    out.add_argument("--threads", type=int, default=1)
    out.add_argument("--json", type=Path, default=None, help="write the measurement file here")
    out.add_argument("--model", default=STAND_IN, help="encoder (default: all-MiniLM-L6-v2)")
    out.add_argument("--skip", choices=("evaluation", "training"), default=None)
    return out


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    cli = parser()
    args = cli.parse_args(argv)
    for name in ("queries", "pool", "batch", "steps", "repeats", "threads"):
        if getattr(args, name) < 1:
            cli.error(f"--{name} must be at least 1")
    if args.pool < args.queries:
        cli.error("--pool must be at least --queries (it holds their gold functions)")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"threads={args.threads} load average={os.getloadavg()[0]:.2f}", flush=True)
    measured, digest = measure(args, load_encoder)
    for m in measured:
        print(f"ours {m.workload}: CPU min {min(m.cpu):.3f} median {statistics.median(m.cpu):.3f}"
              f" {m.unit}; wall min {min(m.wall):.3f} median {statistics.median(m.wall):.3f}",
              flush=True)  # fmt: skip
    if args.json is not None:
        versions = {**package_versions(VERSIONS), "ruby slice": digest}
        write_measurements(args.json, "ours", measured, versions)


if __name__ == "__main__":
    main()

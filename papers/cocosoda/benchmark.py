"""Seconds per evaluation and per training step (ours), on a fixed slice of the real data.

    python -m papers.cocosoda.benchmark --data-root DATA --slice DIR [--queries 64] [--pool 128]
        [--batch 16] [--steps 4] [--repeats 2] [--threads 1]

Writes the slice to DIR (``queries.jsonl``: Ruby test rows; ``pool.jsonl``: their gold functions
plus seeded distractors from test ∪ valid; ``train.jsonl``: Ruby valid rows for the training
batches), so that ``benchmark_official.py`` times the official code on the same rows. Then
prints, with all-MiniLM-L6-v2 at code length 256 and query length 128, batch 64 for the
evaluation: the wall and process-CPU seconds of ``evaluate_pairs`` (tokenisation included)
after one warm-up, and of CoCoSoDa training steps at batch ``--batch`` (soft augmentation,
multimodal loss with K = 1024, backward, clipping, AdamW and schedule) after one warm-up step.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch

from common.text import STAND_IN, load_encoder, pad_batch

from .data import (
    RUBY_TEST,
    RUBY_VALID,
    Pair,
    codesearch_pairs,
    load_ruby,
    pool_of,
    read_jsonl,
    slice_retrieval,
)
from .evaluate import evaluate_pairs, token_ids
from .train import Config, augment_options, batch_loss, build, update

CPU = torch.device("cpu")


def write_slice(data_root: Path, out: Path, queries: int, pool: int, train: int) -> None:
    """The benchmark's rows, in the official jsonl layout (seeded as the smoke slices)."""
    ruby = load_ruby(data_root)
    kept, kept_pool = slice_retrieval(ruby.test, pool_of(ruby.test, ruby.valid), queries, pool, 0)
    rows = {
        str(r["url"]): r for rel in (RUBY_TEST, RUBY_VALID) for r in read_jsonl(data_root / rel)
    }
    out.mkdir(parents=True, exist_ok=True)
    for name, pairs in (("queries", kept), ("pool", kept_pool), ("train", ruby.valid[:train])):
        lines = [json.dumps(rows[p.key]) for p in pairs]
        (out / f"{name}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")


def clocks() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def timed(work: Callable[[], object], repeats: int) -> list[tuple[float, float]]:
    """(wall, cpu) seconds of each of ``repeats`` calls after one warm-up call."""
    work()
    out = []
    for _ in range(repeats):
        start = clocks()
        work()
        end = clocks()
        out.append((end[0] - start[0], end[1] - start[1]))
    return out


def time_evaluation(folder: Path, repeats: int) -> list[tuple[float, float]]:
    tokenizer, encoder = load_encoder(STAND_IN)
    queries = codesearch_pairs(folder / "queries.jsonl")
    pool = codesearch_pairs(folder / "pool.jsonl")
    result: dict[str, float] = {}

    def run() -> None:
        result.update(evaluate_pairs(encoder, tokenizer, queries, pool, 256, 128, CPU, 64))

    times = timed(run, repeats)
    print(f"ours: MRR {result['MRR']:.4f} on {len(queries)} queries x {len(pool)} functions")
    return times


def time_training(folder: Path, batch: int, steps: int) -> list[tuple[float, float]]:
    """Per-step (wall, cpu) of ``steps`` CoCoSoDa steps after one warm-up step."""
    tokenizer, encoder = load_encoder(STAND_IN)
    pairs: list[Pair] = codesearch_pairs(folder / "train.jsonl")
    config = Config(variant="cocosoda", batch_size=batch)
    model, optim, sched = build(encoder, config, CPU, 1000)
    augment = augment_options(tokenizer, config.aug_prob)
    augment["generator"] = torch.Generator().manual_seed(0)
    pad = int(tokenizer.pad_token_id)
    code = token_ids(tokenizer, [p.code for p in pairs], config.code_length)
    nl = token_ids(tokenizer, [p.query for p in pairs], config.nl_length)
    model.train()
    out = []
    for step in range(steps + 1):  # step 0 is the warm-up
        rows = range(step * batch, (step + 1) * batch)
        start = clocks()
        c, q = pad_batch([code[i] for i in rows], pad), pad_batch([nl[i] for i in rows], pad)
        loss = batch_loss(model, config.variant, c, q, step + 1, augment, CPU)
        update(model, loss, optim, sched, config.max_grad_norm)
        end = clocks()
        if step:
            out.append((end[0] - start[0], end[1] - start[1]))
    return out


def summary(name: str, times: list[tuple[float, float]]) -> str:
    wall, cpu = [t[0] for t in times], [t[1] for t in times]
    return (f"{name}: wall min {min(wall):.3f} median {statistics.median(wall):.3f} s, "
            f"cpu min {min(cpu):.3f} median {statistics.median(cpu):.3f} s")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-root", type=Path, required=True)
    parser.add_argument("--slice", type=Path, required=True, help="folder for the rows")
    parser.add_argument("--queries", type=int, default=64)
    parser.add_argument("--pool", type=int, default=128)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--skip", choices=("evaluation", "training"), default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    write_slice(args.data_root, args.slice, args.queries, args.pool, args.batch * (args.steps + 1))
    print(f"threads={args.threads} load average={os.getloadavg()[0]:.2f}", flush=True)
    if args.skip != "evaluation":
        print(summary("ours evaluation", time_evaluation(args.slice, args.repeats)), flush=True)
    if args.skip != "training":
        steps = time_training(args.slice, args.batch, args.steps)
        print(summary(f"ours training step (batch {args.batch})", steps), flush=True)


if __name__ == "__main__":
    main()

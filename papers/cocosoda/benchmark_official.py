"""Time the official CoCoSoDa code (``run.py::evaluate``, ``Multi_Loss_CoCoSoDa``) the way
``benchmark.py`` times ours, on the rows ``benchmark.py --slice DIR`` wrote.

    OMP_NUM_THREADS=1 python papers/cocosoda/benchmark_official.py --official PATH --slice DIR \\
        --model MINILM_FOLDER [--batch 16] [--steps 4] [--repeats 2] [--threads 1]

PATH is a checkout of DeepSoftwareAnalytics/CoCoSoDa (read at 2f2bf8e); it is imported only in
:func:`official_modules`, never at this module's import, and nothing from this repository is
imported. Adaptations, none of them in the timed algorithm:

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

Timed: ``evaluate`` (its datasets, tokenisation, DataLoader with 4 workers, batch 64, the ranking
loop) after one warm-up; and ``run.py::multi_lang_continue_pre_train``'s step body (the
augmentation by ``step % 4``, the model's forward, the cross-entropy of 20 × logits, backward,
clipping over ``model.parameters()``, AdamW, ``zero_grad``, the linear schedule) after one
warm-up step, on batches padded by ``convert_examples_to_features_unixcoder``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import random
import statistics
import sys
import time
import types
from pathlib import Path
from typing import Any

import torch
from torch import nn

SWAP = {0: 1, 1: 0}
Times = list[tuple[float, float]]  # (wall, cpu) seconds


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


def clocks() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def time_evaluation(run: Any, model: Any, args: argparse.Namespace, tokenizer: Any,
                    encoder: nn.Module, queries: str, repeats: int) -> Times:  # fmt: skip
    wrapped = model.Model(encoder)
    out = []
    for attempt in range(repeats + 1):  # the first is a warm-up
        start = clocks()
        result = run.evaluate(args, wrapped, tokenizer, queries, None)
        end = clocks()
        if attempt:
            out.append((end[0] - start[0], end[1] - start[1]))
    print(f"official: MRR {result['eval_mrr']:.3f}", flush=True)
    return out


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
                  encoder: nn.Module, rows: list[dict[str, Any]], steps: int) -> Times:  # fmt: skip
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
    out = []
    b = args.train_batch_size
    for step in range(steps + 1):  # step 0 is the warm-up
        chunk = features[step * b : (step + 1) * b]
        start = clocks()
        batch = (torch.tensor([f.code_ids for f in chunk]), torch.tensor([f.nl_ids for f in chunk]))
        train_step(run, net, optimizer, scheduler, batch, step + 1, tokenizer, args)
        end = clocks()
        if step:
            out.append((end[0] - start[0], end[1] - start[1]))
    return out


def summary(name: str, times: Times) -> str:
    wall, cpu = [t[0] for t in times], [t[1] for t in times]
    return (f"{name}: wall min {min(wall):.3f} median {statistics.median(wall):.3f} s, "
            f"cpu min {min(cpu):.3f} median {statistics.median(cpu):.3f} s")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--official", type=Path, required=True)
    parser.add_argument("--slice", type=Path, required=True)
    parser.add_argument("--model", required=True, help="all-MiniLM-L6-v2 folder")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--skip", choices=("evaluation", "training"), default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    transformers: Any = importlib.import_module("transformers")
    run, model = official_modules(args.official.resolve())
    tokenizer = SwappedTokenizer(transformers.AutoTokenizer.from_pretrained(args.model))
    options = arguments(args.slice.resolve(), args.batch)
    print(f"threads={args.threads} load average={os.getloadavg()[0]:.2f}", flush=True)
    if args.skip != "evaluation":
        queries = str(args.slice.resolve() / "queries.jsonl")
        times = time_evaluation(run, model, options, tokenizer, swapped_encoder(args.model),
                                queries, args.repeats)  # fmt: skip
        print(summary("official evaluation", times), flush=True)
    if args.skip != "training":
        lines = (args.slice / "train.jsonl").read_text(encoding="utf-8").splitlines()
        rows = [json.loads(line) for line in lines if line.strip()]
        steps = time_training(run, model, options, tokenizer, swapped_encoder(args.model),
                              rows, args.steps)  # fmt: skip
        print(summary(f"official training step (batch {args.batch})", steps), flush=True)


if __name__ == "__main__":
    main()

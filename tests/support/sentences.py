"""Tiny generated STS data in SentEval's layout, a tiny BERT, the SimCSE family's smoke run
and its smoke budget."""

from __future__ import annotations

import importlib
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from common.eval.sts import SPLIT_FILES, TASKS, YEAR_TASKS, required_files

# Sizes of the real data (SentEval's pair counts, the wiki1m files): what smoke caps cut down.
STS_TEST_PAIRS = 18_850  # STS12-16 (every subset), STS-B test and SICK-R test
STS_TEST_SETS = sum(len(subsets) for _, subsets in YEAR_TASKS.values()) + 2
STSB_DEV_PAIRS = 1_500
CORPUS_LINES = {"prefix": 11_915, "full": 1_000_000}
# What a SimCSE-family smoke command may ask (every variant; see :func:`sentence_work`): about
# 20 s of CPU with the 6-layer MiniLM; the full STS tables alone are 18,850 pairs (> 10 min).
SENTENCE_SMOKE_BUDGET = {
    "corpus lines tokenised": 500,
    "training sentence passes": 500,
    "STS pairs scored": 1_000,
}

WORDS = ("a", "man", "woman", "dog", "cat", "is", "plays", "eats", "runs", "the", "ball", "food")


def _sentence(rng: np.random.Generator, n: int) -> str:
    return " ".join(str(w) for w in rng.choice(WORDS, size=n))


def write_tiny_senteval(root: Path, pairs: int = 6, seed: int = 0) -> list[str]:
    """Write every file :func:`common.eval.sts.required_files` names (test and dev splits).

    Year subsets get ``pairs`` pairs plus one with an empty gold score (SentEval drops it);
    STS-B and SICK splits get ``pairs`` pairs. Returns the relative paths written.
    """
    rng = np.random.default_rng(seed)
    for task in TASKS:
        if task in YEAR_TASKS:
            folder, subsets = YEAR_TASKS[task]
            base = root / "senteval" / "STS" / folder
            base.mkdir(parents=True, exist_ok=True)
            for subset in subsets:
                rows = [(_sentence(rng, 4), _sentence(rng, 5)) for _ in range(pairs + 1)]
                golds = [f"{x:.2f}" for x in rng.uniform(0, 5, pairs)] + [""]
                (base / f"STS.input.{subset}.txt").write_text(
                    "".join(f"{a}\t{b}\n" for a, b in rows), encoding="utf-8"
                )
                (base / f"STS.gs.{subset}.txt").write_text("\n".join(golds) + "\n")
            continue
        for rel in SPLIT_FILES[task].values():
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            lines = ["pair_ID\tsentence_A\tsentence_B\trelatedness_score\tjudgment"]
            if task == "STSBenchmark":
                lines = []
            for i in range(pairs):
                a, b, y = _sentence(rng, 4), _sentence(rng, 6), rng.uniform(0, 5)
                if task == "STSBenchmark":
                    lines.append(f"main-captions\tMSRvid\t2012test\t{i:04d}\t{y:.3f}\t{a}\t{b}")
                else:
                    lines.append(f"{i}\t{a}\t{b}\t{y:.1f}\tNEUTRAL")
            path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return sorted(set(required_files(TASKS, ("dev", "test"))))


STS_KEYS = {"STS12", "STS13", "STS14", "STS15", "STS16", "STSBenchmark", "SICKRelatedness", "Avg"}


def write_tiny_wiki(root: Path, lines: int = 40) -> list[str]:
    """A tiny stand-in for the wiki1m prefix (its registered path), in the test words."""
    from common.sentence_training import WIKI_FILE

    rng = np.random.default_rng(1)
    path = root / WIKI_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    text = [_sentence(rng, 5) for _ in range(lines)]
    path.write_text("\n".join(text) + "\n", encoding="utf-8")
    return [WIKI_FILE]


def save_tiny_bert(folder: Path, words: Sequence[str], hidden: int = 32, layers: int = 2) -> Path:
    """A randomly initialised small BERT and a word-level vocabulary, saved for smoke tests."""
    hf: Any = importlib.import_module("transformers")  # slow to import: only here

    folder.mkdir(parents=True, exist_ok=True)
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    vocab = folder / "vocab.txt"
    vocab.write_text("\n".join([*specials, *sorted(set(words))]) + "\n", encoding="utf-8")
    tokenizer = hf.BertTokenizerFast(vocab_file=str(vocab), do_lower_case=True)
    tokenizer.save_pretrained(str(folder))
    config = hf.BertConfig(
        vocab_size=len(specials) + len(set(words)),
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=2,
        intermediate_size=2 * hidden,
        max_position_embeddings=128,
    )
    torch.manual_seed(0)
    hf.BertModel(config, add_pooling_layer=False).save_pretrained(str(folder))
    return folder


def run_sentence_smoke(entry: Any, tmp_path: Path) -> dict[str, dict[str, Any]]:
    """Run a SimCSE-family paper's smoke recipe on tiny STS data, corpus and BERT; check it.

    Returns its records (as JSON dicts, filed under the entry's folder name) by variant, after
    checking that each has the full STS table with finite values and a finite STS-B dev score.
    """
    from common.runner import main
    from tests.support.datasets import spec_for_local_files, temporary_dataset

    data, results = tmp_path / "data", tmp_path / "results"
    sts, wiki = write_tiny_senteval(data), write_tiny_wiki(data)
    model = save_tiny_bert(tmp_path / "bert", WORDS)
    argv = ["--scale", "smoke", "--data-root", str(data), "--results-dir", str(results),
            "--work-dir", str(tmp_path / "work"), "--device", "cpu",
            f"model_name_or_path={model}"]  # fmt: skip
    with (
        temporary_dataset(spec_for_local_files("senteval-sts", data, sts)),
        temporary_dataset(spec_for_local_files("wiki1m-prefix", data, wiki)),
    ):
        assert main(entry, argv) == 0
    records = {}
    for path in (results / "runs" / entry.folder.name / "wiki1m").glob("*.json"):
        record = json.loads(path.read_text())
        records[record["variant"]] = record
        test = record["metrics"]["test"]
        assert set(test) == STS_KEYS
        assert all(math.isfinite(v) and -100 <= v <= 100 for v in test.values())
        assert math.isfinite(record["metrics"]["validation"]["stsb_dev"])
    return records


def sentence_work(config: Any, per_step: int, passes: int, trains: bool) -> dict[str, int]:
    """The work one SimCSE-family run asks for on the real data, counted from its config.

    ``per_step`` sentences a step and ``passes`` encoder passes per sentence (its views);
    ``trains`` is False for a variant that only scores the encoder as loaded.
    """
    from common.sentence_training import total_steps

    corpus = CORPUS_LINES[config.corpus]
    lines = corpus if config.train_lines is None else min(config.train_lines, corpus)
    steps = total_steps(lines, per_step, config.epochs, config.max_steps) if trains else 0
    dev = min(config.dev_pairs or STSB_DEV_PAIRS, STSB_DEV_PAIRS)
    cap = config.sts_pairs
    test = STS_TEST_PAIRS if cap is None else min(STS_TEST_PAIRS, STS_TEST_SETS * cap)
    return {
        "corpus lines tokenised": lines if trains else 0,
        "training sentence passes": steps * per_step * passes,
        "STS pairs scored": max(1, steps // config.eval_steps) * dev + test,
    }

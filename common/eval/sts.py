"""Semantic textual similarity, scored the way SentEval does it for SimCSE and its followers.

Protocol (facebookresearch/SentEval ``senteval/sts.py`` as modified and called by
princeton-nlp/SimCSE ``evaluation.py`` in ``--mode test --task_set sts``):

* every sentence is split on whitespace and re-joined with single spaces (the files are already
  tokenised and lower-cased; they are used as they are);
* a pair's system score is the cosine similarity of the two sentence embeddings;
* STS12–STS16: Spearman's ρ over the concatenation of all subsets of a year ("all"); STS13
  has no SMT subset (licence); "mean" (plain average of the subsets' ρ) and "wmean"
  (average weighted by the number of pairs) are available too;
* STS-B and SICK-R: Spearman's ρ on the test split (SimCSE scores them without fine-tuning);
  the STS-B dev split is the model-selection set during training;
* scores are reported ×100 and "Avg" is the plain average of the seven tasks.

Gold-score lines that are empty are dropped, as SentEval does. Encoding is left to the caller:
``encode(sentences) -> Tensor[n, d]``; :func:`batched_encode` sorts by length and batches so that
dynamic padding wastes little.

Files are read from SentEval's ``data/downstream`` layout under the data root
(``senteval/STS/...`` and ``senteval/SICK/...``, the ``senteval-sts`` registry entry).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch import Tensor

from common.data import ensure_files
from common.errors import DataError
from common.metrics import spearman

__all__ = [
    "DATASET",
    "TASKS",
    "Aggregation",
    "PairSet",
    "batched_encode",
    "cosine_scores",
    "evaluate_sts",
    "head",
    "load_task",
    "required_files",
    "score_pairs",
    "stsb_dev_spearman",
]

DATASET = "senteval-sts"
Aggregation = Literal["all", "mean", "wmean"]
Encoder = Callable[[list[str]], Tensor]

# Year tasks: folder and subsets, in SentEval's order.
YEAR_TASKS: dict[str, tuple[str, tuple[str, ...]]] = {
    "STS12": (
        "STS12-en-test",
        ("MSRpar", "MSRvid", "SMTeuroparl", "surprise.OnWN", "surprise.SMTnews"),
    ),
    "STS13": ("STS13-en-test", ("FNWN", "headlines", "OnWN")),
    "STS14": (
        "STS14-en-test",
        ("deft-forum", "deft-news", "headlines", "images", "OnWN", "tweet-news"),
    ),
    "STS15": (
        "STS15-en-test",
        ("answers-forums", "answers-students", "belief", "headlines", "images"),
    ),
    "STS16": (
        "STS16-en-test",
        ("answer-answer", "headlines", "plagiarism", "postediting", "question-question"),
    ),
}
STSB_DIR = "senteval/STS/STSBenchmark"
SICK_DIR = "senteval/SICK"
SPLIT_FILES: dict[str, dict[str, str]] = {
    "STSBenchmark": {
        "train": f"{STSB_DIR}/sts-train.csv",
        "dev": f"{STSB_DIR}/sts-dev.csv",
        "test": f"{STSB_DIR}/sts-test.csv",
    },
    "SICKRelatedness": {
        "train": f"{SICK_DIR}/SICK_train.txt",
        "dev": f"{SICK_DIR}/SICK_trial.txt",
        "test": f"{SICK_DIR}/SICK_test_annotated.txt",
    },
}
TASKS: tuple[str, ...] = (*YEAR_TASKS, "STSBenchmark", "SICKRelatedness")


@dataclass(frozen=True)
class PairSet:
    """Sentence pairs with their gold similarity."""

    sent1: list[str]
    sent2: list[str]
    gold: np.ndarray

    def __len__(self) -> int:
        return len(self.sent1)


def _normalise(text: str) -> str:
    return " ".join(text.split())


def required_files(tasks: Iterable[str] = TASKS, splits: Iterable[str] = ("test",)) -> list[str]:
    """Relative paths (under the data root) that scoring ``tasks`` on ``splits`` reads."""
    wanted = list(splits)
    paths: list[str] = []
    for task in tasks:
        if task in YEAR_TASKS:
            folder, subsets = YEAR_TASKS[task]
            for subset in subsets:
                paths.append(f"senteval/STS/{folder}/STS.input.{subset}.txt")
                paths.append(f"senteval/STS/{folder}/STS.gs.{subset}.txt")
        elif task in SPLIT_FILES:
            paths.extend(SPLIT_FILES[task][split] for split in wanted)
        else:
            raise DataError(f"unknown STS task {task!r}; known: {', '.join(TASKS)}")
    return paths


def _read_lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError as exc:
        raise DataError(f"STS file missing: {path}") from exc


def _load_year_subset(folder: Path, subset: str) -> PairSet:
    inputs = _read_lines(folder / f"STS.input.{subset}.txt")
    golds = _read_lines(folder / f"STS.gs.{subset}.txt")
    if len(inputs) != len(golds):
        raise DataError(f"{folder}/STS.input.{subset}.txt and its gold file differ in length")
    s1, s2, gold = [], [], []
    for line_no, (pair, score) in enumerate(zip(inputs, golds, strict=True), start=1):
        if score.strip() == "":
            continue
        fields = pair.split("\t")
        if len(fields) < 2:
            raise DataError(f"{folder}/STS.input.{subset}.txt:{line_no} has no tab-separated pair")
        s1.append(_normalise(fields[0]))
        s2.append(_normalise(fields[1]))
        gold.append(float(score))
    return PairSet(s1, s2, np.asarray(gold, dtype=np.float64))


def _load_split(path: Path, task: str) -> PairSet:
    """STS-B csv (score col 4, sentences 5 and 6) or SICK txt (header; 1, 2, score 3)."""
    lines = _read_lines(path)
    if task == "SICKRelatedness":
        lines, cols = lines[1:], (1, 2, 3)
    else:
        cols = (5, 6, 4)
    s1, s2, gold = [], [], []
    for line_no, line in enumerate(lines, start=1):
        fields = line.strip().split("\t")
        if len(fields) <= max(cols):
            raise DataError(f"{path}:{line_no} has {len(fields)} tab-separated fields")
        s1.append(_normalise(fields[cols[0]]))
        s2.append(_normalise(fields[cols[1]]))
        gold.append(float(fields[cols[2]]))
    return PairSet(s1, s2, np.asarray(gold, dtype=np.float64))


def load_task(data_root: Path, task: str, split: str = "test") -> dict[str, PairSet]:
    """The pairs of one task: its subsets (STS12–16) or ``{split: pairs}`` (STS-B, SICK-R).

    Files are checksum-verified through the ``senteval-sts`` registry entry.
    """
    rel = required_files([task], [split])
    files = ensure_files(DATASET, data_root, rel)
    if task in YEAR_TASKS:
        subsets = YEAR_TASKS[task][1]
        base = files[rel[0]].parent
        return {subset: _load_year_subset(base, subset) for subset in subsets}
    return {split: _load_split(files[rel[0]], task)}


def head(pairs: PairSet, limit: int | None) -> PairSet:
    """The first ``limit`` pairs (all of them when ``limit`` is None or not smaller)."""
    if limit is None or limit >= len(pairs):
        return pairs
    return PairSet(pairs.sent1[:limit], pairs.sent2[:limit], pairs.gold[:limit])


def batched_encode(
    encode_batch: Encoder, sentences: Sequence[str], batch_size: int = 128
) -> dict[str, Tensor]:
    """Embed each distinct sentence once, longest first in batches (little padding)."""
    unique = sorted(set(sentences), key=lambda s: (-len(s.split()), s))
    out: dict[str, Tensor] = {}
    for start in range(0, len(unique), batch_size):
        chunk = unique[start : start + batch_size]
        emb = encode_batch(chunk).detach().float().cpu()
        if emb.shape[0] != len(chunk):
            raise ValueError(f"encoder returned {emb.shape[0]} rows for {len(chunk)} sentences")
        out.update(zip(chunk, emb, strict=True))
    return out


def cosine_scores(emb: dict[str, Tensor], pairs: PairSet) -> np.ndarray:
    """cos(e(s1), e(s2)) for every pair (0 where an embedding is all zeros, as SentEval)."""
    a = torch.stack([emb[s] for s in pairs.sent1]).double()
    b = torch.stack([emb[s] for s in pairs.sent2]).double()
    cos = torch.nn.functional.cosine_similarity(a, b, dim=1, eps=1e-12)
    out: np.ndarray = np.nan_to_num(cos.numpy()).astype(np.float64)
    return out


def score_pairs(emb: dict[str, Tensor], subsets: dict[str, PairSet]) -> dict[str, float]:
    """Spearman ρ (fraction) per subset plus 'all', 'mean' and 'wmean' over the subsets."""
    per: dict[str, float] = {}
    sys_all: list[np.ndarray] = []
    gold_all: list[np.ndarray] = []
    for name, pairs in subsets.items():
        sys = cosine_scores(emb, pairs)
        per[name] = spearman(sys, pairs.gold)
        sys_all.append(sys)
        gold_all.append(pairs.gold)
    weights = np.asarray([len(p) for p in subsets.values()], dtype=np.float64)
    values = np.asarray(list(per.values()))
    per["all"] = spearman(np.concatenate(sys_all), np.concatenate(gold_all))
    per["mean"] = float(values.mean())
    per["wmean"] = float((values * weights).sum() / weights.sum())
    return per


def evaluate_sts(
    encode_batch: Encoder,
    data_root: Path,
    tasks: Sequence[str] = TASKS,
    aggregation: Aggregation = "all",
    batch_size: int = 128,
    max_pairs: int | None = None,
) -> dict[str, float]:
    """SimCSE's STS table: Spearman ×100 per task and 'Avg' (their plain mean).

    STS12–16 use ``aggregation`` over their subsets ('all' in SimCSE); STS-B and SICK-R use
    their test split. ``max_pairs`` keeps the first pairs of each subset and split (a smoke
    run's slice; None: all, the protocol).
    """
    loaded = {
        task: {name: head(pairs, max_pairs) for name, pairs in load_task(data_root, task).items()}
        for task in tasks
    }
    sentences = [s for subsets in loaded.values() for p in subsets.values() for s in p.sent1]
    sentences += [s for subsets in loaded.values() for p in subsets.values() for s in p.sent2]
    emb = batched_encode(encode_batch, sentences, batch_size)
    out: dict[str, float] = {}
    for task, subsets in loaded.items():
        scored = score_pairs(emb, subsets)
        out[task] = 100.0 * (scored[aggregation] if task in YEAR_TASKS else scored["test"])
    out["Avg"] = float(np.mean([out[t] for t in tasks]))
    return out


def stsb_dev_spearman(
    encode_batch: Encoder,
    data_root: Path,
    batch_size: int = 128,
    limit: int | None = None,
) -> float:
    """Spearman ×100 on the STS-B dev split (the selection metric), optionally its first pairs."""
    pairs = head(load_task(data_root, "STSBenchmark", "dev")["dev"], limit)
    emb = batched_encode(encode_batch, pairs.sent1 + pairs.sent2, batch_size)
    return 100.0 * spearman(cosine_scores(emb, pairs), pairs.gold)

"""CodeSearchNet (GraphCodeBERT/CodeXGLUE-filtered) and CoSQA files as (query, code) pairs.

* :func:`read_jsonl`: one JSON object a line, read with the standard library (Hugging Face
  ``datasets`` conflicts with the text environment's pins);
* :func:`codesearch_pairs`: an official ``{train,valid,test}.jsonl`` as :class:`Pair` rows with
  the texts the official ``run.py`` feeds its tokenizer: the query is
  ``' '.join(docstring_tokens)`` and the code ``' '.join(code_tokens)``, keyed by the function URL;
* :func:`cosqa_pairs`: CoSQA's ``cosqa-dev.json`` (web query, Python function, 0/1 label);
* :func:`load_ruby`: the Ruby test and valid files plus CoCoSoDa's split lists, checked against
  each other, with the checksums of everything read;
* :func:`slice_retrieval` / :func:`slice_pairs`: seeded slices for the smoke recipe (the kept
  queries' gold functions always stay in the pool).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

from common.data import checksums, ensure_files, register_folder_datasets
from common.errors import DataError

DECLARED_DATASETS = register_folder_datasets(Path(__file__).parent)  # datasets.toml here

RUBY_DATASET = "codesearch-ruby"
COSQA_DATASET = "cosqa-dev"
RUBY_TEST = "codesearch/ruby/test.jsonl"
RUBY_VALID = "codesearch/ruby/valid.jsonl"
RUBY_LISTS = {
    split: f"codesearch/ruby/cocosoda_{split}.urls.txt"
    for split in ("train", "valid", "test", "codebase")
}
COSQA_DEV = "codesearch/cosqa/cosqa-dev.json"


@dataclass(frozen=True)
class Pair:
    """One query and its gold function; ``key`` identifies the function (its URL)."""

    key: str
    query: str
    code: str


def read_jsonl(path: Path) -> list[dict[str, object]]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError as exc:
        raise DataError(f"file missing: {path}") from exc
    rows = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}:{number}: not JSON ({exc.msg})") from exc
        if not isinstance(row, dict):
            raise DataError(f"{path}:{number}: expected a JSON object")
        rows.append(row)
    return rows


def _tokens(row: dict[str, object], field: str, where: str) -> str:
    value = row.get(field)
    if isinstance(value, list):
        return " ".join(str(t) for t in value)
    if isinstance(value, str):
        return " ".join(value.split())
    raise DataError(f"{where}: field {field!r} missing or not a token list")


def codesearch_pairs(path: Path) -> list[Pair]:
    """The official jsonl's rows as pairs (query = docstring tokens, code = code tokens)."""
    pairs = []
    for i, row in enumerate(read_jsonl(path)):
        where = f"{path} row {i + 1}"
        url = row.get("url")
        if not isinstance(url, str):
            raise DataError(f"{where}: no 'url'")
        pairs.append(
            Pair(url, _tokens(row, "docstring_tokens", where), _tokens(row, "code_tokens", where))
        )
    return pairs


def cosqa_pairs(path: Path) -> list[Pair]:
    """CoSQA dev rows labelled 1 (the code answers the web query), keyed by the code text."""
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError) as exc:
        raise DataError(f"cannot read CoSQA file {path} ({type(exc).__name__})") from exc
    pairs = []
    for row in rows:
        if int(row["label"]) == 1:
            code = " ".join(str(row["code_tokens"]).split())
            pairs.append(Pair(code, " ".join(str(row["doc"]).split()), code))
    return pairs


def pool_of(*splits: list[Pair]) -> list[Pair]:
    """Distinct functions (by key, first occurrence kept, in order) of the given splits."""
    seen: dict[str, Pair] = {}
    for split in splits:
        for pair in split:
            seen.setdefault(pair.key, pair)
    return list(seen.values())


def slice_pairs(pairs: list[Pair], keep: int | None, seed: int) -> list[Pair]:
    """A seeded subset of ``keep`` pairs in their original order (all of them if None)."""
    if keep is None or keep >= len(pairs):
        return list(pairs)
    chosen = set(random.Random(seed).sample(range(len(pairs)), keep))
    return [p for i, p in enumerate(pairs) if i in chosen]


def slice_retrieval(
    queries: list[Pair], pool: list[Pair], keep: int | None, pool_size: int | None, seed: int
) -> tuple[list[Pair], list[Pair]]:
    """``keep`` seeded queries and a pool of ``pool_size``: their gold functions plus seeded
    distractors from the rest of ``pool``, in the pool's order (None: everything)."""
    kept = slice_pairs(queries, keep, seed)
    if pool_size is None or pool_size >= len(pool):
        return kept, list(pool)
    gold = {q.key for q in kept}
    if pool_size < len(gold):
        raise DataError(f"pool size {pool_size} cannot hold the {len(gold)} gold functions")
    others = [i for i, p in enumerate(pool) if p.key not in gold]
    rng = random.Random(seed + 1)
    chosen = set(rng.sample(others, min(pool_size - len(gold), len(others))))
    return kept, [p for i, p in enumerate(pool) if p.key in gold or i in chosen]


@dataclass
class RubyData:
    test: list[Pair]
    valid: list[Pair]
    codebase_urls: int  # functions in CoCoSoDa's official Ruby codebase list
    files: dict[str, str]


def load_ruby(data_root: Path) -> RubyData:
    """Ruby test/valid pairs; their URLs must be CoCoSoDa's test/valid lists."""
    rels = [RUBY_TEST, RUBY_VALID, *RUBY_LISTS.values()]
    paths = ensure_files(RUBY_DATASET, data_root, rels)
    test, valid = codesearch_pairs(paths[RUBY_TEST]), codesearch_pairs(paths[RUBY_VALID])
    lists = {s: paths[r].read_text(encoding="utf-8").split() for s, r in RUBY_LISTS.items()}
    for name, split in (("test", test), ("valid", valid)):
        if {p.key for p in split} != set(lists[name]):
            raise DataError(f"Ruby {name}.jsonl does not hold the URLs of CoCoSoDa's {name} list")
    return RubyData(test, valid, len(set(lists["codebase"])), checksums(paths, RUBY_DATASET))


def load_cosqa(data_root: Path) -> tuple[list[Pair], dict[str, str]]:
    paths = ensure_files(COSQA_DATASET, data_root, [COSQA_DEV])
    return cosqa_pairs(paths[COSQA_DEV]), checksums(paths, COSQA_DATASET)

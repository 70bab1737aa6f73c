"""Loaders of the official CodeSearchNet jsonl, CoCoSoDa's URL lists and CoSQA dev."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from common.errors import DataError
from tests.support.datasets import spec_for_local_files, temporary_dataset

from .data import (
    RUBY_TEST,
    Pair,
    codesearch_pairs,
    cosqa_pairs,
    load_ruby,
    pool_of,
    slice_pairs,
    slice_retrieval,
)
from .testdata import write_tiny_codesearch


def test_pairs_use_the_token_fields_and_urls(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    row = {
        "url": "u1",
        "code_tokens": ["def", "f", "(", ")"],
        "docstring_tokens": ["Do", "it"],
        "code": "raw code",
        "docstring": "raw doc",
    }
    path.write_text(json.dumps(row) + "\n\n" + json.dumps(dict(row, url="u2")) + "\n")
    pairs = codesearch_pairs(path)
    assert [(p.key, p.query, p.code) for p in pairs] == [
        ("u1", "Do it", "def f ( )"),
        ("u2", "Do it", "def f ( )"),
    ]
    assert [p.key for p in pool_of(pairs, pairs[:1])] == ["u1", "u2"]
    path.write_text('{"code_tokens": []}\n')
    with pytest.raises(DataError, match="url"):
        codesearch_pairs(path)


def test_cosqa_keeps_the_answering_pairs(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    rows = [
        {"doc": "sort  a list", "code_tokens": "def  f ( )", "label": 1},
        {"doc": "b", "code_tokens": "def g", "label": 0},
    ]
    path.write_text(json.dumps(rows))
    assert [(p.query, p.code) for p in cosqa_pairs(path)] == [("sort a list", "def f ( )")]


def test_load_ruby_checks_the_split_lists(tmp_path: Path) -> None:
    files = write_tiny_codesearch(tmp_path, test=5, valid=7)
    rels = files["codesearch-ruby"]
    with temporary_dataset(spec_for_local_files("codesearch-ruby", tmp_path, rels)):
        data = load_ruby(tmp_path)
    assert (len(data.test), len(data.valid), data.codebase_urls) == (5, 7, 13)
    assert set(data.files) == set(rels)
    lines = (tmp_path / RUBY_TEST).read_text().splitlines()
    (tmp_path / RUBY_TEST).write_text("\n".join(lines[:-1]) + "\n")  # a test function missing
    spec = spec_for_local_files("codesearch-ruby", tmp_path, rels)
    with temporary_dataset(spec), pytest.raises(DataError, match="test"):
        load_ruby(tmp_path)


def _pairs(n: int, prefix: str) -> list[Pair]:
    return [Pair(f"{prefix}{i}", f"query {i}", f"code {i}") for i in range(n)]


def test_smoke_slice_keeps_the_gold_functions_and_is_seeded() -> None:
    queries = _pairs(50, "f")
    pool = pool_of(queries, _pairs(150, "g"))
    kept, kept_pool = slice_retrieval(queries, pool, 10, 30, seed=0)
    assert len(kept) == 10 and len(kept_pool) == 30
    assert {q.key for q in kept} <= {p.key for p in kept_pool}
    assert len({p.key for p in kept_pool}) == 30
    assert [p.key for p in kept_pool] == [p.key for p in pool if p in kept_pool]  # pool order
    assert slice_retrieval(queries, pool, 10, 30, seed=0) == (kept, kept_pool)
    other, other_pool = slice_retrieval(queries, pool, 10, 30, seed=1)
    assert other != kept and other_pool != kept_pool
    assert kept != queries[:10] and kept_pool[:10] != pool[:10]  # drawn, not the first rows
    assert slice_retrieval(queries, pool, None, None, seed=0) == (queries, pool)
    with pytest.raises(DataError, match="gold"):
        slice_retrieval(queries, pool, 10, 5, seed=0)


def test_training_slice_is_a_seeded_subset() -> None:
    pairs = _pairs(40, "t")
    kept = slice_pairs(pairs, 8, seed=3)
    assert len(kept) == 8 and kept == [p for p in pairs if p in kept]
    assert kept == slice_pairs(pairs, 8, seed=3) != slice_pairs(pairs, 8, seed=4)
    assert slice_pairs(pairs, None, seed=3) == slice_pairs(pairs, 99, seed=3) == pairs

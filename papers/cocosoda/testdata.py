"""Tiny CodeSearchNet/CoSQA files in the official layout, for this paper's tests."""

from __future__ import annotations

import json
import random
from pathlib import Path

from .data import COSQA_DEV, RUBY_LISTS, RUBY_TEST, RUBY_VALID

WORDS = (
    "def",
    "end",
    "return",
    "sum",
    "list",
    "user",
    "name",
    "file",
    "read",
    "write",
    "open",
    "close",
    "value",
    "count",
    "keyword",
    "identifier",
    "the",
    "a",
    "of",
    "get",
)


def _row(rng: random.Random, i: int, split: str) -> dict[str, object]:
    name = [rng.choice(WORDS) for _ in range(2)]
    body = [rng.choice(WORDS) for _ in range(rng.randint(4, 12))]
    return {
        "url": f"https://github.com/x/y/blob/0/{split}.rb#L{i}",
        "code_tokens": ["def", *name, *body, "end"],
        "docstring_tokens": [*name, *(rng.choice(WORDS) for _ in range(3))],
        "partition": split,
    }


def write_tiny_codesearch(root: Path, test: int = 12, valid: int = 16) -> dict[str, list[str]]:
    """Write test/valid jsonl, the four URL lists and cosqa-dev.json; return the paths by
    registered dataset name."""
    rng = random.Random(0)
    rows = {
        "test": [_row(rng, i, "test") for i in range(test)],
        "valid": [_row(rng, i, "valid") for i in range(valid)],
    }
    (root / "codesearch/ruby").mkdir(parents=True, exist_ok=True)
    (root / "codesearch/cosqa").mkdir(parents=True, exist_ok=True)
    for split, rel in (("test", RUBY_TEST), ("valid", RUBY_VALID)):
        (root / rel).write_text("".join(json.dumps(r) + "\n" for r in rows[split]))
    urls = {s: [str(r["url"]) for r in rows[s]] for s in rows}
    urls["train"] = ["https://github.com/x/y/blob/0/train.rb#L1"]
    urls["codebase"] = [*urls["test"], *urls["valid"], "https://github.com/x/y/blob/0/other.rb#L1"]
    for split, rel in RUBY_LISTS.items():
        (root / rel).write_text("\n".join(urls[split]) + "\n")
    cosqa = [
        {
            "idx": f"cosqa-dev-{i}",
            "doc": " ".join(rng.choice(WORDS) for _ in range(4)),
            "code": "x",
            "code_tokens": " ".join(rng.choice(WORDS) for _ in range(8)),
            "docstring_tokens": "",
            "label": i % 3 != 0,
        }
        for i in range(9)
    ]
    for row in cosqa:
        row["label"] = int(bool(row["label"]))
    (root / COSQA_DEV).write_text(json.dumps(cosqa))
    return {
        "codesearch-ruby": [RUBY_TEST, RUBY_VALID, *RUBY_LISTS.values()],
        "cosqa-dev": [COSQA_DEV],
    }

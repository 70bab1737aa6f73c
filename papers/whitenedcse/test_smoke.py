"""End-to-end smoke run of WhitenedCSE on tiny generated data."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from common.data import spec_for_local_files, temporary_dataset
from common.eval.testdata import WORDS, write_tiny_senteval
from common.runner import main
from common.sentence_training import WIKI_FILE
from common.text import save_tiny_bert

from .__main__ import ENTRY

KEYS = {"STS12", "STS13", "STS14", "STS15", "STS16", "STSBenchmark", "SICKRelatedness", "Avg"}


def write_tiny_wiki(root: Path, lines: int = 40) -> list[str]:
    rng = np.random.default_rng(1)
    path = root / WIKI_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    text = [" ".join(str(w) for w in rng.choice(WORDS, size=5)) for _ in range(lines)]
    path.write_text("\n".join(text) + "\n", encoding="utf-8")
    return [WIKI_FILE]


def test_smoke_end_to_end(tmp_path: Path) -> None:
    data = tmp_path / "data"
    sts = write_tiny_senteval(data)
    wiki = write_tiny_wiki(data)
    model = save_tiny_bert(tmp_path / "bert", WORDS)
    results = tmp_path / "results"
    with (
        temporary_dataset(spec_for_local_files("senteval-sts", data, sts)),
        temporary_dataset(spec_for_local_files("wiki1m-prefix", data, wiki)),
    ):
        status = main(
            ENTRY,
            [
                "--scale",
                "smoke",
                "--data-root",
                str(data),
                "--results-dir",
                str(results),
                "--work-dir",
                str(tmp_path / "work"),
                "--device",
                "cpu",
                f"model_name_or_path={model}",
            ],
        )
    assert status == 0
    records = {}
    for path in (results / "runs" / "whitenedcse" / "wiki1m").glob("*.json"):
        record = json.loads(path.read_text())
        records[record["variant"]] = record
    assert set(records) == {"whitenedcse"}
    for record in records.values():
        test = record["metrics"]["test"]
        assert set(test) == KEYS
        assert all(math.isfinite(v) and -100 <= v <= 100 for v in test.values())
        assert math.isfinite(record["metrics"]["validation"]["stsb_dev"])

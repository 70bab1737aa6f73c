"""Tiny generated STS data in SentEval's layout, for tests and paper smoke tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from common.eval.sts import SPLIT_FILES, TASKS, YEAR_TASKS, required_files

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

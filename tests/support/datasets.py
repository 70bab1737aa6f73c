"""Datasets for tests: every dataset the repository declares."""

from __future__ import annotations

from pathlib import Path

from common.cli import discover_papers
from common.data import (
    DATASETS_FILE,
    SHARED_DATASETS,
    DatasetSpec,
    read_datasets_file,
)


def declared_datasets(papers_dir: Path) -> dict[str, DatasetSpec]:
    """Every dataset declared in ``common/datasets.toml`` and in the papers' ``datasets.toml``
    (read, not registered); a name declared twice, even identically, is an error."""
    files = [
        SHARED_DATASETS,
        *(p.folder / DATASETS_FILE for p in discover_papers(papers_dir).values()),
    ]
    found: dict[str, DatasetSpec] = {}
    for path in files:
        for spec in read_datasets_file(path).specs:
            if spec.name in found:
                raise ValueError(f"{path}: {spec.name!r} is declared in another file too")
            found[spec.name] = spec
    return found

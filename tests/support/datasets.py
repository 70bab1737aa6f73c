"""Datasets for tests: every declared dataset, and tiny generated ones registered for a block."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from common.cli import discover_papers
from common.data import (
    _REGISTRY,
    DATASETS_FILE,
    SHARED_DATASETS,
    DataFile,
    DatasetSpec,
    read_datasets_file,
    sha256_of,
    shared_specs,
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


def spec_for_local_files(name: str, root: Path, paths: Iterable[str]) -> DatasetSpec:
    """A spec describing files that already exist under ``root`` (for tests' generated data)."""
    files = tuple(
        DataFile(rel, "", sha256_of(root / rel), (root / rel).stat().st_size) for rel in paths
    )
    return DatasetSpec(name=name, files=files, licence="test data", citation="generated")


@contextmanager
def temporary_dataset(spec: DatasetSpec) -> Iterator[DatasetSpec]:
    """Register ``spec`` in place of any dataset of that name until the block ends.

    Lets a smoke test run the real loaders, with checksum verification on, over tiny files it
    generated itself. (It swaps an entry of ``common.data``'s registry directly: test support.)
    """
    shared_specs()
    previous = _REGISTRY.get(spec.name)
    _REGISTRY[spec.name] = spec
    try:
        yield spec
    finally:
        if previous is None:
            _REGISTRY.pop(spec.name, None)
        else:
            _REGISTRY[spec.name] = previous

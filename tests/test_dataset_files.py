"""Datasets declared as data: ``common/datasets.toml`` (shared), each paper's ``datasets.toml``."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
from pathlib import Path

import pytest

from common.cli import discover_papers
from common.data import (
    DATASETS_FILE,
    DatasetSpec,
    get_dataset,
    read_datasets_file,
    register_folder_datasets,
    shared_specs,
)
from common.errors import DataError
from tests.support.datasets import declared_datasets

PAPERS = Path(__file__).resolve().parents[1] / "papers"

# What common/catalog.py registered before the datasets became data (computed once from it, the
# commit before this file): a digest of every field of each spec. mnist-test was deleted then
# (no paper nor open issue uses it). A deliberate change to a dataset updates its line here.
FORMER_CATALOG = {
    "seqrec-beauty": "cf829a30a9f6d6fa",
    "seqrec-sports": "d925ce9ac672d0b1",
    "seqrec-toys": "fee51fe93da1ebd7",
    "seqrec-yelp": "219e37fe8a87bb6a",
    "hetero-acm": "073b4e4785602cd5",
    "hetero-imdb": "a7bef97cb1a70f9b",
    "hetero-dblp": "07a06cf69760651f",
    "hetero-aminer": "417638bd91ccf969",
    "senteval-sts": "1919e4882930d657",
    "wiki1m": "85398b85d4a02778",
    "wiki1m-prefix": "7ccacefa2f7d7d9f",
    "fashion-mnist": "0cfad2db15731f2f",
    "cifar10": "ab9678cc53e31f91",
    "cifar10-subset": "00aa8c7387bd0fcc",
    "movielens-1m": "a5463010638fe3ff",
    "movielens-100k": "348bc2a5aab0ba83",
    "rearm-baby": "770f0354856370f8",
    "rearm-sports": "9db556c92515922b",
    "rearm-clothing": "15fcb736ebd0f986",
    "codesearch-ruby": "d97bcea12a89f80d",
    "cosqa-dev": "64bb350cf7ac59fb",
    # added since: REARM's item features on Hugging Face (papers/rearm, issue 17)
    "rearm-baby-features": "edc68d28f44cfa78",
    "rearm-sports-features": "f2adb2d0dcaa4303",
    "rearm-clothing-features": "1b427a656597e211",
}


def _digest(spec: DatasetSpec) -> str:
    """sha256 of every field (name, licence, citation, homepage, notes, and per file its path,
    URL, sha256, size, md5, archive and checksum header)."""
    text = json.dumps(dataclasses.asdict(spec), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def test_the_declared_datasets_are_those_of_the_former_catalog() -> None:
    declared = {name: _digest(spec) for name, spec in declared_datasets(PAPERS).items()}
    changed = sorted(n for n in FORMER_CATALOG.keys() | declared.keys()
                     if FORMER_CATALOG.get(n) != declared.get(n))  # fmt: skip
    assert not changed, f"datasets that differ from the former catalog: {changed}"


def test_declared_entries_are_complete() -> None:
    for name, spec in declared_datasets(PAPERS).items():
        assert spec.files and spec.licence and spec.citation, name
        for item in spec.files:
            assert len(item.sha256) == 64 or len(item.md5) == 32 or item.sha256_header, item
            assert item.size is None or item.size > 0, item
            assert item.url or item.archive or item.sha256, item  # fetchable, or a rebuilt copy
            if item.archive:
                assert spec.file(item.archive).url, item
            assert not item.path.startswith("/"), item


def test_each_paper_declares_its_datasets_and_registers_them_in_its_own_folder() -> None:
    shared = {spec.name for spec in shared_specs()}
    for name, info in discover_papers(PAPERS).items():
        found = read_datasets_file(info.folder / DATASETS_FILE)
        assert found.specs or found.shared, f"{name} declares no dataset"
        assert set(found.shared) <= shared, name
        assert register_folder_datasets(info.folder) == found.specs
        assert all(get_dataset(spec.name) == spec for spec in found.specs)


def test_a_copied_folder_registers_its_copy(tmp_path: Path) -> None:
    """A fork carries its datasets: registering from the copy gives the same specs."""
    fork = tmp_path / "fork"
    fork.mkdir()
    shutil.copy2(PAPERS / "ncl" / DATASETS_FILE, fork / DATASETS_FILE)
    assert register_folder_datasets(fork) == register_folder_datasets(PAPERS / "ncl")


def _write(tmp_path: Path, text: str) -> Path:
    (tmp_path / DATASETS_FILE).write_text(text, encoding="utf-8")
    return tmp_path


GOOD = """
[[datasets]]
name = "toy"
licence = "test"
citation = "generated"

[[datasets.files]]
path = "toy/a.txt"
sha256 = "%s"
size = 3
""" % ("0" * 64)


def test_a_valid_file_is_read_into_specs(tmp_path: Path) -> None:
    found = read_datasets_file(_write(tmp_path, GOOD) / DATASETS_FILE)
    assert found.specs[0].name == "toy" and found.specs[0].files[0].size == 3
    assert found.specs[0].files[0].url == "" and found.shared == ()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            GOOD.replace("size = 3", "sise = 3"),
            r"datasets\[0\] \(toy\): files\[0\]: unknown key 'sise'",
        ),
        (GOOD.replace("size = 3", 'size = "3"'), r"files\[0\]: size must be an integer, got str"),
        (GOOD.replace("size = 3", "size = true"), r"size must be an integer, got bool"),
        (GOOD.replace('licence = "test"\n', ""), r"datasets\[0\]: missing licence"),
        (GOOD.replace('path = "toy/a.txt"\n', ""), r"files\[0\]: missing path"),
        ('shared = "wiki1m"\n' + GOOD, r"shared must be a list, got str"),
        ("shared = [1]\n" + GOOD, r"shared: 1 is not a string"),
        (GOOD + GOOD, r"dataset 'toy' is declared more than once"),
        ("[[datasets]\n", r"is not valid TOML"),
        ("other = 1\n", r"unknown key 'other' \(valid keys: shared, datasets\)"),
    ],
)
def test_a_bad_file_is_a_one_line_error_naming_the_place(
    tmp_path: Path, text: str, message: str
) -> None:
    with pytest.raises(DataError, match=message) as raised:
        read_datasets_file(_write(tmp_path, text) / DATASETS_FILE)
    assert "\n" not in str(raised.value)


def test_a_shared_reference_must_name_a_shared_dataset(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="shared dataset 'wiki2m' is not in"):
        register_folder_datasets(_write(tmp_path, 'shared = ["wiki2m"]\n'))


def test_a_shared_dataset_is_not_declared_again_in_a_folder(tmp_path: Path) -> None:
    again = GOOD.replace('name = "toy"', 'name = "fashion-mnist"')
    with pytest.raises(DataError, match=r"declared in .* already; list it under shared"):
        register_folder_datasets(_write(tmp_path, again))


def test_two_folders_cannot_declare_one_name_differently(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    register_folder_datasets(_write(tmp_path / "a", GOOD.replace("toy", "toy-twice")))
    other = GOOD.replace("toy", "toy-twice").replace("size = 3", "size = 4")
    with pytest.raises(DataError, match="'toy-twice' differs from the one registered already"):
        register_folder_datasets(_write(tmp_path / "b", other))

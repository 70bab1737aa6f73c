from __future__ import annotations

from pathlib import Path

import pytest

from common.cli import parse_reproduce_args
from common.scaffold import fork_paper
from tests.toy_paper import make_toy_paper


def test_unknown_paper_is_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make_toy_paper(tmp_path)
    with pytest.raises(SystemExit) as exc:
        parse_reproduce_args(["nosuchpaper"], tmp_path / "papers")
    assert exc.value.code == 2
    assert capsys.readouterr().err == "error: unknown paper 'nosuchpaper'; valid papers: toy\n"


def test_defaults(tmp_path: Path) -> None:
    make_toy_paper(tmp_path)
    info, args = parse_reproduce_args(["toy"], tmp_path / "papers")
    assert info.environment == "base"
    assert (args.dataset, args.scale, args.seeds, args.variants) == (
        "tiny", "reduced", 1, ("plain", "other")
    )  # fmt: skip


def test_fork_renames_module_paths(tmp_path: Path) -> None:
    entry = make_toy_paper(tmp_path)
    (entry.folder / "__main__.py").write_text("from papers.toy.train import run\n")
    target = fork_paper("myidea", "toy", tmp_path / "papers")
    assert (target / "__main__.py").read_text() == "from papers.myidea.train import run\n"
    assert 'title = "myidea: fork of toy (Toy paper)"' in (target / "paper.toml").read_text()
    with pytest.raises(SystemExit):
        fork_paper("myidea", "toy", tmp_path / "papers")  # never overwrite a folder
    with pytest.raises(SystemExit):
        fork_paper("Bad-Name", "toy", tmp_path / "papers")


def test_real_papers_declare_valid_metadata() -> None:
    from common.cli import discover_papers

    root = Path(__file__).resolve().parents[1]
    for name, info in discover_papers(root / "papers").items():
        assert (root / "environments" / f"{info.environment}.txt").is_file(), name
        assert info.default_dataset in info.datasets, name
        for scale in ("full", "reduced", "smoke"):
            assert (info.folder / "configs" / f"{scale}.yaml").is_file(), (name, scale)
        assert (info.folder / "README.md").is_file() and (info.folder / "test_smoke.py").is_file()

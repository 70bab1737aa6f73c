"""The stamp that decides whether nox reinstalls an environment's virtualenv."""

from __future__ import annotations

from pathlib import Path

from common.cli import discover_papers, repo_root
from common.venvs import (
    included_files,
    installed_digest,
    needs_install,
    requirements_digest,
    write_stamp,
)


def _files(tmp_path: Path) -> tuple[Path, Path, Path]:
    envs = tmp_path / "environments"
    envs.mkdir()
    (envs / "base.txt").write_text("# shared\ntorch==2.13.0\n")
    (envs / "seqrec.txt").write_text("-r base.txt  # the shared pins\nscipy==1.17.1\n")
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text('[project]\nname = "x"\n')
    return envs / "seqrec.txt", envs / "base.txt", pyproject


def test_included_files_follow_r_lines_once(tmp_path: Path) -> None:
    seqrec, base, _ = _files(tmp_path)
    base.write_text("--requirement=seqrec.txt\ntorch==2.13.0\n")  # a cycle ends
    assert included_files(seqrec) == [seqrec.resolve(), base.resolve()]


def test_a_fresh_venv_is_installed_and_then_reused(tmp_path: Path) -> None:
    seqrec, _, pyproject = _files(tmp_path)
    venv = tmp_path / "venv"
    venv.mkdir()
    digest = requirements_digest(seqrec, [pyproject])
    assert installed_digest(venv) is None and needs_install(venv, digest)
    write_stamp(venv, digest)
    assert installed_digest(venv) == digest
    assert not needs_install(venv, requirements_digest(seqrec, [pyproject]))


def test_a_changed_pin_an_included_file_or_pyproject_reinstalls(tmp_path: Path) -> None:
    seqrec, base, pyproject = _files(tmp_path)
    venv = tmp_path / "venv"
    venv.mkdir()
    write_stamp(venv, requirements_digest(seqrec, [pyproject]))
    for path, text in ((base, "torch==2.14.0\n"), (seqrec, "-r base.txt\n"),
                       (pyproject, "[project]\nname = 'y'\n")):  # fmt: skip
        before = requirements_digest(seqrec, [pyproject])
        path.write_text(text)
        after = requirements_digest(seqrec, [pyproject])
        assert after != before and needs_install(venv, after)
        write_stamp(venv, after)
        assert not needs_install(venv, after)


def test_every_paper_environment_has_a_digest() -> None:
    root = repo_root()
    for info in discover_papers().values():
        requirements = root / "environments" / f"{info.environment}.txt"
        assert root / "environments" / "base.txt" in included_files(requirements)
        assert len(requirements_digest(requirements, [root / "pyproject.toml"])) == 64

"""``nox -s new``, end to end: a fork of every paper passes its own tests, and its records say
that the code they ran was not committed."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from common.cli import discover_papers
from common.records import git_state
from common.scaffold import fork_paper

ROOT = Path(__file__).resolve().parents[1]
IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache")


def copy_repository(target: Path, papers: list[str]) -> Path:
    """What a paper's tests need: ``common``, ``environments``, pyproject and the papers."""
    for name in ("common", "environments"):
        shutil.copytree(ROOT / name, target / name, ignore=IGNORE)
    shutil.copy2(ROOT / "pyproject.toml", target / "pyproject.toml")
    (target / "tests").mkdir()  # the shared test support that paper tests import
    shutil.copy2(ROOT / "tests" / "__init__.py", target / "tests" / "__init__.py")
    shutil.copytree(ROOT / "tests" / "support", target / "tests" / "support", ignore=IGNORE)
    (target / "papers").mkdir()
    shutil.copy2(ROOT / "papers" / "__init__.py", target / "papers" / "__init__.py")
    for paper in papers:
        shutil.copytree(ROOT / "papers" / paper, target / "papers" / paper, ignore=IGNORE)
    return target


def fork_all(repo: Path) -> dict[str, str]:
    """Fork every paper of ``repo`` under a name unrelated to it, then delete the originals
    (so that nothing in a fork can still reach its source). Returns fork -> source."""
    sources = sorted(discover_papers(repo / "papers"))
    forks = {f"idea{i}": source for i, source in enumerate(sources)}
    for fork, source in forks.items():
        fork_paper(fork, source, repo / "papers")
    for source in sources:
        shutil.rmtree(repo / "papers" / source)
    return forks


def _pytest(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLREPRO_")}
    env["PYTHONPATH"] = str(repo)  # the copy's common and papers, not this checkout's
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args]
    return subprocess.run(command, cwd=repo, env=env, capture_output=True, text=True)


@pytest.mark.slow
def test_a_fork_of_every_paper_passes_its_own_tests(tmp_path: Path) -> None:
    """Each paper is forked in a copy of the repository whose original folders are then deleted,
    and the forks' tests run there (about 100 s on 2 busy cores: the smoke runs on tiny data).

    Left out: the ``distributed`` tests (SimCSE under torchrun, 2 processes, ~40 s), which run
    in the repository's own suite. The copy has no shared data beside it, so tests that need
    the real data skip, as on a machine without it.
    """
    repo = copy_repository(tmp_path / "repo", sorted(discover_papers(ROOT / "papers")))
    forks = fork_all(repo)
    assert sorted(p.name for p in (repo / "papers").iterdir() if p.is_dir()) == sorted(forks)
    done = _pytest(repo, "-m", "not distributed", "papers")
    tail = "\n".join(done.stdout.splitlines()[-40:])
    assert done.returncode == 0, f"forks {forks}:\n{tail}\n{done.stderr[-2000:]}"
    assert " passed" in tail


def _git(repo: Path, *args: str) -> None:
    identity = ["-c", "user.name=t", "-c", "user.email=t@example.org"]
    subprocess.run(["git", *identity, *args], cwd=repo, check=True, capture_output=True)


def test_a_forked_folder_makes_its_runs_dirty(tmp_path: Path) -> None:
    """The fork is untracked: the commit a record names does not hold the code it ran."""
    repo = tmp_path / "repo"
    (repo / "papers" / "src").mkdir(parents=True)
    (repo / "common").mkdir()
    (repo / "papers" / "src" / "paper.toml").write_text('environment = "base"\n')
    (repo / "common" / "x.py").write_text("")
    (repo / ".gitignore").write_text("*.log\n")
    _git(repo, "init", "-q")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "start")
    watched = ("papers/src", "common", "environments")
    assert not git_state(repo, watched).dirty
    (repo / "papers" / "src" / "train.log").write_text("ignored by git\n")
    (repo / "notes.txt").write_text("untracked, but outside what a run depends on\n")
    assert not git_state(repo, watched).dirty
    shutil.copytree(repo / "papers" / "src", repo / "papers" / "fork")
    assert git_state(repo, ("papers/fork", "common", "environments")).dirty
    assert not git_state(repo, watched).dirty
    (repo / "common" / "new.py").write_text("")
    assert git_state(repo, watched).dirty

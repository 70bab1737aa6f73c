"""Sessions: tests, smoke(<paper>), equivalence, reproduce, results, lint, new.

nox -s tests                               # common's unit tests + every paper's smoke test
nox -s "smoke(mclrec)"                     # one paper, in its own environment only
nox -s reproduce -- mclrec --dataset beauty --scale reduced --seeds 3 --data-root DIR
nox -s results                             # regenerate results/README.md and the plots
nox -s equivalence                         # NCL against RecBole 1.2.1 (optional environment)
nox -s lint                                # ruff, and mypy (strict on common)
nox -s new -- myidea --from mclrec         # fork a paper folder under a new name
"""

from __future__ import annotations

import sys
from pathlib import Path

import nox

ROOT = Path(__file__).parent
sys.path.insert(0, str(ROOT))

from common.cli import discover_papers, fail, parse_reproduce_args  # noqa: E402

nox.options.sessions = ["tests"]
nox.options.reuse_venv = "yes"
PAPERS = discover_papers(ROOT / "papers")
PYTHON = "3.11"


def _install(session: nox.Session, environment: str) -> None:
    session.install("-r", f"environments/{environment}.txt")
    session.install("--no-deps", "-e", ".")


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """The README's test command: common's unit tests plus every paper's smoke test."""
    _install(session, "dev")
    session.run("pytest", "-q", "tests", "papers", *session.posargs)


@nox.session(python=PYTHON)
@nox.parametrize("paper", list(PAPERS), ids=list(PAPERS))
def smoke(session: nox.Session, paper: str) -> None:
    """One paper's smoke test, in the environment that paper declares and nothing else."""
    _install(session, PAPERS[paper].environment)
    session.run("pytest", "-q", f"papers/{paper}", *session.posargs)


@nox.session(python=PYTHON)
def equivalence(session: nox.Session) -> None:
    """Our NCL against RecBole 1.2.1's, in the optional environments/recbole.txt."""
    _install(session, "recbole")
    session.install("--no-deps", "setuptools==69.5.1")  # RecBole needs < 70; torch's pin says no
    env = {"TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1"}
    session.run("pytest", "-q", "papers/ncl/test_official.py", *session.posargs, env=env)


@nox.session(python=PYTHON)
def reproduce(session: nox.Session) -> None:
    """nox -s reproduce -- <paper> [--dataset D] [--scale S] [--seeds N] [--data-root P] ..."""
    info, _ = parse_reproduce_args(session.posargs, ROOT / "papers")  # exits 2 on bad input
    _install(session, info.environment)
    session.run("python", "-m", f"papers.{info.name}", *session.posargs[1:])


@nox.session(python=PYTHON)
def results(session: nox.Session) -> None:
    """Regenerate results/README.md, one PNG per paper, and the README's paper table."""
    _install(session, "base")
    session.run("python", "-m", "common.report")


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    _install(session, "dev")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("mypy", "common")


@nox.session(python=False)
def new(session: nox.Session) -> None:
    """nox -s new -- <name> --from <paper>: copy a paper folder under a new name."""
    args = list(session.posargs)
    if len(args) != 3 or args[1] != "--from":
        fail("usage: nox -s new -- <name> --from <paper>")
    session.run(sys.executable, "-m", "common.scaffold", args[0], args[2], external=True)

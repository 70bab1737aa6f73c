"""Sessions: tests, smoke(<paper>), equivalence, reproduce, results, lint, new.

nox -s tests                               # common's unit tests + every paper's smoke test
nox -s "smoke(mclrec)"                     # one paper, in its own environment only
nox -s reproduce -- mclrec --dataset beauty --scale reduced --seeds 3 --data-root DIR
                                           # (runs in the paper's environment: reproduce_in(<env>))
nox -s results                             # regenerate results/README.md and the plots
nox -s equivalence                         # NCL against RecBole 1.2.1 (optional environment)
nox -s bench -- ncl --data-root DIR        # ours vs the official code, recorded (not in CI)
nox -s lint                                # ruff, and mypy (strict) on common, papers, tests
nox -s new -- myidea --from mclrec         # fork a paper folder under a new name
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import nox

ROOT = Path(__file__).parent
sys.path.insert(0, str(ROOT))

from common.cli import (  # noqa: E402
    USAGE_EXIT,
    discover_papers,
    fail,
    has_bench,
    official_checkout,
    parse_bench_args,
    parse_reproduce_args,
    read_bench_setup,
)
from common.venvs import installed_digest, needs_install, requirements_digest, write_stamp  # noqa: E402

nox.options.sessions = ["tests"]
nox.options.reuse_venv = "yes"
PAPERS = discover_papers(ROOT / "papers")
PYTHON = "3.11"
ENVIRONMENTS = sorted({info.environment for info in PAPERS.values()})
BENCHED = [info for info in PAPERS.values() if has_bench(info)]
OFFICIAL_ENVIRONMENTS = sorted({read_bench_setup(info).official_environment for info in BENCHED})
# installed without dependencies after the requirements (RecBole needs setuptools < 70, which
# torch 2.13's metadata forbids)
NO_DEPS_AFTER = {"recbole": ["setuptools==69.5.1"]}
OFFICIAL_SCRATCH = ROOT.parent / "scratch" / "official"  # official checkouts: outside the repo
INTERRUPTED = 130  # Ctrl-C
LAUNCHER = "nox -s reproduce -- {paper}"  # how a paper's own resume hint names this command


def _digest(environment: str) -> str:
    return requirements_digest(
        ROOT / "environments" / f"{environment}.txt", [ROOT / "pyproject.toml"]
    )


def _install(session: nox.Session, environment: str) -> None:
    """Install environments/<environment>.txt and the repo, unless the venv's stamp says the
    same requirements are installed already (then nothing is reinstalled)."""
    venv, digest = Path(session.virtualenv.location), _digest(environment)
    if not needs_install(venv, digest):
        session.log(f"environment {environment!r} is up to date: nothing to install")
        return
    session.install("-r", f"environments/{environment}.txt")
    for pin in NO_DEPS_AFTER.get(environment, []):
        session.install("--no-deps", pin)
    session.install("--no-deps", "-e", ".")
    write_stamp(venv, digest)


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
    env = {"TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1"}
    session.run("pytest", "-q", "papers/ncl/test_official.py", *session.posargs, env=env)


@nox.session(python=False)
def reproduce(session: nox.Session) -> None:
    """nox -s reproduce -- <paper> [--dataset D] [--scale S] [--seeds N] [--data-root P] ...

    Checks the command line here (exit 2, nothing installed), then runs the paper in the
    virtualenv of the environment its paper.toml declares: `reproduce_in(<environment>)`.
    """
    info, _ = parse_reproduce_args(session.posargs, ROOT / "papers")  # exits 2 on bad input
    session.notify(f"reproduce_in({info.environment})", session.posargs)


@nox.session(python=PYTHON)
@nox.parametrize("environment", ENVIRONMENTS, ids=ENVIRONMENTS)
def reproduce_in(session: nox.Session, environment: str) -> None:
    """Run a paper in one environment's virtualenv (reused; reinstalled only when changed)."""
    info, _ = parse_reproduce_args(session.posargs, ROOT / "papers")
    if info.environment != environment:
        fail(f"{info.name} runs in environment {info.environment!r}, not {environment!r}")
    command = ["python", "-m", f"papers.{info.name}", *session.posargs[1:]]
    venv = Path(session.virtualenv.location)
    if installed_digest(venv) is not None and needs_install(venv, _digest(environment)):
        # requirements changed: check configs and folders in the old install before reinstalling
        # (any other failure there, such as a package it lacks, is for the new install to fix)
        status = _call(session, [*command, "--dry-run"])
        if status in (USAGE_EXIT, INTERRUPTED):
            raise SystemExit(status)
    _install(session, environment)
    status = _call(session, command)
    if status:
        raise SystemExit(status)  # 2 for bad input, 130 for Ctrl-C: the paper's own status


def _call(session: nox.Session, command: list[str]) -> int:
    """Run ``command`` in the session's venv and return its exit status (nox's own run would
    turn every failure into 1). Ctrl-C reaches the paper too: it prints how to resume, exits."""
    session.log(shlex.join(command))
    bin_dir = str(session.bin)
    env = dict(os.environ, VIRTUAL_ENV=str(session.virtualenv.location), CLREPRO_LAUNCHER=LAUNCHER)
    env["PATH"] = bin_dir + os.pathsep + env.get("PATH", "")
    executable = os.path.join(bin_dir, command[0])
    with subprocess.Popen([executable, *command[1:]], cwd=ROOT, env=env) as proc:
        while True:
            try:
                return proc.wait()
            except KeyboardInterrupt:
                continue  # wait for the paper's one-line message and exit status 130


def _bench_files(paper: str) -> tuple[Path, Path]:
    folder = ROOT / "work" / "bench" / paper
    folder.mkdir(parents=True, exist_ok=True)
    return folder / "ours.json", folder / "official.json"


@nox.session(python=False)
def bench(session: nox.Session) -> None:
    """nox -s bench -- <paper> [--threads N] [--official DIR] [harness options, e.g. --data-root]

    Times the official code (its own environment, ``papers/<paper>/benchmark_official.py``), then
    ours (the paper's environment, ``python -m papers.<paper>.benchmark``) on the same work and
    threads, writes both as records under ``results/bench/<paper>/``, prints the table (min and
    median per side, official ÷ ours) and regenerates the READMEs. Not part of CI.
    """
    setup, args = parse_bench_args(session.posargs, ROOT / "papers")  # exits 2 on bad input
    official_checkout(setup, args.official_dir, OFFICIAL_SCRATCH)  # exits 2 when absent
    for stale in _bench_files(setup.paper):
        stale.unlink(missing_ok=True)
    session.notify(f"bench_official({setup.official_environment})", session.posargs)
    session.notify(f"bench_ours({setup.environment})", session.posargs)


def _threads_env(threads: int) -> dict[str, str]:
    return {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads),
            "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1"}  # fmt: skip


@nox.session(python=PYTHON)
@nox.parametrize("environment", OFFICIAL_ENVIRONMENTS, ids=OFFICIAL_ENVIRONMENTS)
def bench_official(session: nox.Session, environment: str) -> None:
    """The official side of ``bench``: its harness, run by path, imports nothing of ours."""
    setup, args = parse_bench_args(session.posargs, ROOT / "papers")
    checkout = official_checkout(setup, args.official_dir, OFFICIAL_SCRATCH)
    _install(session, environment)
    _, out = _bench_files(setup.paper)
    command = ["python", f"papers/{setup.paper}/benchmark_official.py", "--json", str(out),
               "--threads", str(args.threads), *args.harness_args]  # fmt: skip
    if checkout is not None:
        command += ["--official", str(checkout)]
    session.run(*command, env=_threads_env(args.threads))


@nox.session(python=PYTHON)
@nox.parametrize("environment", ENVIRONMENTS, ids=ENVIRONMENTS)
def bench_ours(session: nox.Session, environment: str) -> None:
    """Our side of ``bench``, then both measurement files recorded and the tables regenerated."""
    setup, args = parse_bench_args(session.posargs, ROOT / "papers")
    _install(session, environment)
    ours, official = _bench_files(setup.paper)
    threads = ["--threads", str(args.threads)]
    session.run("python", "-m", f"papers.{setup.paper}.benchmark", "--json", str(ours),
                *threads, *args.harness_args, env=_threads_env(args.threads))  # fmt: skip
    record = ["python", "-m", "common.bench", "record", setup.paper]
    session.run(*record, str(ours), *threads)
    if official.is_file():
        session.run(*record, str(official), *threads, "--official", setup.official)
    session.run("python", "-m", "common.bench", "table", setup.paper)
    session.run("python", "-m", "common.report")


@nox.session(python=PYTHON)
def results(session: nox.Session) -> None:
    """Regenerate results/README.md, one PNG per paper, and the README's paper table."""
    _install(session, "base")
    session.run("python", "-m", "common.report")


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff (lint and format), and mypy, strict, on common, every paper and the tests."""
    _install(session, "dev")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("mypy", "common", "papers", "tests")


@nox.session(python=False)
def new(session: nox.Session) -> None:
    """nox -s new -- <name> --from <paper>: copy a paper folder under a new name."""
    args = list(session.posargs)
    if len(args) != 3 or args[1] != "--from":
        fail("usage: nox -s new -- <name> --from <paper>")
    session.run(sys.executable, "-m", "common.scaffold", args[0], args[2], external=True)

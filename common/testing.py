"""Test helpers: where the shared real data and official artifacts are (for tests that use them
when present), torchrun launches, and the resolved smoke recipes that smoke budgets count."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

SHARED_ENV = "CLREPRO_SHARED"


def shared_dir() -> Path:
    """``$CLREPRO_SHARED``, else ``../shared`` beside the repository."""
    env = os.environ.get(SHARED_ENV)
    return Path(env) if env else Path(__file__).resolve().parents[2] / "shared"


def shared_datasets() -> Path | None:
    """The folder of real datasets (a valid ``--data-root``), or None where it is absent."""
    path = shared_dir() / "datasets"
    return path if path.is_dir() else None


def shared_artifacts() -> Path | None:
    """The folder of the authors' official artifacts, or None where it is absent."""
    path = shared_dir() / "artifacts"
    return path if path.is_dir() else None


def run_torchrun(script: Path, args: list[str], cwd: Path, timeout: float = 180) -> str:
    """Run ``script`` under ``torchrun`` with 2 CPU processes; return stderr, fail on error.

    The launcher and its workers share a process group, killed as a whole on timeout.
    """
    with socket.socket() as sock:  # a free port for the rendezvous
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    env = dict(os.environ, PYTHONPATH=str(cwd), OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
           "--master_port", str(port), str(script), *args]  # fmt: skip
    proc = subprocess.Popen(
        cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )  # fmt: skip
    try:
        _, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        raise
    if proc.returncode != 0:
        log = script.with_suffix(".stderr.txt")
        log.write_text(stderr)
        errors = [line for line in stderr.splitlines() if "Error" in line][:8]
        raise AssertionError(
            f"torchrun exited {proc.returncode} (whole stderr: {log}); first errors:\n"
            + "\n".join(errors)
        )
    return stderr


def smoke_configs(entry: Any) -> dict[tuple[str, str], Any]:
    """The resolved ``smoke`` config of every (dataset, variant) a paper declares.

    ``entry`` is the paper's :class:`common.runner.PaperEntry`; a smoke budget test counts the
    work (samples, steps, pairs) these configs ask for, without running them.
    """
    from common.cli import read_paper_info
    from common.runner import resolve_config

    info = read_paper_info(entry.folder)
    return {
        (dataset, variant): resolve_config(entry, "smoke", dataset, variant, ())
        for dataset in info.datasets
        for variant in info.variants
    }


def over_budget(work: Mapping[str, int], budget: Mapping[str, int]) -> dict[str, str]:
    """The counts of ``work`` above their ``budget`` (every budget key must be counted)."""
    missing = set(budget) - set(work)
    if missing:
        raise KeyError(f"work does not count {sorted(missing)}")
    return {k: f"{work[k]:,} > {limit:,}" for k, limit in budget.items() if work[k] > limit}


Count = Callable[[str, str, Any], Mapping[str, int]]
"""(dataset, variant, resolved config) -> the work one run asks for, by name."""


def smoke_over_budget(entry: Any, count: Count, budget: Mapping[str, int]) -> dict[str, Any]:
    """Per dataset, what ``--scale smoke`` (every variant, one seed) asks above ``budget``.

    The work of a command is the sum over its variants of ``count``; an empty answer means
    every dataset's smoke command fits.
    """
    totals: dict[str, dict[str, int]] = {}
    for (dataset, variant), config in smoke_configs(entry).items():
        total = totals.setdefault(dataset, {})
        for key, value in count(dataset, variant, config).items():
            total[key] = total.get(key, 0) + value
    over = {dataset: over_budget(work, budget) for dataset, work in totals.items()}
    return {dataset: items for dataset, items in over.items() if items}

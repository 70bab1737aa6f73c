"""Where the shared real data and official artifacts are, for tests that use them when present."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

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

"""Running a script under ``torchrun`` with 2 CPU processes, for tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.support.distributed import free_port


def run_torchrun(script: Path, args: list[str], cwd: Path, timeout: float = 180) -> str:
    """Run ``script`` under ``torchrun`` with 2 CPU processes; return stderr, fail on error.

    The launcher and its workers share a process group, killed as a whole on timeout.
    """
    port = free_port()  # for the rendezvous
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

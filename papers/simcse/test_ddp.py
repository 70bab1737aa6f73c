"""unsup-SimCSE under torchrun: 2 CPU processes (gloo), negatives gathered, one record."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from common.eval.testdata import WORDS, write_tiny_senteval
from common.text import save_tiny_bert

from .test_smoke import write_tiny_wiki

REPO = Path(__file__).resolve().parents[2]
LAUNCHER = """
import sys
from pathlib import Path
from common.data import spec_for_local_files, temporary_dataset
from common.runner import main
from papers.simcse.__main__ import ENTRY
data = Path(sys.argv[1])
sts = [l for l in (data / "sts.txt").read_text().splitlines() if l]
with temporary_dataset(spec_for_local_files("senteval-sts", data, sts)), temporary_dataset(
    spec_for_local_files("wiki1m-prefix", data, ["wiki1m/wiki1m_for_simcse.prefix.txt"])
):
    raise SystemExit(main(ENTRY, sys.argv[2:]))
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.distributed
def test_two_processes_gather_negatives(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data).mkdir()
    sts = write_tiny_senteval(data)
    (data / "sts.txt").write_text("\n".join(sts))
    write_tiny_wiki(data)
    model = save_tiny_bert(tmp_path / "bert", WORDS)
    script = tmp_path / "launch.py"
    script.write_text(LAUNCHER)
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
        "--master_port", str(_free_port()), str(script), str(data), "--scale", "smoke",
        "--variants", "unsup-simcse", "--device", "cpu", "--data-root", str(data),
        "--results-dir", str(tmp_path / "r"), "--work-dir", str(tmp_path / "w"),
        f"model_name_or_path={model}",
    ]  # fmt: skip
    proc = subprocess.Popen(
        cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )  # fmt: skip
    try:
        _, stderr = proc.communicate(timeout=180)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        raise
    assert proc.returncode == 0, stderr[-3000:]
    records = list((tmp_path / "r" / "runs" / "simcse" / "wiki1m").glob("*.json"))
    assert len(records) == 1
    record = json.loads(records[0].read_text())
    assert set(record["metrics"]["test"]) >= {"STS12", "Avg"}
    logs = list((tmp_path / "w").rglob("train.rank1.log"))
    assert logs, "rank 1 should have trained too"

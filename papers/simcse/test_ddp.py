"""unsup-SimCSE under torchrun: 2 CPU processes (gloo), negatives gathered, one record."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.sentences import WORDS, save_tiny_bert, write_tiny_senteval, write_tiny_wiki
from tests.support.torchrun import run_torchrun

REPO = Path(__file__).resolve().parents[2]
PAPER = Path(__file__).parent.name  # records are filed under it; a fork runs its own entry
LAUNCHER = f"""
import sys
from pathlib import Path
from tests.support.datasets import spec_for_local_files, temporary_dataset
from common.runner import main
from {__package__}.__main__ import ENTRY
data = Path(sys.argv[1])
sts = [l for l in (data / "sts.txt").read_text().splitlines() if l]
with temporary_dataset(spec_for_local_files("senteval-sts", data, sts)), temporary_dataset(
    spec_for_local_files("wiki1m-prefix", data, ["wiki1m/wiki1m_for_simcse.prefix.txt"])
):
    raise SystemExit(main(ENTRY, sys.argv[2:]))
"""


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
    args = [str(data), "--scale", "smoke", "--variants", "unsup-simcse", "--device", "cpu",
            "--data-root", str(data), "--results-dir", str(tmp_path / "r"),
            "--work-dir", str(tmp_path / "w"), f"model_name_or_path={model}"]  # fmt: skip
    run_torchrun(script, args, REPO)
    records = list((tmp_path / "r" / "runs" / PAPER / "wiki1m").glob("*.json"))
    assert len(records) == 1
    record = json.loads(records[0].read_text())
    assert set(record["metrics"]["test"]) >= {"STS12", "Avg"}
    logs = list((tmp_path / "w").rglob("train.rank1.log"))
    assert logs, "rank 1 should have trained too"

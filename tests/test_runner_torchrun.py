"""The runner under torchrun (2 CPU processes, gloo): one record, one checkpoint, no races."""

from __future__ import annotations

from pathlib import Path

import pytest

from common.records import load_records
from tests.support.torchrun import run_torchrun

REPO = Path(__file__).resolve().parents[1]

LAUNCHER = """
import sys
from pathlib import Path
from common.runner import main
from tests.toy_paper import make_toy_paper, PaperEntry, ToyConfig, run
folder = Path(sys.argv[1]) / "papers" / "toy"
entry = PaperEntry(folder=folder, config_model=ToyConfig, run=run)
raise SystemExit(main(entry, sys.argv[2:]))
"""


@pytest.mark.distributed
def test_two_processes_write_one_record(tmp_path: Path) -> None:
    from tests.toy_paper import make_toy_paper

    make_toy_paper(tmp_path)
    script = tmp_path / "launch.py"
    script.write_text(LAUNCHER)
    args = [str(tmp_path), "--scale", "full", "--variants", "plain", "--device", "cpu",
            "--results-dir", str(tmp_path / "r"), "--work-dir", str(tmp_path / "w")]  # fmt: skip
    run_torchrun(script, args, REPO, timeout=120)
    (record,) = load_records(tmp_path / "r", "toy")
    run_dirs = list((tmp_path / "w" / "toy" / "tiny").iterdir())
    assert len(run_dirs) == 1 and (run_dirs[0] / "checkpoint.pt").is_file()
    assert (run_dirs[0] / "train.rank1.log").is_file()
    assert record.variant == "plain"

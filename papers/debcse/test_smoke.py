"""The DebCSE entry point stops with a clear one-line error instead of inventing a method."""

from __future__ import annotations

from pathlib import Path

import pytest

from common.runner import main

from .__main__ import ENTRY
from .train import MESSAGE


def test_entry_point_says_not_reproducible(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "data").mkdir()
    status = main(
        ENTRY,
        [
            "--scale",
            "smoke",
            "--data-root",
            str(tmp_path / "data"),
            "--results-dir",
            str(tmp_path / "results"),
            "--work-dir",
            str(tmp_path / "work"),
        ],
    )
    assert status == 2
    err = capsys.readouterr().err
    assert f"error: {MESSAGE}" in err
    assert "not reproducible here" in err
    assert not list((tmp_path / "results").rglob("*.json"))

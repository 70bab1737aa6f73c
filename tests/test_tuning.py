"""common.tuning: the choice is made on validation only, ties are broken the documented way,
tables show what is recorded, and the command line rejects what the search sets itself."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pytest

from common import tuning
from common.records import RunRecord
from common.runner import PaperEntry

ENTRY = PaperEntry(folder=Path("toy"), config_model=Any, run=lambda c, x: None)  # type: ignore[arg-type,return-value]


def _search(*axes: tuning.Axis) -> tuning.GridSearch:
    return tuning.GridSearch(paper="toy", entry=ENTRY, variant="v", axes=axes,
                             metric="Recall@20", title="toy search", tag="v")  # fmt: skip


class _Metrics:
    def __init__(self, valid: float, test: float) -> None:
        self.validation = {"Recall@20": valid}
        self.test = {"Recall@20": test}


class _Record:
    def __init__(self, valid: float, test: float = 0.0) -> None:
        self.metrics = _Metrics(valid, test)


def _points(values: dict[tuple[float, ...], tuple[float, float]]) -> dict[Any, RunRecord]:
    return {k: _Record(*v) for k, v in values.items()}  # type: ignore[misc]


def test_choice_is_the_best_validation_never_test() -> None:
    points = _points({(1.0,): (0.2, 0.9), (0.1,): (0.3, 0.1), (0.01,): (0.25, 0.5)})
    assert tuning.choose(points, "Recall@20") == (0.1,)


def test_ties_go_to_smaller_values_last_axis_first() -> None:
    points = _points({(0.1, 0.5): (0.3, 0), (0.5, 0.1): (0.3, 0), (0.1, 0.1): (0.2, 0)})
    assert tuning.choose(points, "Recall@20") == (0.5, 0.1)
    assert tuning.choose(_points({(1.0,): (0.3, 0), (0.01,): (0.3, 0)}), "Recall@20") == (0.01,)


def test_one_axis_table_marks_the_choice_and_the_missing_points() -> None:
    search = _search(tuning.Axis("baseline.reg_weight", "reg", "reg_weight", (1.0, 0.1)))
    points = _points({(0.1,): (0.1234, 0.0)})
    table = tuning.grid_table(search, points, [(1.0, 0.1)], (0.1,))
    assert table.splitlines() == ["| reg_weight | validation Recall@20 ×100 |", "|---|---|",
                                  "| 1 | — |", "| 0.1 | **12.34** |"]  # fmt: skip


def test_two_axis_table_has_rows_by_the_first_axis() -> None:
    search = _search(tuning.Axis("lam", "lam", "λ", ()), tuning.Axis("beta", "beta", "β", ()))
    points = _points({(0.1, 0.2): (0.05, 0.0), (0.3, 0.2): (0.07, 0.0)})
    table = tuning.grid_table(search, points, [(0.1, 0.3), (0.2, 0.4)], (0.3, 0.2))
    assert table.splitlines()[2:] == ["| 0.1 | 5.00 | — |", "| 0.3 | **7.00** | — |"]


def test_nested_keys_and_folders() -> None:
    assert tuning.config_value({"baseline": {"reg_weight": 0.5}}, "baseline.reg_weight") == 0.5
    search = _search(tuning.Axis("lam", "lam", "λ", (0.1,)))
    out = tuning.default_out(search, "baby", "full", ["epochs=3"])
    assert out.parts[-3:] == ("tuning", "toy", "baby-full-v-epochs=3")


@pytest.mark.parametrize("text", ["", "a,b", "0.1,-1", "nan", "inf"])
def test_bad_grid_values_are_rejected(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        tuning.weights(text)


def test_a_search_has_one_or_two_axes() -> None:
    axis = tuning.Axis("lam", "lam", "λ", (0.1,))
    with pytest.raises(ValueError, match="one or two"):
        _search(axis, axis, axis)


def test_overriding_a_searched_key_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    search = _search(tuning.Axis("baseline.reg_weight", "reg", "reg_weight", (0.1,)))
    with pytest.raises(SystemExit) as exit_info:
        tuning.main(search, ["--dataset", "d", "baseline.reg_weight=2"], "p", None)
    assert exit_info.value.code == 2
    assert "baseline.reg_weight is set by the search" in capsys.readouterr().err

"""Comparison verdicts, the generated table and plots, and the committed reported-number files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from common.report import (
    README_BEGIN,
    README_END,
    RESULTS_BEGIN,
    RESULTS_END,
    ReportedFile,
    compare,
    load_all_reported,
    render_results,
    verdict,
)
from common.runner import PaperEntry, main
from tests.toy_paper import make_toy_paper

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    ("reported", "mean", "std", "scale", "expected"),
    [
        (0.0500, 0.0509, 0.0, "full", "match"),  # 1.8% away, inside 2% relative
        (0.0500, 0.0511, 0.0, "full", "off"),  # 2.2% away, no spread to excuse it
        (0.0500, 0.0540, 0.0025, "full", "match"),  # 8% away but within 2 std (0.005)
        (0.0500, 0.0540, 0.0019, "full", "off"),  # 2 std = 0.0038 < 0.004
        (0.0500, 0.0100, 0.0, "reduced", "reduced"),  # reduced scale is never compared
        (None, 0.3, 0.0, "full", "no reported value"),
    ],
)
def test_verdict(
    reported: float | None, mean: float, std: float, scale: str, expected: str
) -> None:
    assert verdict(reported, mean, std, scale) == expected


def _reported() -> ReportedFile:
    return ReportedFile.model_validate(
        {
            "paper": "toy", "title": "Toy paper", "citation": "Nobody 2026", "units": "fraction",
            "entries": [
                {"method": "plain", "dataset": "tiny", "source": "Table 1, row plain",
                 "metrics": {"mse": 0.5, "never_run": 1.0}},
            ],
        }
    )  # fmt: skip


def _run(entry: PaperEntry, tmp_path: Path, *args: str) -> None:
    assert (
        main(
            entry, [*args, "--results-dir", str(tmp_path / "r"), "--work-dir", str(tmp_path / "w")]
        )
        == 0
    )


def test_compare_aggregates_seeds_and_lists_unrun_numbers(tmp_path: Path) -> None:
    entry = make_toy_paper(tmp_path)
    _run(entry, tmp_path, "--scale", "full", "--seeds", "3", "--variants", "plain")
    from common.records import load_records

    records = load_records(tmp_path / "r", "toy")
    rows = {(r.metric, r.verdict): r for r in compare("toy", records, _reported())}
    mse = next(r for (m, _), r in rows.items() if m == "mse")
    values = [rec.metrics.test["mse"] for rec in records]
    assert mse.n == 3 and mse.mean == pytest.approx(sum(values) / 3)
    assert mse.reported == 0.5 and mse.source == "Table 1, row plain"
    assert mse.mean is not None and mse.rel_diff == pytest.approx((mse.mean - 0.5) / 0.5)
    assert ("never_run", "not run") in rows


def test_smoke_runs_are_not_shown(tmp_path: Path) -> None:
    entry = make_toy_paper(tmp_path)
    _run(entry, tmp_path, "--scale", "smoke", "--variants", "plain")
    from common.records import load_records

    assert compare("toy", load_records(tmp_path / "r", "toy"), None) == []


def test_render_results_writes_table_plot_and_readme_block(tmp_path: Path) -> None:
    entry = make_toy_paper(tmp_path)
    results = tmp_path / "results"
    main(entry, ["--scale", "reduced", "--seeds", "2", "--results-dir", str(results),
                 "--work-dir", str(tmp_path / "w")])  # fmt: skip
    (results / "reported").mkdir()
    (results / "reported" / "toy.yaml").write_text(yaml.safe_dump(_reported().model_dump()))
    readme = tmp_path / "README.md"
    readme.write_text(f"# Top\n{README_BEGIN}\nold\n{README_END}\ntail\n")
    out = render_results(results, readme)
    text = out.read_text()
    assert "| plain | tiny | mse | 0.5000 (paper [1]) |" in text and "reduced" in text
    assert "[1] Table 1, row plain" in text
    assert (results / "plots" / "toy.png").stat().st_size > 1000
    top = readme.read_text()
    assert "old" not in top and "[toy](papers/toy/README.md)" in top and top.endswith("tail\n")


def test_render_results_fills_the_papers_own_readme_between_its_markers(tmp_path: Path) -> None:
    entry = make_toy_paper(tmp_path)
    results = tmp_path / "results"
    main(entry, ["--scale", "full", "--seeds", "2", "--variants", "plain", "--results-dir",
                 str(results), "--work-dir", str(tmp_path / "w")])  # fmt: skip
    papers = tmp_path / "papers"
    (papers / "toy").mkdir(parents=True, exist_ok=True)
    own = papers / "toy" / "README.md"
    typed = "| typed by hand | 123.456 |"
    own.write_text(f"# Toy\n\n{RESULTS_BEGIN}\n{typed}\n{RESULTS_END}\n\ntail\n")
    render_results(results, None, papers)
    text = own.read_text()
    from common.records import load_records

    mean = sum(r.metrics.test["mse"] for r in load_records(results, "toy")) / 2
    assert "123.456" not in text and f"{mean:.4f}" in text and "2 full, converged" in text
    assert text.startswith(f"# Toy\n\n{RESULTS_BEGIN}\n")
    assert text.endswith(f"{RESULTS_END}\n\ntail\n")


def test_committed_reported_files_match_schema() -> None:
    reported = load_all_reported(REPO / "results")
    for name, data in reported.items():
        assert data.paper == name, f"{name}.yaml declares paper {data.paper!r}"
        assert (REPO / "papers" / name / "paper.toml").is_file(), f"no paper folder for {name}"
        for entry in data.entries:
            assert entry.metrics, f"{name}: {entry.method}/{entry.dataset} has no metrics"
            if data.units == "fraction":
                assert all(0 <= v <= 1 for v in entry.metrics.values()), (name, entry.method)
            else:
                assert all(0 <= v <= 100 for v in entry.metrics.values()), (name, entry.method)


def test_committed_records_are_readable() -> None:
    from common.records import load_records

    for record in load_records(REPO / "results"):
        assert record.scale in {"full", "reduced"}, "smoke records do not belong in results/"


def test_group_by_config_field_splits_groups_and_matches_reported(tmp_path: Path) -> None:
    entry = make_toy_paper(tmp_path)
    for lr in ("0.1", "0.05"):
        _run(entry, tmp_path, "--scale", "full", "--variants", "plain", f"lr={lr}")
    from common.records import load_records

    reported = _reported().model_copy(update={"group_by": ["lr"]})
    reported.entries[0] = reported.entries[0].model_copy(update={"config": {"lr": 0.05}})
    rows = compare("toy", load_records(tmp_path / "r", "toy"), reported)
    mse = {r.method: r for r in rows if r.metric == "mse"}
    assert set(mse) == {"plain [lr=0.1]", "plain [lr=0.05]"}
    assert mse["plain [lr=0.05]"].reported == 0.5 and mse["plain [lr=0.1]"].reported is None


def test_truncated_runs_are_labelled_and_kept_apart(tmp_path: Path) -> None:
    """A real short run (2 of the recipe's 4 epochs) is recorded and shown as truncated."""
    entry = make_toy_paper(tmp_path)
    _run(entry, tmp_path, "--scale", "full", "--variants", "plain", "--seeds", "2")
    _run(entry, tmp_path, "--scale", "full", "--variants", "plain", "epochs=2")
    from common.records import load_records

    records = load_records(tmp_path / "r", "toy")
    assert sorted(r.training.stopped_by for r in records) == ["budget", "recipe-epochs",
                                                              "recipe-epochs"]  # fmt: skip
    rows = [r for r in compare("toy", records, _reported()) if r.metric == "mse"]
    by_verdict = {r.verdict: r.n for r in rows}
    assert by_verdict == {"off": 2, "truncated": 1} or by_verdict == {"match": 2, "truncated": 1}


def test_schema_v1_records_read_as_truncated_unless_full_or_scored(tmp_path: Path) -> None:
    from common.records import read_record

    entry = make_toy_paper(tmp_path)
    _run(entry, tmp_path, "--scale", "reduced", "--variants", "plain")
    (path,) = (tmp_path / "r" / "runs" / "toy" / "tiny").glob("*.json")
    raw = json.loads(path.read_text())
    del raw["training"]
    raw["schema_version"] = 1
    expected = {("reduced", "trained"): "budget", ("full", "trained"): "recipe",
                ("full", "official-checkpoint"): "not-trained"}  # fmt: skip
    for (scale, origin), reason in expected.items():
        path.write_text(json.dumps({**raw, "scale": scale, "origin": origin}))
        assert read_record(path).training.stopped_by == reason


def test_official_artifacts_are_references_for_the_trained_method(tmp_path: Path) -> None:
    from common.records import RunRecord

    def rec(variant: str, origin: str, value: float, seed: int) -> RunRecord:
        return RunRecord.model_validate({
            "paper": "toy", "variant": variant, "dataset": "tiny", "scale": "full",
            "origin": origin, "source": "authors@abc:embeds.pkl", "dataset_files": {},
            "config": {}, "seed": seed, "metrics": {"test": {"mse": value}},
            "selection_rule": "-", "training": {"stopped_by": "early-stopping"},
            "git": {"commit": "c", "dirty": False}, "packages": {},
            "hardware": {"device": "cpu", "device_name": "x", "cpu": "x", "cpu_count": 1,
                         "platform": "p", "python": "3", "torch_threads": 1},
            "wall_time_s": 1, "started_at": f"t{seed}", "ended_at": "t"})  # fmt: skip

    reported = _reported().model_copy(
        update={"entries": [], "artifact_references": {"plain-official": "plain"}}
    )
    records = [rec("plain-official", "official-embeddings", 0.50, 0)] + [
        rec("plain", "trained", v, i) for i, v in enumerate([0.50, 0.505, 0.495])
    ]
    rows = {(r.method, r.metric): r for r in compare("toy", records, reported)}
    trained = rows[("plain", "mse")]
    assert trained.kind == "official-artifact" and trained.verdict == "match"
    assert "authors@abc:embeds.pkl" in (trained.source or "")
    assert rows[("plain-official", "mse")].verdict == "reference"


def test_committed_claims_name_real_variants() -> None:
    from common.cli import discover_papers

    papers = discover_papers(REPO / "papers")
    for name, data in load_all_reported(REPO / "results").items():
        for c in data.claims:
            if c.test is None:
                continue
            for arm in (c.test.a, c.test.b):
                paper, _, variant = arm.rpartition(":")
                assert variant in papers[paper or name].variants, (name, c.id, arm)


def test_curves_plot_only_whole_curves(tmp_path: Path) -> None:
    from common.records import RunRecord, Training
    from common.report import PaperReport, render_curves

    def rec(seed: int, curve: list[float], epochs: int) -> RunRecord:
        return RunRecord.model_validate({
            "paper": "toy", "variant": "plain", "dataset": "tiny", "scale": "reduced",
            "dataset_files": {}, "config": {}, "seed": seed, "metrics": {"test": {"m": 1.0}},
            "selection_rule": "-", "training": Training(stopped_by="early-stopping",
            epochs=epochs, best_epoch=1, curve={"valid m": curve}).model_dump(),
            "git": {"commit": "c", "dirty": False}, "packages": {},
            "hardware": {"device": "cpu", "device_name": "x", "cpu": "x", "cpu_count": 1,
                         "platform": "p", "python": "3", "torch_threads": 1},
            "wall_time_s": 1, "started_at": f"t{seed}", "ended_at": "t"})  # fmt: skip

    tail_only = rec(0, [0.3, 0.2], epochs=5)  # resumed: 3 epochs missing
    whole = rec(1, [0.1, 0.3, 0.2], epochs=3)
    report = PaperReport("toy", None, [tail_only, whole], [], [], [])
    from common.report import _curve_runs

    assert [r.seed for r in _curve_runs(report)["tiny · reduced"]] == [1]
    out = render_curves(report, tmp_path / "curves.png")
    assert out is not None and out.stat().st_size > 1000
    assert (
        render_curves(PaperReport("toy", None, [tail_only], [], [], []), tmp_path / "x.png") is None
    )


def test_curves_keep_one_run_per_arm_and_plot_the_validation_curve() -> None:
    """Arms that differ only in a grouped config field (DCL's batch sizes) each keep their run;
    the curve drawn is the validation one, not the training loss beside it."""
    from common.records import RunRecord, Training
    from common.report import PaperReport, ReportedFile, _curve_runs, _selection_curve

    def rec(batch: int) -> RunRecord:
        curves = {"train loss": [5.0, 4.0], "valid kNN": [60.0, 61.0]}
        return RunRecord.model_validate({
            "paper": "toy", "variant": "plain", "dataset": "tiny", "scale": "reduced",
            "dataset_files": {}, "config": {"batch_size": batch}, "seed": 0,
            "metrics": {"test": {"m": 1.0}}, "selection_rule": "-",
            "training": Training(stopped_by="recipe-epochs", epochs=2, best_epoch=1,
                                 curve=curves).model_dump(),
            "git": {"commit": "c", "dirty": False}, "packages": {},
            "hardware": {"device": "cpu", "device_name": "x", "cpu": "x", "cpu_count": 1,
                         "platform": "p", "python": "3", "torch_threads": 1},
            "wall_time_s": 1, "started_at": f"t{batch}", "ended_at": "t"})  # fmt: skip

    reported = ReportedFile.model_validate({"paper": "toy", "title": "t", "citation": "c",
                                            "units": "percent", "group_by": ["batch_size"],
                                            "entries": []})  # fmt: skip
    report = PaperReport("toy", reported, [rec(32), rec(256)], [], [], [])
    assert len(_curve_runs(report)["tiny · reduced"]) == 2
    assert _selection_curve(rec(32)) == ("valid kNN", [60.0, 61.0])


def test_claims_table_escapes_the_pipes_of_an_equivalence_claim() -> None:
    import re

    from common.claims import Claim, evaluate_claim
    from common.report import claims_table

    test = {"kind": "equivalent", "a": "x", "b": "y", "metrics": ["m"], "margin": 1.0}
    claim = Claim(id="c", wording="x is on par with y", where="T1", test=test)  # type: ignore[arg-type]
    header, _, row = claims_table(evaluate_claim(claim, [], "toy"), 2).splitlines()
    cells = len(re.findall(r"(?<!\\)\|", header))
    assert len(re.findall(r"(?<!\\)\|", row)) == cells and "\\|x − y\\|" in row

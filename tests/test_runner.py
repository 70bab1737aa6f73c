"""The runner end to end on a toy paper: records, no overwrites, resume equals uninterrupted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from common.records import load_records
from common.runner import main
from tests.toy_paper import SimulatedCrash, make_toy_paper


def _argv(tmp_path: Path, *extra: str) -> list[str]:
    (tmp_path / "data").mkdir(exist_ok=True)
    return [
        "--scale", "full", "--data-root", str(tmp_path / "data"),
        "--results-dir", str(tmp_path / "results"), "--work-dir", str(tmp_path / "work"),
        *extra,
    ]  # fmt: skip


def test_writes_one_record_per_variant_and_seed(tmp_path: Path) -> None:
    entry = make_toy_paper(tmp_path)
    assert main(entry, _argv(tmp_path, "--seeds", "2")) == 0
    records = load_records(tmp_path / "results", "toy")
    assert sorted((r.variant, r.seed) for r in records) == [
        ("other", 0), ("other", 1), ("plain", 0), ("plain", 1)
    ]  # fmt: skip
    rec = records[0]
    assert rec.scale == "full" and rec.dataset == "tiny"
    assert rec.config["variant"] == rec.variant and rec.config["epochs"] == 4
    assert rec.git.commit and rec.packages["torch"] and rec.wall_time_s >= 0
    assert rec.hardware.device == "cpu"


def test_first_seed_adds_seeds_to_an_earlier_run(tmp_path: Path) -> None:
    entry = make_toy_paper(tmp_path)
    main(entry, _argv(tmp_path, "--variants", "plain", "--seeds", "2"))
    assert main(entry, _argv(tmp_path, "--variants", "plain", "--first-seed", "2")) == 0
    seeds = sorted(r.seed for r in load_records(tmp_path / "results", "toy"))
    assert seeds == [0, 1, 2]


def test_record_credits_the_code_at_the_start_of_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import common.runner
    from common.records import GitState

    states = iter([GitState(commit="at-start", dirty=False), GitState(commit="later", dirty=False)])
    monkeypatch.setattr(common.runner, "git_state", lambda *args: next(states))
    entry = make_toy_paper(tmp_path)
    assert main(entry, _argv(tmp_path, "--variants", "plain")) == 0
    (record,) = load_records(tmp_path / "results", "toy")
    assert record.git.commit == "at-start"


def test_repeat_says_when_it_ran_on_other_kernels(tmp_path: Path) -> None:
    from common.records import read_record
    from common.runner import agreement_lines

    entry = make_toy_paper(tmp_path)
    main(entry, _argv(tmp_path, "--variants", "plain"))
    main(entry, _argv(tmp_path, "--variants", "plain", "--rerun"))
    (path,) = (tmp_path / "results" / "runs" / "toy" / "tiny").glob("*.json")
    (repeat,) = (tmp_path / "work" / "repeats").rglob("*.json")
    first = read_record(path)
    assert first.hardware.cpu_capability  # e.g. AVX2, AVX512: torch's kernel dispatch level
    same = agreement_lines(first, repeat)
    assert first.hardware.cpu_capability in same[0] and not any("other hardware" in x for x in same)
    elsewhere = first.model_copy(
        update={"hardware": first.hardware.model_copy(update={"cpu_capability": "OTHER"})}
    )
    assert any("other hardware" in line for line in agreement_lines(elsewhere, repeat))


def test_rerun_never_overwrites(tmp_path: Path) -> None:
    entry = make_toy_paper(tmp_path)
    main(entry, _argv(tmp_path, "--variants", "plain"))
    main(entry, _argv(tmp_path, "--variants", "plain", "--rerun"))
    folder = tmp_path / "results" / "runs" / "toy" / "tiny"
    assert len(list(folder.glob("*.json"))) == 1
    assert len(list((tmp_path / "work" / "repeats").rglob("*.json"))) == 1
    work = tmp_path / "work" / "toy" / "tiny"
    assert len([p for p in work.iterdir() if p.is_dir()]) == 2  # second attempt got its own dir


def test_dataset_override_and_cli_override(tmp_path: Path) -> None:
    entry = make_toy_paper(tmp_path)
    main(entry, _argv(tmp_path, "--dataset", "small", "--variants", "plain", "epochs=2"))
    (rec,) = load_records(tmp_path / "results", "toy")
    assert rec.config["lr"] == 0.05 and rec.config["epochs"] == 2


def test_resumed_run_equals_uninterrupted(tmp_path: Path) -> None:
    entry = make_toy_paper(tmp_path)
    main(entry, _argv(tmp_path, "--variants", "plain", "--work-dir", str(tmp_path / "w1")))
    (straight,) = load_records(tmp_path / "results", "toy")

    crash = _argv(tmp_path, "--variants", "plain", "--work-dir", str(tmp_path / "w2"))
    with pytest.raises(SimulatedCrash):
        main(entry, [*crash, "crash_after_epoch=1"])
    # The config differs only in crash_after_epoch, so resume under the crashed run's config.
    (checkpoint,) = (tmp_path / "w2").rglob("checkpoint.pt")
    before = torch.load(checkpoint, weights_only=False)["_elapsed"]
    assert main(entry, [*crash, "--resume", "crash_after_epoch=1"]) == 0  # epochs 2-3 remain
    resumed = [r for r in load_records(tmp_path / "results", "toy") if r.resumed]
    assert len(resumed) == 1
    assert resumed[0].wall_time_s >= before > 0  # the first attempt's time is counted
    assert resumed[0].metrics.test == pytest.approx(straight.metrics.test, abs=0)


def test_resume_skips_recorded_seed(tmp_path: Path) -> None:
    entry = make_toy_paper(tmp_path)
    main(entry, _argv(tmp_path, "--variants", "plain"))
    main(entry, _argv(tmp_path, "--variants", "plain", "--resume"))
    assert len(load_records(tmp_path / "results", "toy")) == 1


def test_a_run_finished_for_another_results_folder_is_trained_for_this_one(
    tmp_path: Path,
) -> None:
    """Same work folder, other results folder (a tuning search, then the table's seeds): the
    finished work folder must not stand in for a record that this results folder lacks."""
    entry = make_toy_paper(tmp_path)
    assert main(entry, _argv(tmp_path, "--variants", "plain")) == 0
    other = [*_argv(tmp_path, "--variants", "plain", "--resume")]
    other[other.index("--results-dir") + 1] = str(tmp_path / "elsewhere")
    assert main(entry, other) == 0
    (first,) = load_records(tmp_path / "results", "toy")
    (second,) = load_records(tmp_path / "elsewhere", "toy")
    assert second.metrics == first.metrics  # the same run, trained again
    assert main(entry, other) == 0  # now recorded here: skipped
    assert len(load_records(tmp_path / "elsewhere", "toy")) == 1


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--dataset", "nosuch"], "invalid choice: 'nosuch' (choose from tiny, small)"),
        (["--bogus"], "valid options: --data-root"),
        (["--variants", "plain,nope"], "unknown variant nope; choose from plain, other"),
        (["--scale", "huge"], "choose from full, reduced, smoke"),
        (["notakeyvalue"], "must be key=value"),
    ],
)
def test_bad_arguments_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], needle: str
) -> None:
    entry = make_toy_paper(tmp_path)
    with pytest.raises(SystemExit) as exc:
        main(entry, _argv(tmp_path, *extra))
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert needle.replace("'", "") in err.replace("'", "") and "\n" not in err


@pytest.mark.parametrize(
    ("override", "needle"),
    [
        ("nosuchkey=1", "command line: key 'nosuchkey': Extra inputs are not permitted"),
        ("lr=fast", "command line: key 'lr'"),
    ],
)
def test_bad_config_is_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], override: str, needle: str
) -> None:
    entry = make_toy_paper(tmp_path)
    assert main(entry, _argv(tmp_path, override)) == 2
    err = capsys.readouterr().err
    assert needle in err and "Traceback" not in err and "full.yaml" not in err
    assert not (tmp_path / "results" / "runs").exists()  # rejected before any run started


def test_missing_data_root_is_one_line_exit_2_and_not_created(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    entry = make_toy_paper(tmp_path)
    typo = tmp_path / "no-such-data"
    assert main(entry, [*_argv(tmp_path), "--data-root", str(typo)]) == 2
    err = capsys.readouterr().err
    assert f"--data-root {typo} does not exist" in err and "Traceback" not in err
    assert not typo.exists() and not (tmp_path / "work").exists()


def test_bad_key_in_a_config_file_names_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    entry = make_toy_paper(tmp_path)
    (entry.folder / "configs" / "full.yaml").write_text("epochs: 4\nlrr: 0.1\n")
    assert main(entry, _argv(tmp_path, "lr=0.2")) == 2
    err = capsys.readouterr().err
    assert "configs/full.yaml: key 'lrr'" in err and "command line" not in err


def test_record_is_valid_json_with_schema_version(tmp_path: Path) -> None:
    entry = make_toy_paper(tmp_path)
    main(entry, _argv(tmp_path, "--variants", "plain"))
    (path,) = (tmp_path / "results" / "runs" / "toy" / "tiny").glob("*.json")
    raw = json.loads(path.read_text())
    assert raw["schema_version"] == 2
    assert raw["training"]["stopped_by"] == "recipe-epochs"  # the toy's 4 epochs = its full recipe
    for key in ("dataset_files", "config", "seed", "metrics", "selection_rule", "git",
                "packages", "hardware", "wall_time_s", "started_at", "ended_at"):  # fmt: skip
        assert key in raw


def test_a_recorded_seed_is_skipped_and_rerun_writes_a_repeat_apart(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    entry = make_toy_paper(tmp_path)
    assert main(entry, _argv(tmp_path, "--variants", "plain", "--seeds", "2")) == 0
    results = tmp_path / "results" / "runs" / "toy" / "tiny"
    before = sorted(p.name for p in results.glob("*.json"))
    capsys.readouterr()
    assert main(entry, _argv(tmp_path, "--variants", "plain", "--seeds", "3")) == 0
    out = capsys.readouterr()
    assert out.err.count("skipped: plain seed") == 2 and "--first-seed" in out.err
    after = sorted(p.name for p in results.glob("*.json"))
    assert len(after) == 3 and set(before) < set(after)  # only the new seed 2 was added
    assert "| plain | 2 |" in out.out  # this invocation's table
    assert main(entry, _argv(tmp_path, "--variants", "plain", "--rerun")) == 0
    err = capsys.readouterr().err
    assert sorted(p.name for p in results.glob("*.json")) == after  # results untouched
    (repeat,) = (tmp_path / "work" / "repeats" / "runs" / "toy" / "tiny").glob("*.json")
    assert "repeat of plain seed 0" in err and "difference +0.00000" in err
    assert json.loads(repeat.read_text())["seed"] == 0


def test_progress_names_variant_and_seed_positions(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    entry = make_toy_paper(tmp_path)
    assert main(entry, _argv(tmp_path, "--seeds", "2")) == 0
    err = capsys.readouterr().err
    assert "variant 2 of 2 (other), seed 2 of 2 (1)" in err

"""Failing early, clearly, and leaving nothing behind: unwritable folders, a failed record write,
Ctrl-C, and the run folders of failed attempts."""

from __future__ import annotations

import errno
import pathlib
from pathlib import Path
from typing import Any

import pytest
import torch

import common.rundir
from common import records
from common.errors import DataError
from common.records import DONE_NAME, PENDING_NAME, load_records
from common.rundir import CHECKPOINT_NAME, choose_run_dir
from common.runner import PaperEntry, RunContext, RunOutcome, main, resume_command
from tests import toy_paper
from tests.toy_paper import make_toy_paper


def _argv(tmp_path: Path, *extra: str) -> list[str]:
    (tmp_path / "data").mkdir(exist_ok=True)
    return [
        "--scale", "full", "--variants", "plain", "--data-root", str(tmp_path / "data"),
        "--results-dir", str(tmp_path / "results"), "--work-dir", str(tmp_path / "work"),
        *extra,
    ]  # fmt: skip


def _with_run(entry: PaperEntry, run: Any) -> PaperEntry:
    return PaperEntry(folder=entry.folder, config_model=entry.config_model, run=run)


def _run_dirs(tmp_path: Path) -> list[Path]:
    work = tmp_path / "work" / "toy" / "tiny"
    return sorted(p for p in work.iterdir()) if work.exists() else []


def _last_line(err: str) -> str:
    return err.strip().splitlines()[-1]


# --- the results and work folders are checked before training --------------------------------


def test_results_folder_that_cannot_be_created_fails_before_training(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    entry = make_toy_paper(tmp_path)
    (tmp_path / "results").write_text("a file where the results folder should be")
    assert main(entry, _argv(tmp_path)) == 2
    err = capsys.readouterr().err
    assert "results folder" in err and "is not a folder" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "work").exists()  # no training started


@pytest.mark.parametrize(("folder", "flag"), [("results", "--results-dir"), ("work", "--work-dir")])
def test_read_only_folder_fails_before_training(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    folder: str,
    flag: str,
) -> None:
    (tmp_path / folder).mkdir()
    real = common.rundir.probe_write

    def read_only(path: Path) -> None:  # root ignores file modes: simulate a read-only mount
        if path.is_relative_to(tmp_path / folder):
            raise PermissionError(errno.EROFS, "Read-only file system")
        real(path)

    monkeypatch.setattr(common.rundir, "probe_write", read_only)
    calls: list[int] = []

    def run(config: Any, ctx: RunContext) -> RunOutcome:
        calls.append(1)
        return toy_paper.run(config, ctx)

    assert main(_with_run(make_toy_paper(tmp_path), run), _argv(tmp_path)) == 2
    err = capsys.readouterr().err
    assert f"{folder} folder" in err and "not writable (Read-only file system)" in err
    assert flag in err and "Traceback" not in err and calls == []
    assert not list((tmp_path / folder).iterdir())


# --- a failed record write keeps the record and says how to write it later ----------------------


def _disk_full_for_records(monkeypatch: pytest.MonkeyPatch, results: Path) -> None:
    real = pathlib.Path.write_text

    def write_text(self: Path, data: str, *args: Any, **kwargs: Any) -> int:
        if self.is_relative_to(results) and self.name.endswith(".tmp"):
            real(self, "")  # what a full disk leaves: an empty file, then the error
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, data, *args, **kwargs)

    monkeypatch.setattr(pathlib.Path, "write_text", write_text)


def test_failed_record_write_keeps_the_record_and_says_how_to_write_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    entry, results = make_toy_paper(tmp_path), tmp_path / "results"
    with monkeypatch.context() as patch:
        _disk_full_for_records(patch, results)
        assert main(entry, _argv(tmp_path)) == 2
    err = capsys.readouterr().err
    (run_dir,) = _run_dirs(tmp_path)
    pending = run_dir / PENDING_NAME
    line = _last_line(err)
    assert "No space left on device" in line and "Traceback" not in err
    assert f"python -m common.records --import {pending} --results-dir {results}" in line
    assert [p.name for p in results.rglob("*") if p.is_file()] == []  # no .tmp left behind
    assert pending.is_file() and (run_dir / CHECKPOINT_NAME).is_file()

    assert records.main(["--import", str(pending), "--results-dir", str(results)]) == 0
    (record,) = load_records(results, "toy")
    assert record.seed == 0 and record.run_dir == str(run_dir)
    assert not pending.exists() and (run_dir / DONE_NAME).is_file()
    assert main(entry, _argv(tmp_path, "--resume")) == 0  # the imported record counts as done
    assert len(load_records(results, "toy")) == 1


def test_import_of_a_missing_or_imported_record_is_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert records.main(["--import", str(tmp_path / "nope.json")]) == 2
    assert "nope.json" in capsys.readouterr().err


def test_failed_checkpoint_write_leaves_no_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = torch.save
    saved: list[Any] = []

    def full_disk_after_one(obj: Any, path: Path) -> None:
        if saved:  # the second checkpoint finds the disk full
            Path(path).write_bytes(b"")
            raise OSError(errno.ENOSPC, "No space left on device")
        saved.append(path)
        real(obj, path)

    monkeypatch.setattr(torch, "save", full_disk_after_one)
    with pytest.raises(OSError, match="No space left"):
        main(make_toy_paper(tmp_path), _argv(tmp_path))
    (run_dir,) = _run_dirs(tmp_path)  # kept: it holds the first checkpoint
    assert sorted(p.name for p in run_dir.iterdir()) == [CHECKPOINT_NAME, "train.log"]


# --- Ctrl-C: one line naming the checkpoint and the --resume command, status 130 ---------------


def _interrupt_after_first_checkpoint(config: Any, ctx: RunContext) -> RunOutcome:
    save = ctx.save_checkpoint

    def save_then_interrupt(state: dict[str, Any]) -> None:
        save(state)
        raise KeyboardInterrupt

    ctx.save_checkpoint = save_then_interrupt  # type: ignore[method-assign]
    return toy_paper.run(config, ctx)


def _main_catching_ctrl_c(entry: PaperEntry, argv: list[str]) -> int:
    try:
        return main(entry, argv)
    except KeyboardInterrupt:
        pytest.fail("Ctrl-C escaped main() with a traceback")


def test_ctrl_c_prints_the_checkpoint_and_the_resume_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    entry = make_toy_paper(tmp_path)
    argv = _argv(tmp_path)
    assert _main_catching_ctrl_c(_with_run(entry, _interrupt_after_first_checkpoint), argv) == 130
    err = capsys.readouterr().err
    (run_dir,) = _run_dirs(tmp_path)
    assert "Traceback" not in err
    assert _last_line(err) == (
        f"interrupted toy plain on tiny, seed 0; checkpoint {run_dir / CHECKPOINT_NAME}; "
        f"to resume: python -m papers.toy {' '.join(argv)} --resume"
    )
    assert main(entry, [*argv, "--resume"]) == 0
    (record,) = load_records(tmp_path / "results", "toy")
    assert record.resumed


def test_ctrl_c_before_a_checkpoint_leaves_no_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def interrupt(config: Any, ctx: RunContext) -> RunOutcome:
        raise KeyboardInterrupt

    entry = _with_run(make_toy_paper(tmp_path), interrupt)
    assert _main_catching_ctrl_c(entry, _argv(tmp_path)) == 130
    line = _last_line(capsys.readouterr().err)
    assert line.startswith("interrupted toy plain on tiny, seed 0 before its first checkpoint")
    assert line.endswith("--resume") and _run_dirs(tmp_path) == []


def test_resume_command_names_how_the_run_was_started(monkeypatch: pytest.MonkeyPatch) -> None:
    assert (
        resume_command("mclrec", ["--seeds", "3"]) == "python -m papers.mclrec --seeds 3 --resume"
    )
    monkeypatch.setenv("CLREPRO_LAUNCHER", "nox -s reproduce -- {paper}")
    assert resume_command("mclrec", ["--data-root", "a b", "--resume"]) == (
        "nox -s reproduce -- mclrec --data-root 'a b' --resume"
    )


# --- failed attempts leave no new work/<run>.N folder ------------------------------------------


def test_failed_runs_leave_no_folders(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def missing_data(config: Any, ctx: RunContext) -> RunOutcome:
        ctx.logger.info("loading data")
        raise DataError("tiny is missing")

    entry = _with_run(make_toy_paper(tmp_path), missing_data)
    for _ in range(3):
        assert main(entry, _argv(tmp_path)) == 2
    assert "tiny is missing" in capsys.readouterr().err
    assert _run_dirs(tmp_path) == []


def test_an_attempt_without_checkpoint_or_record_is_reused(tmp_path: Path) -> None:
    base = tmp_path / "run"
    assert choose_run_dir(base, resume=False) == base
    base.mkdir()
    (base / "train.log").write_text("killed before its first checkpoint\n")
    assert choose_run_dir(base, resume=False) == base  # reused, not run.1
    (base / CHECKPOINT_NAME).write_bytes(b"x")
    second = tmp_path / "run.2"  # the base folder is attempt 1
    assert choose_run_dir(base, resume=False) == second
    second.mkdir()  # a later attempt that died early
    assert choose_run_dir(base, resume=False) == second
    assert choose_run_dir(base, resume=True) == base  # the attempt with the checkpoint
    (second / DONE_NAME).write_text("record.json\n")
    assert choose_run_dir(base, resume=False) == tmp_path / "run.3"
    assert choose_run_dir(base, resume=True) == second


# --- --dry-run: every check, nothing run (nox uses it before reinstalling an environment) ------


def test_dry_run_checks_everything_and_runs_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    calls: list[int] = []

    def run(config: Any, ctx: RunContext) -> RunOutcome:
        calls.append(1)
        return toy_paper.run(config, ctx)

    entry = _with_run(make_toy_paper(tmp_path), run)
    assert main(entry, _argv(tmp_path, "--dry-run", "--seeds", "2")) == 0
    assert capsys.readouterr().out.startswith(
        "ok: toy on tiny, scale full, variants plain, seeds 0..1"
    )
    assert calls == [] and not (tmp_path / "work").exists() and not (tmp_path / "results").exists()
    assert main(entry, _argv(tmp_path, "--dry-run", "lr=-")) == 2
    assert "command line: key 'lr'" in capsys.readouterr().err

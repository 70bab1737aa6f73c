"""Benchmark records: timing helper, measurement files, pairing and ratios, the generated table."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import pytest

from common.bench import (
    BenchRecord,
    Measurement,
    MeasurementFile,
    count_flops,
    load_bench,
    main,
    matmul_peak_gflops,
    read_measurements,
    speed_rows,
    speed_table,
    time_samples,
    write_bench,
    write_measurements,
)
from common.cli import (
    discover_papers,
    has_bench,
    official_checkout,
    parse_bench_args,
    read_bench_setup,
    repo_root,
)
from common.errors import RecordError
from common.records import GitState, hardware_info
from common.report import SPEED_BEGIN, SPEED_END, replace_between


def _record(
    side: str, created: str, *measurements: Measurement, peak: float = 100.0, threads: int = 1
) -> BenchRecord:
    return BenchRecord(
        paper="toy",
        side=side,  # type: ignore[arg-type]
        created=created,
        threads=threads,
        load_average=0.5,
        matmul_gflops=peak,
        git=GitState(commit="abc1234", dirty=False),
        hardware=hardware_info("cpu"),
        versions={"torch": "2.13.0"},
        measurements=list(measurements),
    )


def _m(
    workload: str, cpu: list[float], flops: float | None = None, wall: list[float] | None = None
) -> Measurement:
    return Measurement(workload=workload, unit="s/epoch", cpu=cpu, wall=wall or cpu, flops=flops)


def test_time_samples_runs_warmup_then_one_sample_per_repeat() -> None:
    calls: list[int] = []
    cpu, wall = time_samples(lambda: calls.append(1), repeats=4, warmup=2)
    assert len(calls) == 6
    assert len(cpu) == len(wall) == 4
    assert all(t >= 0 for t in cpu + wall)


def test_matmul_peak_is_positive_and_restores_threads() -> None:
    import torch

    before = torch.get_num_threads()
    assert matmul_peak_gflops(1, size=128, repeats=2) > 0
    assert torch.get_num_threads() == before


def test_count_flops_counts_dense_products_only() -> None:
    import torch

    a, b = torch.randn(8, 16), torch.randn(16, 4)
    assert count_flops(lambda: a @ b) == 2 * 8 * 16 * 4
    assert count_flops(lambda: (a * 2).exp()) is None  # element-wise work is not counted
    index = torch.tensor([[0, 3, 5], [1, 1, 2]])
    sparse = torch.sparse_coo_tensor(index, torch.ones(3), (8, 16))
    dense = torch.randn(16, 4)
    for matrix in (sparse, sparse.to_sparse_csr()):  # 3 non-zeros x 4 columns x 2, not 8x16x4x2
        assert count_flops(partial(torch.matmul, matrix, dense)) == 2 * 3 * 4
        assert count_flops(partial(torch.sparse.mm, matrix, dense)) == 2 * 3 * 4


def test_ratio_is_official_median_over_ours_and_mins_separately() -> None:
    ours = _record("ours", "2026-01-01T00:00:00+00:00", _m("train", [1.0, 2.0, 9.0]))
    official = _record("official", "2026-01-01T00:01:00+00:00", _m("train", [4.0, 6.0, 8.0]))
    (row,) = speed_rows([ours, official])
    assert row.ours_median == 2.0 and row.official_median == 6.0
    assert row.ratio == pytest.approx(3.0)
    assert row.ratio_of_mins == pytest.approx(4.0)


def test_latest_record_of_each_side_wins_per_workload() -> None:
    old = _record("official", "2026-01-01T00:00:00+00:00", _m("train", [100.0]), _m("eval", [7.0]))
    new = _record("official", "2026-02-01T00:00:00+00:00", _m("train", [5.0]))
    ours = _record("ours", "2026-01-15T00:00:00+00:00", _m("train", [1.0]), _m("eval", [1.0]))
    rows = {row.workload: row for row in speed_rows([new, ours, old])}
    assert rows["train"].ratio == pytest.approx(5.0)  # the February official record
    assert rows["eval"].ratio == pytest.approx(7.0)  # only the old one measured eval


def test_thread_counts_are_rows_of_their_own_paired_at_equal_threads() -> None:
    one = _record("ours", "2026-01-01T00:00:00+00:00", _m("train", [2.0], wall=[2.0]))
    two = _record("ours", "2026-01-02T00:00:00+00:00", _m("train", [2.4], wall=[1.6]), threads=2)
    official = _record("official", "2026-01-01T00:01:00+00:00", _m("train", [6.0]))
    rows = {row.workload: row for row in speed_rows([official, two, one])}
    assert set(rows) == {"train", "train [2 threads]"}
    assert rows["train"].ratio == pytest.approx(3.0)  # not paired with the 2-thread record
    assert rows["train [2 threads]"].ratio is None
    table = speed_table([official, two, one])
    assert "train: 1 → 2 threads, 1.25× less wall time" in table
    assert "1 thread(s)" in table and "2 thread(s)" in table  # both records' provenance


def test_workload_without_official_side_has_no_ratio_and_achieved_gflops_use_median() -> None:
    ours = _record("ours", "2026-01-01T00:00:00+00:00", _m("train", [1.0, 2.0, 3.0], flops=4e9))
    (row,) = speed_rows([ours])
    assert row.ratio is None and row.official_median is None
    assert row.ours_gflops == pytest.approx(2.0)
    table = speed_table([ours])
    assert "| train | s/epoch | 1 / 2 | — / — | — | 2.0 (2% of 100) |" in table


def test_measurement_file_round_trip_and_one_line_errors(tmp_path: Path) -> None:
    path = write_measurements(tmp_path / "m.json", "official", [_m("train", [1.0])], {"a": "1"})
    assert read_measurements(path) == MeasurementFile(
        side="official", versions={"a": "1"}, measurements=[_m("train", [1.0])]
    )
    path.write_text('{"side": "theirs", "measurements": []}')
    with pytest.raises(RecordError, match="side"):
        read_measurements(path)
    with pytest.raises(RecordError, match="no measurement file"):
        read_measurements(tmp_path / "absent.json")


def test_bench_records_are_never_overwritten(tmp_path: Path) -> None:
    record = _record("ours", "2026-01-01T00:00:00+00:00", _m("train", [1.0]))
    first, second = write_bench(record, tmp_path), write_bench(record, tmp_path)
    assert first != second
    assert len(load_bench(tmp_path, "toy")) == 2


def test_record_command_writes_a_record_the_table_reads(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ours = write_measurements(tmp_path / "ours.json", "ours", [_m("train", [2.0])], {})
    theirs = write_measurements(tmp_path / "off.json", "official", [_m("train", [5.0])], {})
    results = tmp_path / "results"
    assert main(["record", "toy", str(ours), "--results-dir", str(results)]) == 0
    assert (
        main(["record", "toy", str(theirs), "--official", "o/r@1", "--results-dir", str(results)])
        == 0
    )
    assert main(["table", "toy", "--results-dir", str(results)]) == 0
    assert "**2.50×**" in capsys.readouterr().out
    assert main(["record", "toy", str(tmp_path / "nope.json"), "--results-dir", str(results)]) == 2


def test_speed_markers_are_replaced_and_the_rest_kept(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(f"# toy\n\n{SPEED_BEGIN}\nold table\n{SPEED_END}\n\ntail\n")
    assert replace_between(readme, SPEED_BEGIN, SPEED_END, "new table")
    assert readme.read_text() == f"# toy\n\n{SPEED_BEGIN}\nnew table\n{SPEED_END}\n\ntail\n"
    plain = tmp_path / "plain.md"
    plain.write_text("no markers\n")
    assert not replace_between(plain, SPEED_BEGIN, SPEED_END, "x")
    assert plain.read_text() == "no markers\n"


def _paper(root: Path, name: str, bench: str) -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "paper.toml").write_text(
        f'environment = "base"\ndatasets = ["d"]\nvariants = ["v"]\n{bench}'
    )
    return folder


def test_bench_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _paper(tmp_path, "toy", '[bench]\ncheckout = "o/r@abc"\nofficial_environment = "off"\n')
    _paper(tmp_path, "plain", "")
    setup, args = parse_bench_args(["toy", "--threads", "2", "--data-root", "D"], tmp_path)
    assert (setup.official, setup.checkout, setup.official_environment) == (
        "o/r@abc",
        "o/r@abc",
        "off",
    )
    assert args.threads == 2 and args.harness_args == ("--data-root", "D")
    for bad in (["nope"], ["toy", "--threads", "0"], ["plain"]):
        with pytest.raises(SystemExit) as exit_:
            parse_bench_args(bad, tmp_path)
        assert exit_.value.code == 2
    assert "papers: toy" in capsys.readouterr().err


def test_official_checkout_location(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _paper(tmp_path, "toy", '[bench]\ncheckout = "o/r@abc"\nofficial_environment = "off"\n')
    _paper(tmp_path, "pkg", '[bench]\nofficial = "lib==1"\nofficial_environment = "off"\n')
    toy, _ = parse_bench_args(["toy"], tmp_path)
    package, _ = parse_bench_args(["pkg"], tmp_path)
    scratch = tmp_path / "scratch"
    assert official_checkout(package, None, scratch) is None
    with pytest.raises(SystemExit):
        official_checkout(toy, None, scratch)
    message = capsys.readouterr().err
    assert "git clone https://github.com/o/r" in message and "checkout abc" in message
    (scratch / "o+r").mkdir(parents=True)
    assert official_checkout(toy, None, scratch) == scratch / "o+r"


def test_every_benchmarked_paper_has_both_harnesses_and_its_environment() -> None:
    root = repo_root()
    benched = [info for info in discover_papers(root / "papers").values() if has_bench(info)]
    assert {info.name for info in benched} >= {"mclrec", "ncl"}
    for info in benched:
        setup = read_bench_setup(info)
        assert (info.folder / "benchmark.py").is_file()
        assert (info.folder / "benchmark_official.py").is_file()
        assert (root / "environments" / f"{setup.official_environment}.txt").is_file()


def test_repository_imports_finds_our_packages_and_relative_imports(tmp_path: Path) -> None:
    from tests.support.bench import repository_imports

    harness = tmp_path / "benchmark_official.py"
    harness.write_text("import torch\nfrom numpy import linalg\n")
    assert repository_imports(harness) == set()
    harness.write_text("import torch\nimport common.bench\nfrom .model import Net\n")
    assert repository_imports(harness) == {"common", "."}
    harness.write_text("from papers.dcl import losses\n")
    assert repository_imports(harness) == {"papers"}


def test_positive_int_rejects_zero_and_negatives() -> None:
    import argparse

    from common.bench import positive_int

    assert positive_int("3") == 3
    for bad in ("0", "-2"):
        with pytest.raises(argparse.ArgumentTypeError, match="at least 1"):
            positive_int(bad)

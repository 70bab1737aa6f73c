"""Speed benchmarks as records: our code against the official code, same work, same machine.

A paper's ``benchmark.py`` (ours) and ``benchmark_official.py`` (the official code, run by its
path in the official environment, importing nothing from this repository) each write a
*measurement file*, plain JSON so that the official side needs no package of ours::

    {"side": "ours" | "official", "versions": {"torch": "2.13.0", ...},
     "measurements": [{"workload": "train epoch, mclrec", "unit": "s/epoch",
                       "cpu": [...], "wall": [...], "flops": 1.2e12 | null}]}

``cpu``/``wall`` hold one sample per repeat (process CPU seconds and wall seconds per unit),
warm-up excluded. ``python -m common.bench record`` turns a measurement file into a
:class:`BenchRecord` under ``results/bench/<paper>/`` (adding the commit, the machine, its
load and its measured matmul peak); ``common.report`` builds the speed tables from those
records, so the READMEs' ratios are generated, never typed. ``nox -s bench -- <paper>`` runs
both sides and both steps.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from common.errors import RecordError
from common.records import (
    GitState,
    Hardware,
    default_results_dir,
    git_state,
    hardware_info,
    utc_now,
)

Side = Literal["ours", "official"]
BENCH_SCHEMA = 1
# what is timed (documentation edits do not make a measurement dirty)
CODE_PATHS = ("common", "papers", "environments", "noxfile.py", "pyproject.toml", ":!*.md")


class Measurement(BaseModel):
    """One workload timed on one side: a sample per repeat, warm-up excluded."""

    model_config = ConfigDict(extra="forbid")

    workload: str = Field(min_length=1)
    unit: str = Field(min_length=1)
    cpu: list[float] = Field(min_length=1)
    wall: list[float] = Field(min_length=1)
    flops: float | None = Field(default=None, gt=0)


class MeasurementFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    side: Side
    versions: dict[str, str] = Field(default_factory=dict)
    measurements: list[Measurement] = Field(min_length=1)


class BenchRecord(BaseModel):
    """A measurement file with where and when it was measured."""

    model_config = ConfigDict(extra="forbid")

    schema_version: int = BENCH_SCHEMA
    paper: str
    side: Side
    official: str | None = None  # repository@commit (or package==version) of the official side
    created: str
    threads: int = Field(ge=1)
    load_average: float
    matmul_gflops: float = Field(gt=0)  # fp32 matmul peak of this machine at ``threads``
    git: GitState
    hardware: Hardware
    versions: dict[str, str]
    measurements: list[Measurement]


def positive_int(text: str) -> int:
    """An ``argparse`` type for counts (repeats, batch size): an int of at least 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def time_samples(
    step: Callable[[], object], repeats: int, warmup: int = 1
) -> tuple[list[float], list[float]]:
    """Process-CPU and wall seconds of ``repeats`` calls of ``step`` after ``warmup`` calls."""
    for _ in range(warmup):
        step()
    cpu, wall = [], []
    for _ in range(repeats):
        start_wall, start_cpu = time.perf_counter(), time.process_time()
        step()
        wall.append(time.perf_counter() - start_wall)
        cpu.append(time.process_time() - start_cpu)
    return cpu, wall


def count_flops(work: Callable[[], object]) -> float | None:
    """FLOPs of one call of ``work``: matrix products, convolutions and attention kernels as
    ``torch.utils.flop_counter`` counts them, except that a sparse @ dense product counts its
    real 2·nnz·k (the counter would count it as dense). Element-wise work is not counted, so
    GFLOP/s from this is a lower bound of the arithmetic done. None when zero."""
    counter = _flop_counter_class()(display=False)
    with counter:
        work()
    total = counter.get_total_flops() + counter.sparse_flops
    return float(total) if total > 0 else None


def _flop_counter_class() -> Any:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    class Counter(FlopCounterMode):
        sparse_flops = 0

        def _count_flops(self, func_packet: Any, out: Any, args: Any, kwargs: Any) -> Any:
            sparse = [a for a in args if isinstance(a, torch.Tensor) and a.layout != torch.strided]
            if not sparse:
                return super()._count_flops(func_packet, out, args, kwargs)  # type: ignore[no-untyped-call]
            if str(func_packet) in SPARSE_PRODUCTS:
                self.sparse_flops += 2 * sparse[0]._nnz() * out.shape[-1]
            return out

    return Counter


SPARSE_PRODUCTS = {"aten.mm", "aten.addmm", "aten._sparse_addmm", "aten._sparse_mm"}


def matmul_peak_gflops(threads: int, size: int = 1024, repeats: int = 10) -> float:
    """Best fp32 GFLOP per CPU-second of a square ``size`` matmul on ``threads`` threads.

    Process CPU time, like the measurements it is set against, so that other jobs on a shared
    machine do not lower it; with one thread it is the single-core peak (2·n³ FLOPs per call).
    """
    import torch  # not at import: the report reads bench records without torch

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        a, b = torch.randn(size, size), torch.randn(size, size)
        torch.mm(a, b)
        best = float("inf")
        for _ in range(repeats):
            start = time.process_time()
            torch.mm(a, b)
            best = min(best, time.process_time() - start)
    finally:
        torch.set_num_threads(previous)
    return 2 * size**3 / max(best, 1e-9) / 1e9


def write_measurements(path: Path, side: Side, measurements: Iterable[Measurement],
                       versions: dict[str, str]) -> Path:  # fmt: skip
    content = MeasurementFile(side=side, versions=versions, measurements=list(measurements))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content.model_dump_json(indent=2) + "\n")
    return path


def read_measurements(path: Path) -> MeasurementFile:
    try:
        return MeasurementFile.model_validate_json(path.read_text())
    except FileNotFoundError:
        raise RecordError(f"no measurement file at {path}") from None
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise RecordError(f"{path}: {where}: {first['msg']}") from None


def make_record(paper: str, measured: MeasurementFile, threads: int,
                official: str | None = None) -> BenchRecord:  # fmt: skip
    return BenchRecord(
        paper=paper,
        side=measured.side,
        official=official,
        created=utc_now(),
        threads=threads,
        load_average=round(os.getloadavg()[0], 2),
        matmul_gflops=round(matmul_peak_gflops(threads), 1),
        git=git_state(paths=CODE_PATHS),
        hardware=hardware_info("cpu"),
        versions=measured.versions,
        measurements=measured.measurements,
    )


def write_bench(record: BenchRecord, results_dir: Path) -> Path:
    """``results/bench/<paper>/<side>-<created>.json``; never overwrites an existing record."""
    folder = results_dir / "bench" / record.paper
    folder.mkdir(parents=True, exist_ok=True)
    stamp = record.created.replace(":", "").replace("+0000", "Z")
    path = folder / f"{record.side}-{stamp}.json"
    suffix = 1
    while path.exists():
        path = folder / f"{record.side}-{stamp}-{suffix}.json"
        suffix += 1
    path.write_text(record.model_dump_json(indent=2) + "\n")
    return path


def load_bench(results_dir: Path, paper: str) -> list[BenchRecord]:
    folder = results_dir / "bench" / paper
    if not folder.is_dir():
        return []
    return [BenchRecord.model_validate_json(p.read_text()) for p in sorted(folder.glob("*.json"))]


class SpeedRow(BaseModel):
    """One workload: each side's min and median CPU seconds, and official ÷ ours."""

    workload: str
    unit: str
    ours_min: float
    ours_median: float
    official_min: float | None
    official_median: float | None
    ours_gflops: float | None  # achieved, from FLOPs per unit and the median CPU time
    peak_gflops: float

    @property
    def ratio(self) -> float | None:
        if self.official_median is None:
            return None
        return self.official_median / self.ours_median

    @property
    def ratio_of_mins(self) -> float | None:
        if self.official_min is None:
            return None
        return self.official_min / self.ours_min


Key = tuple[str, int]  # (workload, threads)


def _latest(
    records: Sequence[BenchRecord], side: Side
) -> dict[Key, tuple[BenchRecord, Measurement]]:
    """Each (workload, threads)'s latest measurement on ``side`` (records read oldest first)."""
    latest: dict[Key, tuple[BenchRecord, Measurement]] = {}
    for record in sorted((r for r in records if r.side == side), key=lambda r: r.created):
        for measurement in record.measurements:
            latest[(measurement.workload, record.threads)] = (record, measurement)
    return latest


def _label(workload: str, threads: int) -> str:
    return workload if threads == 1 else f"{workload} [{threads} threads]"


def speed_rows(records: Sequence[BenchRecord]) -> list[SpeedRow]:
    """Rows for every workload (and thread count) measured on our side, paired with the official
    side's latest at the same thread count."""
    ours, official = _latest(records, "ours"), _latest(records, "official")
    rows = []
    for key, (record, mine) in sorted(ours.items(), key=lambda item: item[0][1]):
        other = official.get(key)
        median = statistics.median(mine.cpu)
        rows.append(
            SpeedRow(
                workload=_label(*key),
                unit=mine.unit,
                ours_min=min(mine.cpu),
                ours_median=median,
                official_min=min(other[1].cpu) if other else None,
                official_median=statistics.median(other[1].cpu) if other else None,
                ours_gflops=mine.flops / median / 1e9 if mine.flops else None,
                peak_gflops=record.matmul_gflops,
            )
        )
    return rows


def thread_scaling(records: Sequence[BenchRecord]) -> list[str]:
    """``workload: 1 → N threads, X× less wall time`` (medians) for each workload of ours measured
    at one thread and at more. Wall time, because CPU seconds add up over threads."""
    ours = _latest(records, "ours")
    lines = []
    for (workload, threads), (_, many) in sorted(ours.items(), key=lambda item: item[0][1]):
        one = ours.get((workload, 1))
        if threads > 1 and one is not None:
            gain = statistics.median(one[1].wall) / statistics.median(many.wall)
            lines.append(f"{workload}: 1 → {threads} threads, {gain:.2f}× less wall time")
    return lines


def _number(value: float | None, digits: int = 3) -> str:
    return "—" if value is None else f"{value:.{digits}g}"


def speed_table(records: Sequence[BenchRecord]) -> str:
    """Markdown: workload, both sides' min / median CPU seconds, the ratio, our GFLOP/s."""
    rows = speed_rows(records)
    if not rows:
        return "No benchmark recorded yet (`nox -s bench -- <paper>`)."
    lines = [
        "| workload | unit | ours min / median | official min / median | official ÷ ours "
        "(medians; mins) | ours GFLOP/s (share of matmul peak) |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        share = (
            f"{row.ours_gflops:.1f} ({row.ours_gflops / row.peak_gflops:.0%} "
            f"of {row.peak_gflops:.0f})"
            if row.ours_gflops
            else "—"
        )
        ratio = "—" if row.ratio is None else f"**{row.ratio:.2f}×**; {row.ratio_of_mins:.2f}×"
        lines.append(
            f"| {row.workload} | {row.unit} | {_number(row.ours_min)} / {_number(row.ours_median)} "
            f"| {_number(row.official_min)} / {_number(row.official_median)} | {ratio} | {share} |"
        )
    lines.append("")
    lines.append(_provenance(records))
    scaling = thread_scaling(records)
    if scaling:
        lines += ["", "Thread scaling of ours (median wall seconds; meaningful on an idle machine "
                  "only): " + "; ".join(scaling) + "."]  # fmt: skip
    return "\n".join(lines)


def _provenance(records: Sequence[BenchRecord]) -> str:
    parts = []
    for side in ("ours", "official"):
        shown = {r.created: r for r, _ in _latest(records, side).values()}  # the rows' records
        for latest in (shown[created] for created in sorted(shown)):
            versions = ", ".join(f"{k} {v}" for k, v in sorted(latest.versions.items()))
            where = f" ({latest.official})" if latest.official else ""
            parts.append(
                f"{side}{where}: {latest.created}, commit {latest.git.commit[:7]}"
                f"{' (dirty)' if latest.git.dirty else ''}, {latest.threads} thread(s), load "
                f"{latest.load_average}, {latest.hardware.cpu}; {versions}"
            )
    return "CPU seconds per unit, warm-up excluded. " + "; ".join(parts) + "."


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m common.bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    record = commands.add_parser("record", help="turn a measurement file into a bench record")
    record.add_argument("paper")
    record.add_argument("measurements", type=Path)
    record.add_argument("--threads", type=int, default=1)
    record.add_argument("--official", default=None, help="repository@commit of the official side")
    record.add_argument("--results-dir", type=Path, default=None)
    table = commands.add_parser("table", help="print a paper's speed table")
    table.add_argument("paper")
    table.add_argument("--results-dir", type=Path, default=None)
    args = parser.parse_args(argv)
    results_dir = args.results_dir or default_results_dir()
    try:
        if args.command == "record":
            measured = read_measurements(args.measurements)
            path = write_bench(make_record(args.paper, measured, args.threads, args.official),
                               results_dir)  # fmt: skip
            print(f"recorded {path}")
        else:
            print(speed_table(load_bench(results_dir, args.paper)))
    except RecordError as error:
        print(f"error: {error}")
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The speed harnesses, without the official code: the arguments both accept, the same rows and
workload names on both sides, our measurement file, the official side's plain-JSON one and its
CPU time of joined worker processes, and the ``[bench]`` table that puts them in ``nox -s bench``.

``benchmark_official.py`` is loaded by its path (it imports torch and the standard library only;
the official checkout is imported only when it runs).
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from types import ModuleType

import pytest

from common.bench import MeasurementFile, read_measurements
from common.cli import discover_papers, has_bench, read_bench_setup
from tests.support.bench import repository_imports
from tests.support.datasets import spec_for_local_files, temporary_dataset
from tests.support.sentences import save_tiny_bert

from . import benchmark
from .data import RUBY_LISTS, RUBY_TEST, RUBY_VALID
from .testdata import WORDS, write_tiny_codesearch

HERE = Path(__file__).parent
OFFICIAL = HERE / "benchmark_official.py"
ROOT = HERE.parent.parent


def _official() -> ModuleType:
    spec = importlib.util.spec_from_file_location("cocosoda_benchmark_official", OFFICIAL)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


official = _official()


@pytest.fixture()
def data(tmp_path: Path) -> Iterator[Path]:
    """Tiny Ruby files registered as the paper's datasets: 12 test rows, and 16 valid rows plus
    a 17th that repeats the first test URL with other code (the pool keeps the first)."""
    root = tmp_path / "data"
    files = write_tiny_codesearch(root)
    first = json.loads((root / RUBY_TEST).read_text().splitlines()[0])
    with (root / RUBY_VALID).open("a") as handle:
        handle.write(json.dumps({**first, "code_tokens": ["def", "other", "end"]}) + "\n")
    with (root / RUBY_LISTS["valid"]).open("a") as handle:
        handle.write(str(first["url"]) + "\n")
    with ExitStack() as stack:
        for name, rels in files.items():
            stack.enter_context(temporary_dataset(spec_for_local_files(name, root, rels)))
        yield root


def test_official_harness_imports_nothing_from_the_repository() -> None:
    assert repository_imports(OFFICIAL) == set()


def test_both_sides_name_the_same_workloads() -> None:
    assert official.WORKLOADS == benchmark.WORKLOADS
    assert official.UNITS == benchmark.UNITS
    assert official.SEED == benchmark.SEED == 0
    assert set(benchmark.WORKLOADS) == set(benchmark.UNITS) == {"evaluation", "training"}


@pytest.mark.parametrize(("queries", "pool", "train"), [(4, 6, 6), (5, 9, 17), (12, 28, 3)])
def test_both_sides_select_the_same_rows(data: Path, queries: int, pool: int, train: int) -> None:
    ours = benchmark.select_rows(data, queries, pool, train)
    rows = [official.read_rows(data / rel) for rel in (RUBY_TEST, RUBY_VALID)]
    theirs = official.select_rows(*rows, queries, pool, train)
    ours_urls = [[p.key for p in part] for part in ours]
    assert ours_urls == [[str(r["url"]) for r in part] for part in theirs]
    assert [len(part) for part in ours] == [queries, min(pool, 28), train]
    assert {p.key for p in ours[0]} <= {p.key for p in ours[1]}  # the gold functions are kept
    assert len(set(ours_urls[1]) - set(ours_urls[0])) == min(pool, 28) - queries
    assert official.rows_digest(*ours_urls) == benchmark.rows_digest(*ours_urls)
    # the official side's rows carry the texts our pairs are built from
    assert [" ".join(r["code_tokens"]) for r in theirs[1]] == [p.code for p in ours[1]]


def test_the_row_digest_tells_different_rows_apart() -> None:
    urls = (["a", "b"], ["a", "b", "c"], ["d"])
    assert benchmark.rows_digest(*urls) != benchmark.rows_digest(["a"], ["b", "a", "c"], ["d"])
    assert benchmark.rows_digest(*urls) != benchmark.rows_digest(["a", "b"], ["a", "b"], ["c", "d"])


@pytest.mark.parametrize("side", ["ours", "official"])
def test_both_sides_accept_and_check_the_same_options(side: str) -> None:
    module = benchmark if side == "ours" else official
    needed = ["--data-root", "d"] + (["--official", "o"] if side == "official" else [])
    args = module.parse_args([*needed, "--threads", "2", "--json", "m.json", "--queries", "3",
                              "--pool", "5", "--batch", "2", "--steps", "1", "--repeats", "1",
                              "--model", "m", "--skip", "training"])  # fmt: skip
    assert (args.threads, args.json, args.queries, args.pool) == (2, Path("m.json"), 3, 5)
    assert (args.batch, args.steps, args.repeats, args.skip) == (2, 1, 1, "training")
    defaults = module.parse_args(needed)
    assert (defaults.queries, defaults.pool, defaults.batch) == (128, 256, 16)
    assert (defaults.steps, defaults.repeats, defaults.threads, defaults.json) == (3, 3, 1, None)
    for bad in (["--threads", "0"], ["--queries", "9", "--pool", "8"], ["--steps", "0"],
                ["--skip", "both"], ["--unknown"]):  # fmt: skip
        with pytest.raises(SystemExit) as exit_:
            module.parse_args([*needed, *bad])
        assert exit_.value.code == 2
    with pytest.raises(SystemExit):
        module.parse_args(["--threads", "1"])  # --data-root is required


def test_ours_writes_a_measurement_file(data: Path, tmp_path: Path) -> None:
    model = save_tiny_bert(tmp_path / "bert", WORDS)
    out = tmp_path / "bench" / "ours.json"
    benchmark.main(["--data-root", str(data), "--queries", "4", "--pool", "6", "--batch", "2",
                    "--steps", "2", "--repeats", "2", "--model", str(model),
                    "--json", str(out)])  # fmt: skip
    measured = read_measurements(out)  # common.bench's schema
    assert measured.side == "ours"
    assert [m.workload for m in measured.measurements] == [
        benchmark.WORKLOADS["evaluation"].format(queries=4, pool=6),
        benchmark.WORKLOADS["training"].format(batch=2),
    ]
    assert [m.unit for m in measured.measurements] == ["s/evaluation", "s/step"]
    for m in measured.measurements:
        assert len(m.cpu) == len(m.wall) == 2  # --repeats 2, --steps 2: warm-up excluded
        assert all(v > 0 for v in [*m.cpu, *m.wall])
        assert m.flops is not None and m.flops > 0  # the encoder's products
    urls = [[p.key for p in part] for part in benchmark.select_rows(data, 4, 6, 6)]
    assert measured.versions["ruby slice"] == benchmark.rows_digest(*urls)
    assert "torch" in measured.versions


def test_ours_skips_a_workload(data: Path, tmp_path: Path) -> None:
    model = save_tiny_bert(tmp_path / "bert", WORDS)
    out = tmp_path / "ours.json"
    benchmark.main(["--data-root", str(data), "--queries", "2", "--pool", "3", "--batch", "2",
                    "--steps", "1", "--repeats", "1", "--model", str(model), "--skip",
                    "training", "--json", str(out)])  # fmt: skip
    assert [m.unit for m in read_measurements(out).measurements] == ["s/evaluation"]


def test_official_measurement_file_has_the_common_bench_shape() -> None:
    measured = [{"workload": "w", "unit": "s/step", "cpu": [1.0, 2.0], "wall": [1.5, 2.5]}]
    content = official.measurement_file(measured, "0123456789ab")
    parsed = MeasurementFile.model_validate(content)
    assert parsed.side == "official"
    assert parsed.versions["ruby slice"] == "0123456789ab"
    assert parsed.measurements[0].cpu == [1.0, 2.0]


def test_official_slice_files_are_what_run_py_reads(data: Path, tmp_path: Path) -> None:
    rows = [official.read_rows(data / rel) for rel in (RUBY_TEST, RUBY_VALID)]
    kept, pool, _ = official.select_rows(*rows, 3, 5, 2)
    official.write_slice(tmp_path / "slice", {"queries": kept, "pool": pool})
    assert official.read_rows(tmp_path / "slice" / "queries.jsonl") == kept
    assert official.read_rows(tmp_path / "slice" / "pool.jsonl") == pool


def _busy_child() -> None:
    code = "import time\nwhile time.process_time() < 0.3: pass"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_official_evaluation_time_counts_its_joined_workers() -> None:
    """run.py's evaluate builds its batches in DataLoader worker processes: their CPU counts."""
    with_children, _ = official.samples(_busy_child, 1, children=True)
    without, _ = official.samples(_busy_child, 1)
    assert with_children[0] >= 0.3
    assert without[0] < 0.3


def test_the_bench_table_puts_the_paper_in_nox_bench() -> None:
    info = discover_papers(ROOT / "papers")[HERE.name]  # a fork has its own name
    assert has_bench(info)
    setup = read_bench_setup(info)
    repository, _, commit = (setup.checkout or "").partition("@")
    assert repository == "DeepSoftwareAnalytics/CoCoSoDa"
    assert re.fullmatch(r"[0-9a-f]{40}", commit) and commit.startswith("2f2bf8e")
    assert (ROOT / "environments" / f"{setup.official_environment}.txt").is_file()
    # the official code needs these of its environment (run.py and model.py's imports)
    requirements = (ROOT / "environments" / f"{setup.official_environment}.txt").read_text()
    assert "transformers==" in requirements

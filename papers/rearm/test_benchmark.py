"""The speed harnesses: both sides time the same workloads, recipe and data; ours runs end to end.

``benchmark_official.py`` runs in the official environment and is never imported here: its
literals are read from its source (``ast``), and its command line is run as a subprocess (it
imports nothing but the standard library before its checks). With ``REARM_OFFICIAL_DIR`` (a
checkout of MrShouxingMa/REARM), it also times the official code on tiny exported data.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from common.bench import read_measurements
from tests.support.bench import repository_imports
from tests.support.datasets import spec_for_local_files, temporary_dataset

from . import benchmark
from . import data as data_module
from .test_smoke import fake_encoder, write_tiny_movielens

OFFICIAL = Path(__file__).parent / "benchmark_official.py"
# official parser flag -> our config field, where the names differ
RENAMED = {"l_r": "lr", "num_layer": "n_layers", "num_epoch": "epochs"}


def _literal(name: str) -> Any:
    for node in ast.parse(OFFICIAL.read_text()).body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == name for t in node.targets
        ):
            return ast.literal_eval(node.value)
    raise AssertionError(f"{OFFICIAL.name} defines no {name}")


def test_both_sides_name_the_same_workloads_seed_and_folder() -> None:
    assert _literal("WORKLOADS") == benchmark.WORKLOADS
    assert set(benchmark.WORKLOADS) == {"preprocessing", "epoch", "evaluation"}
    assert len(set(benchmark.WORKLOADS.values())) == 3
    assert _literal("SEED") == benchmark.SEED == 2025
    assert _literal("DEFAULT_DATA") == benchmark.DEFAULT_DATA
    assert _literal("FILES") == (*benchmark.SPLIT_FILES, *benchmark.FEATURE_FILES)


def test_official_flags_are_our_ml100k_recipe() -> None:
    ours = benchmark.recipe().model_dump()
    flags = _literal("RECIPE")
    assert flags.pop("seed") == benchmark.SEED
    for flag, value in flags.items():
        assert ours[RENAMED.get(flag, flag)] == value, flag
    assert set(RENAMED) <= set(flags)


def test_official_harness_imports_nothing_from_the_repository() -> None:
    assert repository_imports(OFFICIAL) == set()
    # run by path, its folder (our model.py, data.py) is taken off sys.path before any import
    assert "here = Path(__file__).resolve().parent" in OFFICIAL.read_text()


def _official(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(OFFICIAL), *args], capture_output=True,
                          text=True, timeout=120, cwd=cwd)  # fmt: skip


def _fake_checkout(root: Path) -> Path:
    (root / "checkout" / "utils").mkdir(parents=True)
    (root / "checkout" / "utils" / "helper.py").write_text("")
    return root / "checkout"


def test_official_harness_options(tmp_path: Path) -> None:
    done = _official("--help")
    assert done.returncode == 0
    for option in ("--official", "--data", "--batches", "--repeats", "--prep-repeats",
                   "--eval-repeats", "--threads", "--json", "--data-root"):  # fmt: skip
        assert option in done.stdout
    # no checkout: one line, status 2
    done = _official("--official", str(tmp_path / "none"), "--data", str(tmp_path))
    assert done.returncode == 2 and "utils/helper.py" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    # no prepared data: one line naming the export command, status 2
    checkout = _fake_checkout(tmp_path)
    done = _official("--official", str(checkout), "--data", str(tmp_path / "missing"))
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1
    assert "python -m papers.rearm.benchmark --data-root DATA --export" in done.stderr
    # the default folder is relative to the working directory (nox: the repository root)
    done = _official("--official", str(checkout), cwd=tmp_path)
    assert done.returncode == 2 and benchmark.DEFAULT_DATA in done.stderr
    done = _official("--official", str(checkout), "--batches", "0")
    assert done.returncode == 2 and "--batches" in done.stderr


def _fake_kg(item_entity: Any, triples: Any, n_items: int, dim: int, seed: int) -> torch.Tensor:
    return torch.randn(n_items, dim, generator=torch.Generator().manual_seed(seed))


@pytest.fixture()
def tiny(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Generated ml-100k files (50 users: the recipe's user kNN takes 40), fake MiniLM, and
    seeded random KG features (the SVD of a tiny KG matrix, rank 39 of 40, is not reproducible
    from one load to the next: the export check would fail on it; the real one, rank 128, is)."""
    monkeypatch.setattr(data_module, "minilm_encoder", fake_encoder)
    monkeypatch.setattr(data_module, "kg_features", _fake_kg)
    monkeypatch.setenv("CLREPRO_WORK_DIR", str(tmp_path / "work"))
    write_tiny_movielens(tmp_path / "data", users=50, items=40)
    spec = spec_for_local_files(
        data_module.ML100K, tmp_path / "data", list(data_module.ML100K_FILES.values())
    )
    with temporary_dataset(spec):
        yield tmp_path


def test_export_writes_the_official_layout(tiny: Path) -> None:
    folder = tiny / "export"
    argv = ["--data-root", str(tiny / "data"), "--export", str(folder)]
    assert benchmark.main(argv) == 0
    train = np.load(folder / "train.npy")
    assert train.dtype == np.int64 and train.shape[0] == 2
    users, items = set(train[0]), set(train[1])
    for name in ("valid.npy", "test.npy"):
        part = np.load(folder / name)
        users |= set(part[0])
        items |= set(part[1])
    assert users == set(range(50)) and items == set(range(len(items)))
    assert np.load(folder / "text_feat.npy").shape == (len(items), 384)
    image = np.load(folder / "image_feat.npy")
    assert image.dtype == np.float32 and image.shape[0] == len(items)
    provenance = json.loads((folder / "provenance.json").read_text())
    assert "NOT visual" in provenance["image_feat.npy"]
    assert set(provenance["sha256"]) == {*benchmark.SPLIT_FILES, *benchmark.FEATURE_FILES}


def test_our_side_times_the_three_workloads(tiny: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder, out = tiny / "export", tiny / "ours.json"
    assert benchmark.main(["--data-root", str(tiny / "data"), "--export", str(folder)]) == 0
    timing = ["--batches", "2", "--repeats", "2", "--prep-repeats", "1", "--eval-repeats", "2"]
    argv = ["--data-root", str(tiny / "data"), "--data", str(folder), "--json", str(out), *timing]
    assert benchmark.main(argv) == 0
    assert "holds the same splits and features" in capsys.readouterr().out
    measured = read_measurements(out)
    assert measured.side == "ours"
    by_name = {m.workload: m for m in measured.measurements}
    assert set(by_name) == set(benchmark.WORKLOADS.values())
    epoch = by_name[benchmark.WORKLOADS["epoch"]]
    assert epoch.unit == "s/epoch" and len(epoch.cpu) == len(epoch.wall) == 2
    assert epoch.flops is not None and epoch.flops > 0  # the dense products of an epoch
    assert len(by_name[benchmark.WORKLOADS["preprocessing"]].cpu) == 1
    assert all(v > 0 for m in measured.measurements for v in m.cpu + m.wall)


def test_our_side_refuses_a_stale_export(tiny: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tiny / "export"
    assert benchmark.main(["--data-root", str(tiny / "data"), "--export", str(folder)]) == 0
    train = np.load(folder / "train.npy")
    np.save(folder / "train.npy", train[:, 1:])
    assert benchmark.main(["--data-root", str(tiny / "data"), "--data", str(folder)]) == 2
    assert "train.npy differs" in capsys.readouterr().out.splitlines()[-1]
    np.save(folder / "train.npy", train)  # restored: the next file is checked
    text = np.load(folder / "text_feat.npy")
    np.save(folder / "text_feat.npy", text * (1 + 1e-7))  # last bits (BLAS threads): the same
    assert benchmark.main(["--data-root", str(tiny / "data"), "--data", str(folder),
                           "--prep-repeats", "1", "--batches", "1", "--repeats", "1",
                           "--eval-repeats", "1"]) == 0  # fmt: skip
    np.save(folder / "text_feat.npy", text + 0.01)
    assert benchmark.main(["--data-root", str(tiny / "data"), "--data", str(folder)]) == 2
    assert "text_feat.npy differs" in capsys.readouterr().out.splitlines()[-1]
    assert benchmark.main(["--data-root", str(tiny / "data"), "--data", str(tiny / "no")]) == 2
    assert "no prepared ml-100k folder" in capsys.readouterr().out
    (folder / "valid.npy").unlink()
    assert benchmark.main(["--data-root", str(tiny / "data"), "--data", str(folder)]) == 2
    assert "valid.npy is missing" in capsys.readouterr().out


@pytest.mark.skipif(
    not (Path(os.environ.get("REARM_OFFICIAL_DIR", "-")) / "utils" / "helper.py").is_file(),
    reason="set REARM_OFFICIAL_DIR to a checkout of MrShouxingMa/REARM (utils/helper.py)",
)
def test_official_side_on_the_exported_folder(tiny: Path) -> None:
    folder, out = tiny / "export", tiny / "official.json"
    assert benchmark.main(["--data-root", str(tiny / "data"), "--export", str(folder)]) == 0
    done = _official("--official", os.environ["REARM_OFFICIAL_DIR"], "--data", str(folder),
                     "--batches", "1", "--repeats", "1", "--json", str(out))  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    measured = json.loads(out.read_text())
    assert measured["side"] == "official"
    names = [m["workload"] for m in measured["measurements"]]
    assert sorted(names) == sorted(benchmark.WORKLOADS.values())

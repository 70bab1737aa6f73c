"""The speed harnesses: both sides time the same work; ours runs end to end and refuses to time
when its losses differ from the official reference.

``benchmark_official.py`` runs in the official environment and is never imported here: its
literals and functions are read from its source (``ast``), and its command line is run as a
subprocess (it imports nothing but the standard library before its checks). With
``PIXPRO_OFFICIAL_DIR`` (a checkout of zdaxie/PixPro), the official code itself writes the
reference that ours must match.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from common.bench import read_measurements
from common.config import load_config
from common.errors import ClreproError
from tests.support.bench import repository_imports

from . import benchmark
from .train import Config

OFFICIAL = Path(__file__).parent / "benchmark_official.py"
OURS = Path(__file__).parent / "benchmark.py"
SHARED = ("WORKLOADS", "SEED", "WIDTH", "HIDDEN", "OUT", "GAMMA", "THRESHOLD", "MOMENTUM",
          "TOTAL_STEPS", "BASE_LR", "SGD_MOMENTUM", "WEIGHT_DECAY", "CHECK_STEPS",
          "REFERENCE")  # fmt: skip
TINY = ["--batch", "4", "--image-size", "16"]


def _nodes(path: Path) -> dict[str, ast.AST]:
    nodes: dict[str, ast.AST] = {}
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.FunctionDef):
            nodes[node.name] = node
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    nodes[target.id] = node.value
    return nodes


def test_both_sides_share_the_constants_and_the_inputs() -> None:
    official, ours = _nodes(OFFICIAL), _nodes(OURS)
    for name in SHARED:
        assert name in official, f"{OFFICIAL.name} defines no {name}"
        assert ast.literal_eval(official[name]) == getattr(benchmark, name), name
    # the inputs are drawn by the same code on both sides
    for name in ("views", "projections"):
        assert ast.dump(official[name]) == ast.dump(ours[name]), name
    assert set(benchmark.WORKLOADS) == {"step", "ppm"}


def test_the_constants_are_our_recipe() -> None:
    reduced = load_config(Config, Path(__file__).parent / "configs" / "reduced.yaml",
                          "fashion-mnist", fixed={"variant": "pixpro"})  # fmt: skip
    assert (reduced.width, reduced.gamma, reduced.pos_threshold, reduced.momentum) == (
        benchmark.WIDTH, benchmark.GAMMA, benchmark.THRESHOLD, benchmark.MOMENTUM,
    )  # fmt: skip
    assert reduced.transform_layers == 1 and reduced.proj_hidden == benchmark.HIDDEN
    model = benchmark.build()
    assert model.pixel and model.ins_weight == 0  # no instance branch, as the official scripts


def test_official_harness_imports_nothing_from_the_repository() -> None:
    assert repository_imports(OFFICIAL) == set()
    assert "here = Path(__file__).resolve().parent" in OFFICIAL.read_text()


def _official(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    return subprocess.run([sys.executable, str(OFFICIAL), *args], capture_output=True,
                          text=True, timeout=300, env=env)  # fmt: skip


def test_official_harness_options(tmp_path: Path) -> None:
    done = _official("--help")
    assert done.returncode == 0
    for option in ("--official", "--batch", "--image-size", "--repeats", "--warmup",
                   "--threads", "--reference", "--json"):  # fmt: skip
        assert option in done.stdout
    done = _official("--official", str(tmp_path / "none"))
    assert done.returncode == 2 and "contrast/models/PixPro.py" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    done = _official("--official", str(tmp_path), "--image-size", "30")
    assert done.returncode == 2 and "--image-size" in done.stderr


def test_views_are_seeded_crops_half_flipped() -> None:
    v1, v2, b1, b2 = benchmark.views(64, 16, 0)
    assert v1.shape == v2.shape == (64, 3, 16, 16) and not torch.equal(v1, v2)
    for boxes in (b1, b2):
        assert boxes.shape == (64, 4) and boxes.min() >= 0 and boxes.max() <= 1
        flipped = boxes[:, 0] > boxes[:, 2]
        assert 0 < int(flipped.sum()) < 64
        assert bool((boxes[:, 3] > boxes[:, 1]).all())  # y never flipped
    again = benchmark.views(64, 16, 0)
    assert all(torch.equal(a, b) for a, b in zip(again, (v1, v2, b1, b2), strict=True))
    assert not torch.equal(benchmark.views(64, 16, 1)[2], b1)


# ours -> official, written out by hand from the official PixPro.py / MLP2d names
TO_OFFICIAL = {
    "encoder.features.0.weight": "encoder.features.0.weight",
    "target_encoder.features.9.running_var": "encoder_k.features.9.running_var",
    "online.projector.0.weight": "projector.linear1.weight",
    "online.projector.1.num_batches_tracked": "projector.bn1.num_batches_tracked",
    "online.projector.3.bias": "projector.linear2.bias",
    "target_heads.projector.1.running_mean": "projector_k.bn1.running_mean",
    "target_heads.projector.3.weight": "projector_k.linear2.weight",
    "online.ppm.value.weight": "value_transform.weight",
}


def _official_names(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    back = {ours: theirs for theirs, ours in benchmark.PREFIXES.items()}
    layers = {v: k for k, v in benchmark.MLP2D.items()}
    named = {}
    for name, value in state.items():
        prefix = max((p for p in back if name.startswith(p)), key=len)
        rest = name[len(prefix) :]
        if "projector" in prefix:
            layer, _, tail = rest.partition(".")
            rest = f"{layers[layer]}.{tail}"
        named[back[prefix] + rest] = value
    return named


def test_official_parameter_names_map_onto_ours() -> None:
    state = benchmark.build().state_dict()
    mapped = benchmark.from_official({TO_OFFICIAL[k]: state[k] for k in TO_OFFICIAL})
    assert set(mapped) == set(TO_OFFICIAL)
    assert all(mapped[k] is state[k] for k in TO_OFFICIAL)
    assert set(benchmark.from_official(_official_names(state))) == set(state)
    with pytest.raises(ClreproError, match="unexpected official parameter"):
        benchmark.from_official({"projector_instance.linear1.weight": state[next(iter(state))]})


def _our_reference(path: Path, batch: int = 4, size: int = 16) -> dict[str, object]:
    """A reference in the official format, made by our own code (what the official code wrote
    is checked in test_official_side_writes_a_reference_ours_matches)."""
    torch.manual_seed(1)
    model = benchmark.build()
    model.train()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    step = benchmark.trainer(model, batch, benchmark.views(batch, size, benchmark.SEED))
    losses = [step() for _ in range(benchmark.CHECK_STEPS)]
    model.load_state_dict(state)
    _, _, b1, b2 = benchmark.views(batch, size, benchmark.SEED)
    ppm_loss = benchmark.propagation(model.online["ppm"],  # type: ignore[arg-type]
                                     benchmark.projections(batch, size, benchmark.SEED),
                                     (b1, b2))()  # fmt: skip
    reference = {"batch": batch, "image_size": size, "state_dict": _official_names(state),
                 "losses": losses, "ppm_loss": ppm_loss}  # fmt: skip
    torch.save(reference, path)
    return reference


def test_check_reference_accepts_the_same_losses_only(tmp_path: Path) -> None:
    path = tmp_path / "reference.pt"
    reference = _our_reference(path)
    assert "same losses as the official code" in benchmark.check_reference(path)
    losses = list(reference["losses"])  # type: ignore[call-overload]
    torch.save({**reference, "losses": [*losses[:1], losses[1] + 1e-3, *losses[2:]]}, path)
    with pytest.raises(ClreproError, match="training step 2 differs"):
        benchmark.check_reference(path)
    torch.save({**reference, "ppm_loss": float(reference["ppm_loss"]) + 1e-3}, path)  # type: ignore[arg-type]
    with pytest.raises(ClreproError, match="ppm workload differs"):
        benchmark.check_reference(path)
    state = dict(reference["state_dict"])  # type: ignore[call-overload]
    state.pop("projector.bn1.weight")
    torch.save({**reference, "state_dict": state}, path)
    with pytest.raises(ClreproError, match="do not fit our model"):
        benchmark.check_reference(path)
    path.write_text("not a checkpoint")
    with pytest.raises(ClreproError, match="cannot read"):
        benchmark.check_reference(path)


def test_our_side_times_both_workloads(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out, missing = tmp_path / "ours.json", tmp_path / "none.pt"
    argv = [*TINY, "--repeats", "2", "--warmup", "1", "--json", str(out)]
    assert benchmark.main([*argv, "--reference", str(missing)]) == 0
    assert "equivalence not checked" in capsys.readouterr().out
    measured = read_measurements(out)
    assert measured.side == "ours"
    names = benchmark.workload_names(4, 16)
    assert [m.workload for m in measured.measurements] == [names["step"], names["ppm"]]
    assert "batch 4, 3x16x16" in names["step"] and "256x4x4" in names["ppm"]
    for m in measured.measurements:
        assert m.unit == "s/step" and len(m.cpu) == len(m.wall) == 2
        assert all(v > 0 for v in m.cpu + m.wall)
        assert m.flops is not None and m.flops > 0  # convolutions and products
    reference = tmp_path / "reference.pt"
    data = _our_reference(reference)
    assert benchmark.main([*argv, "--reference", str(reference)]) == 0
    assert "same losses as the official code" in capsys.readouterr().out
    torch.save({**data, "losses": [v + 0.01 for v in data["losses"]]}, reference)  # type: ignore[attr-defined]
    out.unlink()
    assert benchmark.main([*argv, "--reference", str(reference)]) == 2
    assert "differs from the official code" in capsys.readouterr().out
    assert not out.exists()  # nothing timed


@pytest.mark.skipif(
    not (Path(os.environ.get("PIXPRO_OFFICIAL_DIR", "-")) / "contrast/models/PixPro.py").is_file(),
    reason="set PIXPRO_OFFICIAL_DIR to a checkout of zdaxie/PixPro (contrast/models/PixPro.py)",
)
def test_official_side_writes_a_reference_ours_matches(tmp_path: Path) -> None:
    reference, out = tmp_path / "reference.pt", tmp_path / "official.json"
    checkout = os.environ["PIXPRO_OFFICIAL_DIR"]
    done = _official("--official", checkout, *TINY, "--repeats", "1", "--warmup", "0",
                     "--reference", str(reference), "--json", str(out))  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert "same losses as the official code" in benchmark.check_reference(reference)
    measured = json.loads(out.read_text())
    assert measured["side"] == "official"
    names = [m["workload"] for m in measured["measurements"]]
    assert names == list(benchmark.workload_names(4, 16).values())

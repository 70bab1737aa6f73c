"""CPU seconds of a PixPro training step and of the pixel propagation + loss alone (ours), on the
same synthetic views, sizes and backbone as ``benchmark_official.py`` times the official code.

    python -m papers.pixpro.benchmark [--batch 32] [--image-size 64] [--repeats 10]
        [--warmup 2] [--threads 1] [--reference work/bench/pixpro/reference.pt] [--json FILE]

The work (the same on both sides; ``test_benchmark.py`` compares the constants and ``views``):

- the inputs: :func:`views`, a seeded pair of ``--batch`` 3 x ``--image-size``² "augmented views"
  (standard normal pixels: the cost of a step does not depend on their content) and their crop
  boxes ``(x_left, y_top, x_right, y_bottom)`` in the original image, half of them horizontally
  flipped (x entries swapped, the official ``transform_coord`` convention); augmentation is not
  timed on either side.
- the model: ``model.Pretrainer`` for ``pixpro`` (no instance branch, as in the official
  ``pixpro_base_r50_*`` scripts, ``--pixpro-ins-loss-weight 0``) on our small CNN (width 16: a
  64-channel map at stride 4, 16 x 16 for 64 x 64 views), projector 64 -> 256 -> 256 (1x1 convs,
  BN), pixel propagation with gamma 2 and one 1x1 conv for g, threshold 0.7, EMA from 0.99 by a
  cosine over ``TOTAL_STEPS`` steps. The official side builds its ``PixPro`` class around the same
  CNN (the projector's output 256 is the official one, which its value transform hardcodes; the
  hidden width is ours, 256, not 4096).
- the optimiser: plain SGD (momentum 0.9, weight decay 1e-5, lr 0.03 x batch/256), the official
  ``--optimizer sgd`` branch, on both sides (our training uses Adam; the official recipe LARS);
  no learning-rate schedule on either side.

Timed, process CPU and wall seconds per step, ``--repeats`` samples after ``--warmup`` steps:

- ``step``: the EMA update, online encoder + projector + propagation of both views, momentum
  encoder + projector of both views, the pixel consistency loss in both directions, backward,
  SGD step (``train.train_epoch``'s loop body without the augmentation and the schedule).
- ``ppm``: ``pixpro.PixelPropagation`` of two [batch, 256, h, w] projections and
  ``pixpro.pixel_consistency`` in both directions against fixed normalised targets, forward and
  backward.

Equivalence: ``benchmark_official.py`` writes ``--reference`` (default ``REFERENCE``): the
official model's initial weights and its losses over ``CHECK_STEPS`` training steps and of the
``ppm`` workload. This side loads those weights into ours (:func:`from_official`), repeats the
steps and refuses to time (exit 2, one line) unless every loss agrees to ``RTOL``/``ATOL``. Without
the file it says that nothing was checked, and times.

``--json`` writes a ``common.bench`` measurement file. The workloads carry the same names on both
sides (``WORKLOADS``).
"""

from __future__ import annotations

import argparse
import math
import os
import pickle
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from common.bench import Measurement, count_flops, positive_int, time_samples, write_measurements
from common.errors import ClreproError
from common.records import package_versions

from .model import Pretrainer
from .pixpro import PixelPropagation, momentum_at, pixel_consistency

# Kept identical to benchmark_official.py's (test_benchmark.py compares them).
WORKLOADS = {
    "step": "training step, pixpro (small CNN, batch {batch}, 3x{size}x{size} views)",
    "ppm": "pixel propagation + consistency loss, fwd+bwd (batch {batch}, 256x{map}x{map})",
}
SEED = 0
WIDTH = 16  # the small CNN's width: 4 * WIDTH = 64 channels at stride 4
HIDDEN = 256  # projector hidden width (official: 4096)
OUT = 256  # projector output (the official value transform is conv1x1(256, 256))
GAMMA = 2.0  # --pixpro-p
THRESHOLD = 0.7  # --pixpro-pos-ratio
MOMENTUM = 0.99  # --pixpro-momentum
TOTAL_STEPS = 1000  # the EMA schedule's length (official K)
BASE_LR = 0.03  # official --base-lr default, scaled by batch / 256
SGD_MOMENTUM = 0.9
WEIGHT_DECAY = 1e-5
CHECK_STEPS = 3
REFERENCE = "work/bench/pixpro/reference.pt"  # relative to the repository root
RTOL, ATOL = 1e-4, 1e-5
# official parameter names -> ours (a prefix each; inside the projectors MLP2d -> Sequential)
PREFIXES = {
    "encoder.": "encoder.",
    "encoder_k.": "target_encoder.",
    "projector.": "online.projector.",
    "projector_k.": "target_heads.projector.",
    "value_transform.": "online.ppm.value.",
}
MLP2D = {"linear1": "0", "bn1": "1", "linear2": "3"}


def views(batch: int, size: int, seed: int) -> tuple[Any, Any, Any, Any]:
    """Two seeded batches of views and their crop boxes (x0, y0, x1, y1), half flipped."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    v1 = torch.randn(batch, 3, size, size, generator=gen)
    v2 = torch.randn(batch, 3, size, size, generator=gen)
    boxes = []
    for _ in range(2):
        extent = 0.3 + 0.7 * torch.rand(batch, 2, generator=gen)
        start = torch.rand(batch, 2, generator=gen) * (1 - extent)
        box = torch.cat([start, start + extent], dim=1)
        flip = torch.rand(batch, generator=gen) < 0.5
        box[flip] = box[flip][:, [2, 1, 0, 3]]
        boxes.append(box)
    return v1, v2, boxes[0], boxes[1]


def projections(batch: int, size: int, seed: int) -> tuple[Any, Any, Any, Any]:
    """The ``ppm`` workload's inputs: two projections [batch, 256, size/4, size/4] and two
    L2-normalised targets."""
    import torch

    gen = torch.Generator().manual_seed(seed + 1)
    side = size // 4
    p1, p2, t1, t2 = (torch.randn(batch, 256, side, side, generator=gen) for _ in range(4))
    t1 = t1 / t1.norm(dim=1, keepdim=True)
    t2 = t2 / t2.norm(dim=1, keepdim=True)
    return p1, p2, t1, t2


def workload_names(batch: int, size: int) -> dict[str, str]:
    return {k: v.format(batch=batch, size=size, map=size // 4) for k, v in WORKLOADS.items()}


def build() -> Pretrainer:
    return Pretrainer("pixpro", 3, WIDTH, HIDDEN, OUT, GAMMA, 1, THRESHOLD, 0.0, 0.1)


def optimizer(model: Pretrainer, batch: int) -> torch.optim.SGD:
    params = [p for p in model.parameters() if p.requires_grad]
    return torch.optim.SGD(params, lr=BASE_LR * batch / 256, momentum=SGD_MOMENTUM,
                           weight_decay=WEIGHT_DECAY)  # fmt: skip


def trainer(model: Pretrainer, batch: int, inputs: tuple[Tensor, ...]) -> Callable[[], float]:
    """One call = one training step (``train.train_epoch``'s body); returns the loss."""
    opt = optimizer(model, batch)
    v1, v2, b1, b2 = inputs
    state = {"step": 0}

    def step() -> float:
        model.momentum_update(momentum_at(state["step"], TOTAL_STEPS, MOMENTUM))
        state["step"] += 1
        loss = model.loss(v1, v2, b1, b2)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return float(loss.detach())

    return step


def propagation(ppm: PixelPropagation, inputs: tuple[Tensor, ...],
                boxes: tuple[Tensor, Tensor]) -> Callable[[], float]:  # fmt: skip
    """One call = the ``ppm`` workload, forward and backward; returns the loss."""
    p1, p2, t1, t2 = (t.clone().requires_grad_(i < 2) for i, t in enumerate(inputs))
    b1, b2 = boxes

    def run() -> float:
        ppm.zero_grad(set_to_none=True)
        p1.grad = p2.grad = None
        loss = pixel_consistency(ppm(p1), t2, b1, b2, THRESHOLD) + pixel_consistency(
            ppm(p2), t1, b2, b1, THRESHOLD
        )
        loss.backward()
        return float(loss.detach())

    return run


def from_official(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """The official ``PixPro`` state dict (around the same CNN) under our parameter names."""
    mapped = {}
    for name, value in state.items():
        prefix = next((p for p in PREFIXES if name.startswith(p)), None)
        if prefix is None:
            raise ClreproError(f"unexpected official parameter {name!r}")
        rest = name[len(prefix) :]
        if prefix.startswith("projector"):
            layer, _, tail = rest.partition(".")
            rest = f"{MLP2D[layer]}.{tail}"
        mapped[PREFIXES[prefix] + rest] = value
    return mapped


def check_reference(path: Path) -> str:
    """Our losses on the official reference's weights and inputs; ClreproError unless every
    one agrees with the official losses to RTOL/ATOL. Returns a one-line summary."""
    try:
        reference = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError, pickle.UnpicklingError) as error:
        raise ClreproError(f"cannot read the official reference {path}: {error}") from None
    batch, size = int(reference["batch"]), int(reference["image_size"])
    model = build()
    try:
        model.load_state_dict(from_official(reference["state_dict"]), strict=True)
    except RuntimeError as error:
        first = str(error).splitlines()[0]
        raise ClreproError(f"{path}: the official weights do not fit our model: {first}") from None
    model.train()
    step = trainer(model, batch, views(batch, size, SEED))
    ours = [step() for _ in range(len(reference["losses"]))]
    ppm = PixelPropagation(OUT, GAMMA, 1)
    value = {k.split(".")[-1]: v for k, v in reference["state_dict"].items()
             if k.startswith("value_transform.")}  # fmt: skip
    ppm.value.load_state_dict(value)
    _, _, b1, b2 = views(batch, size, SEED)
    ours.append(propagation(ppm, projections(batch, size, SEED), (b1, b2))())
    theirs = [float(v) for v in (*reference["losses"], reference["ppm_loss"])]
    for i, (a, b) in enumerate(zip(ours, theirs, strict=True)):
        if not math.isclose(a, b, rel_tol=RTOL, abs_tol=ATOL):
            what = f"training step {i + 1}" if i < len(ours) - 1 else "the ppm workload"
            raise ClreproError(f"{path}: loss of {what} differs from the official code: ours "
                               f"{a:.7f}, official {b:.7f}")  # fmt: skip
    return (f"same losses as the official code ({path}: batch {batch}, {size}x{size}; "
            + ", ".join(f"{v:.6f}" for v in ours) + ")")  # fmt: skip


def measure(batch: int, size: int, repeats: int, warmup: int) -> list[Measurement]:
    names = workload_names(batch, size)
    torch.manual_seed(SEED)
    model = build()
    model.train()
    inputs = views(batch, size, SEED)
    step = trainer(model, batch, inputs)
    step_cpu, step_wall = time_samples(step, repeats, warmup)
    step_flops = count_flops(step)
    ppm = PixelPropagation(OUT, GAMMA, 1)
    run = propagation(ppm, projections(batch, size, SEED), (inputs[2], inputs[3]))
    ppm_cpu, ppm_wall = time_samples(run, repeats, warmup)
    return [
        Measurement(
            workload=names["step"], unit="s/step", cpu=step_cpu, wall=step_wall, flops=step_flops
        ),
        Measurement(
            workload=names["ppm"], unit="s/step", cpu=ppm_cpu, wall=ppm_wall, flops=count_flops(run)
        ),
    ]


def _image_size(text: str) -> int:
    value = positive_int(text)
    if value % 4:
        raise argparse.ArgumentTypeError(f"must be a multiple of 4 (stride 4), got {value}")
    return value


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m papers.pixpro.benchmark",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--batch", type=positive_int, default=32)
    p.add_argument("--image-size", type=_image_size, default=64)
    p.add_argument("--repeats", type=positive_int, default=10, help="timed steps per workload")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    p.add_argument("--threads", type=positive_int, default=1)
    p.add_argument("--reference", type=Path, default=Path(REFERENCE),
                   help="the official side's weights and losses, checked first")  # fmt: skip
    p.add_argument("--official", default=None, help="ignored (the official side's checkout)")
    p.add_argument("--json", type=Path, default=None, help="write the measurement file here")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.reference.is_file():
        try:
            print(check_reference(args.reference), flush=True)
        except ClreproError as error:
            print(f"error: {error}")
            return 2
    else:
        print(f"no official reference at {args.reference}: equivalence not checked "
              "(benchmark_official.py writes it)", flush=True)  # fmt: skip
    print(f"threads={torch.get_num_threads()} load average={os.getloadavg()[0]:.2f} "
          f"batch={args.batch} image={args.image_size}", flush=True)  # fmt: skip
    measured = measure(args.batch, args.image_size, args.repeats, args.warmup)
    for m in measured:
        print(f"{m.workload}: median {statistics.median(m.cpu):.4f} CPU {m.unit} "
              f"(min {min(m.cpu):.4f}; wall median {statistics.median(m.wall):.4f})",
              flush=True)  # fmt: skip
    if args.json is not None:
        write_measurements(args.json, "ours", measured, package_versions(("torch", "numpy")))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

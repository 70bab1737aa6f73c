"""Time the official PixPro code (zdaxie/PixPro) the way ``benchmark.py`` times ours.

    OMP_NUM_THREADS=1 python papers/pixpro/benchmark_official.py --official DIR [--batch 32] \\
        [--image-size 64] [--repeats 10] [--warmup 2] [--threads 1] \\
        [--reference work/bench/pixpro/reference.pt] [--json FILE]

``nox -s bench -- pixpro`` runs this in the official environment (``environments/vision.txt``,
ours: the official modules it imports, ``contrast/models/PixPro.py`` and ``base.py``, need only
torch and numpy) with DIR = ``../scratch/official/zdaxie+PixPro`` (a ``git archive`` of
e390d6b, or ``--official DIR``), then ``benchmark.py``, and records both (``common.bench``).
Run by its path; it imports the official modules from DIR through ``sys.path`` and nothing from
this repository, and nothing in the repository imports it.

The work, the same as ``benchmark.py``'s (``test_benchmark.py`` compares the constants and
:func:`views`): a seeded pair of ``--batch`` 3 x ``--image-size``² views with their crop boxes
(half flipped); the official ``PixPro`` class (``--pixpro-p 2 --pixpro-momentum 0.99
--pixpro-pos-ratio 0.7 --pixpro-transform-layer 1 --pixpro-ins-loss-weight 0``, the official
scripts' values) around :class:`SmallCNN` (our 3-block CNN of width 16, written out here: the
official file must not import ours; the official ResNet-50 does not fit one CPU thread), its
projector 64 -> 256 -> 256; SGD as ``main_pretrain.build_model``'s ``sgd`` branch (momentum 0.9,
weight decay 1e-5, lr 0.03 x batch/256), no schedule.

Timed, process CPU and wall seconds per step, ``--repeats`` samples after ``--warmup`` steps:

- ``step``: ``main_pretrain.train``'s loop body on the views: ``loss = model(im1, im2, coord1,
  coord2)`` (online encoder + projector + ``featprop`` of both views, the momentum update, the
  momentum encoder + projector, ``regression_loss`` both ways), ``optimizer.zero_grad()``,
  ``loss.backward()``, ``optimizer.step()``.
- ``ppm``: ``model.featprop`` + ``F.normalize`` of two [batch, 256, h, w] projections and the
  module's ``regression_loss`` both ways against fixed normalised targets, forward and backward.

``--reference`` (default ``REFERENCE``): before timing, a fresh model's initial weights and its
losses over ``CHECK_STEPS`` steps and of the ``ppm`` workload are saved there; ``benchmark.py``
loads them into ours and refuses to time unless its losses agree.

Adaptations, all at runtime in this process (the checkout is not edited):

- ``get_world_size`` (imported into ``contrast.models.PixPro``, used for the EMA schedule's
  length) returns 1: no process group on CPU. ``nn.SyncBatchNorm`` (the official conversion is
  kept) then runs ``F.batch_norm``, as it does on one GPU (world size 1: no sync).
- ``Proj_Head`` (module-level in ``contrast.models.PixPro``, called without arguments) gets
  ``in_dim=64`` (the CNN's channels; official 2048, ResNet-50 C5) and ``inner_dim=256``
  (official 4096); out 256 stays, which the value transform ``conv1x1(256, 256)`` needs.
- ``base_encoder`` is :class:`SmallCNN`, called as the official code calls a ResNet
  (``low_dim``/``head_type`` accepted and ignored: ``early_return`` returns the feature map).
- ``args``: a namespace with the ``pixpro_*`` values above, ``batch_size`` = ``--batch``,
  ``num_instances`` = batch x ``TOTAL_STEPS``, ``epochs`` 1, ``start_epoch`` 1 (so K =
  ``TOTAL_STEPS``, k = 0: the same EMA schedule as ours).
- ``main_pretrain.py`` is not imported (tensorboard, apex, NCCL, ``.cuda()``); its
  ``build_model``/``train`` lines are repeated here without ``.cuda()``,
  ``DistributedDataParallel`` (one process: nothing to all-reduce), apex AMP (``O0``) or LARS
  (the ``sgd`` branch), the scheduler and the logging. ``PixPro.py`` itself calls no ``.cuda()``.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import sys
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

# Kept identical to benchmark.py's (test_benchmark.py compares them).
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


def fail(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


def small_cnn(nn: Any) -> Any:
    """Our ``model.DenseCNN`` (3 conv-BN-ReLU blocks, w, 2w, 4w channels, max-pooling after the
    first two), parameter names included, as a ResNet-like constructor for ``PixPro``."""

    class SmallCNN(nn.Module):  # type: ignore[misc]
        def __init__(self, low_dim: int = 0, head_type: str = "early_return") -> None:
            super().__init__()
            chans = (3, WIDTH, 2 * WIDTH, 4 * WIDTH)
            layers: list[Any] = []
            for i in range(3):
                layers += [nn.Conv2d(chans[i], chans[i + 1], 3, 1, 1, bias=False),
                           nn.BatchNorm2d(chans[i + 1]), nn.ReLU()]  # fmt: skip
                if i < 2:
                    layers.append(nn.MaxPool2d(2))
            self.features = nn.Sequential(*layers)

        def forward(self, x: Any) -> Any:
            return self.features(x)

    return SmallCNN


def official_model(pixpro_module: Any, batch: int) -> Any:
    """The official ``PixPro`` with the adaptations of the docstring."""
    from torch import nn

    pixpro_module.get_world_size = lambda: 1
    if not isinstance(pixpro_module.Proj_Head, functools.partial):
        pixpro_module.Proj_Head = functools.partial(
            pixpro_module.Proj_Head, in_dim=4 * WIDTH, inner_dim=HIDDEN, out_dim=OUT
        )
    args = types.SimpleNamespace(
        feature_dim=128,
        head_type="early_return",
        pixpro_p=GAMMA,
        pixpro_momentum=MOMENTUM,
        pixpro_pos_ratio=THRESHOLD,
        pixpro_clamp_value=0.0,
        pixpro_transform_layer=1,
        pixpro_ins_loss_weight=0.0,
        num_instances=batch * TOTAL_STEPS,
        batch_size=batch,
        epochs=1,
        start_epoch=1,
    )
    return pixpro_module.PixPro(small_cnn(nn), args)


def official_optimizer(model: Any, batch: int) -> Any:
    import torch

    # main_pretrain.build_model, --optimizer sgd, world size 1
    return torch.optim.SGD(model.parameters(), lr=batch * 1 / 256 * BASE_LR,
                           momentum=SGD_MOMENTUM, weight_decay=WEIGHT_DECAY)  # fmt: skip


def trainer(model: Any, batch: int, inputs: tuple[Any, ...]) -> Callable[[], float]:
    """One call = ``main_pretrain.train``'s loop body (no AMP, scheduler, logging)."""
    optimizer = official_optimizer(model, batch)
    im1, im2, coord1, coord2 = inputs

    def step() -> float:
        loss = model(im1, im2, coord1, coord2)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return float(loss.detach())

    return step


def propagation(model: Any, pixpro_module: Any, inputs: tuple[Any, ...],
                boxes: tuple[Any, Any]) -> Callable[[], float]:  # fmt: skip
    """One call = the official propagation + normalisation + loss both ways, fwd and bwd."""
    import torch.nn.functional as F

    p1, p2, t1, t2 = (t.clone().requires_grad_(i < 2) for i, t in enumerate(inputs))
    b1, b2 = boxes
    loss_fn = pixpro_module.regression_loss

    def run() -> float:
        model.value_transform.zero_grad(set_to_none=True)
        p1.grad = p2.grad = None
        pred_1 = F.normalize(model.featprop(p1), dim=1)
        pred_2 = F.normalize(model.featprop(p2), dim=1)
        loss = loss_fn(pred_1, t2, b1, b2, model.pixpro_pos_ratio) + loss_fn(
            pred_2, t1, b2, b1, model.pixpro_pos_ratio
        )
        loss.backward()
        return float(loss.detach())

    return run


def write_reference(pixpro_module: Any, batch: int, size: int, path: str) -> list[float]:
    """A fresh model's initial weights, its losses over CHECK_STEPS steps and the ppm loss."""
    import torch

    torch.manual_seed(SEED)
    model = official_model(pixpro_module, batch)
    model.train()
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    inputs = views(batch, size, SEED)
    step = trainer(model, batch, inputs)
    losses = [step() for _ in range(CHECK_STEPS)]
    # the ppm workload with the initial value transform (the steps above changed it)
    model.load_state_dict(state)
    ppm_loss = propagation(model, pixpro_module, projections(batch, size, SEED),
                           (inputs[2], inputs[3]))()  # fmt: skip
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    torch.save({"batch": batch, "image_size": size, "state_dict": state, "losses": losses,
                "ppm_loss": ppm_loss}, path)  # fmt: skip
    return [*losses, ppm_loss]


def _samples(step: Callable[[], object], repeats: int, warmup: int) -> dict[str, list[float]]:
    for _ in range(warmup):
        step()
    cpu, wall = [], []
    for _ in range(repeats):
        start, begin = time.perf_counter(), time.process_time()
        step()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - begin)
    return {"cpu": cpu, "wall": wall}


def measure(pixpro_module: Any, batch: int, size: int, repeats: int,
            warmup: int) -> list[dict[str, Any]]:  # fmt: skip
    import torch

    names = {k: v.format(batch=batch, size=size, map=size // 4) for k, v in WORKLOADS.items()}
    torch.manual_seed(SEED)
    model = official_model(pixpro_module, batch)
    model.train()
    inputs = views(batch, size, SEED)
    step = _samples(trainer(model, batch, inputs), repeats, warmup)
    run = propagation(model, pixpro_module, projections(batch, size, SEED),
                      (inputs[2], inputs[3]))  # fmt: skip
    ppm = _samples(run, repeats, warmup)
    return [
        {"workload": names["step"], "unit": "s/step", **step},
        {"workload": names["ppm"], "unit": "s/step", **ppm},
    ]


def _versions() -> dict[str, str]:
    from importlib import metadata

    return {n: metadata.version(n) for n in ("torch", "numpy")}


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _image_size(text: str) -> int:
    value = _positive(text)
    if value % 4:
        raise argparse.ArgumentTypeError(f"must be a multiple of 4 (stride 4), got {value}")
    return value


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="benchmark_official.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--official", required=True, help="checkout of zdaxie/PixPro")
    p.add_argument("--batch", type=_positive, default=32)
    p.add_argument("--image-size", type=_image_size, default=64)
    p.add_argument("--repeats", type=_positive, default=10, help="timed steps per workload")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    p.add_argument("--threads", type=_positive, default=1)
    p.add_argument("--reference", default=REFERENCE,
                   help="write the weights and losses benchmark.py checks here")  # fmt: skip
    p.add_argument("--json", default=None, help="write the measurement file here")
    return p


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    official = Path(args.official).resolve()
    if not (official / "contrast" / "models" / "PixPro.py").is_file():
        fail(f"{official} is not a checkout of zdaxie/PixPro (no contrast/models/PixPro.py)")
    out = os.path.abspath(args.json) if args.json else None
    reference = os.path.abspath(args.reference)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    here = Path(__file__).resolve().parent  # holds our model.py, pixpro.py: never imported here
    sys.path[:] = [str(official), *(p for p in sys.path if Path(p or ".").resolve() != here)]

    import importlib

    import torch

    # the module, not the class that contrast/models/__init__.py binds under the same name
    pixpro_module = importlib.import_module("contrast.models.PixPro")
    torch.set_num_threads(args.threads)
    print(f"official={official} torch={torch.__version__} threads={torch.get_num_threads()} "
          f"load average={os.getloadavg()[0]:.2f} batch={args.batch} image={args.image_size}",
          flush=True)  # fmt: skip
    losses = write_reference(pixpro_module, args.batch, args.image_size, reference)
    print(f"reference written to {reference}: losses " + ", ".join(f"{v:.6f}" for v in losses),
          flush=True)  # fmt: skip
    measured = measure(pixpro_module, args.batch, args.image_size, args.repeats, args.warmup)
    for m in measured:
        print(f"official {m['workload']}: median {statistics.median(m['cpu']):.4f} CPU "
              f"{m['unit']} (min {min(m['cpu']):.4f}; wall median "
              f"{statistics.median(m['wall']):.4f})", flush=True)  # fmt: skip
    if out:
        os.makedirs(os.path.dirname(out), exist_ok=True)
        with open(out, "w") as handle:
            json.dump({"side": "official", "versions": _versions(), "measurements": measured},
                      handle, indent=2)  # fmt: skip


if __name__ == "__main__":
    main()

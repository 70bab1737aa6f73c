"""A toy paper for testing the runner: linear regression on synthetic data, with checkpoints.

The config field ``crash_after_epoch`` simulates an interrupted run.
"""

from __future__ import annotations

from pathlib import Path

import torch

from common.config import StrictModel
from common.runner import PaperEntry, RunContext, RunOutcome
from common.seeding import epoch_generator


class ToyConfig(StrictModel):
    variant: str
    epochs: int = 4
    lr: float = 0.1
    batch_size: int = 8
    crash_after_epoch: int | None = None


class SimulatedCrash(RuntimeError):
    pass


def _data() -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(123)
    x = torch.randn(64, 3, generator=gen)
    return x, x @ torch.tensor([1.0, -2.0, 0.5]) + 0.1 * torch.randn(64, generator=gen)


def run(config: ToyConfig, ctx: RunContext) -> RunOutcome:
    x, y = _data()
    model = torch.nn.Linear(3, 1)
    optim = torch.optim.SGD(model.parameters(), lr=config.lr)
    start = 0
    state = ctx.load_checkpoint()
    if state is not None:
        model.load_state_dict(state["model"])
        optim.load_state_dict(state["optim"])
        start = state["epoch"] + 1
    for epoch in range(start, config.epochs):
        order = torch.randperm(len(x), generator=epoch_generator(ctx.seed, epoch))
        for batch in order.split(config.batch_size):
            noise = 0.01 * torch.randn(len(batch))  # global RNG: must be restored on resume
            loss = ((model(x[batch]).squeeze(1) - y[batch] - noise) ** 2).mean()
            optim.zero_grad()
            loss.backward()
            optim.step()
        ctx.save_checkpoint(
            {"model": model.state_dict(), "optim": optim.state_dict(), "epoch": epoch}
        )
        if config.crash_after_epoch == epoch:
            raise SimulatedCrash(f"crash after epoch {epoch}")
    with torch.no_grad():
        mse = float(((model(x).squeeze(1) - y) ** 2).mean())
    return RunOutcome(
        validation={"mse": mse},
        test={"mse": mse, "w0": float(model.weight[0, 0].detach())},
        selection_rule="last epoch",
        dataset_files={"toy": "generated"},
        training=ctx.training_end(config, early_stopped=False, epochs=config.epochs),
    )


TOML = """title = "Toy paper"
environment = "base"
datasets = ["tiny", "small"]
variants = ["plain", "other"]
"""


def make_toy_paper(root: Path) -> PaperEntry:
    folder = root / "papers" / "toy"
    (folder / "configs").mkdir(parents=True)
    (folder / "paper.toml").write_text(TOML)
    for scale in ("full", "reduced", "smoke"):
        (folder / "configs" / f"{scale}.yaml").write_text(
            "epochs: 4\nlr: 0.1\ndataset_overrides:\n  small:\n    lr: 0.05\n"
        )
    return PaperEntry(folder=folder, config_model=ToyConfig, run=run)

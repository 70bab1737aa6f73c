"""DebCSE (Miao et al., CIKM 2023): not reproducible here, see README.md.

The abstract describes an inverse-propensity-weighted sampling of positive and negative pairs
from their surface and semantic similarity, but neither the paper's body (the propensity model,
the weights, the sampling rule, the loss and its hyper-parameters) nor any official code could
be read offline. Rather than invent a method under DebCSE's name, the entry point stops with a
one-line error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from common.config import StrictModel, declared_variant
from common.data import register_folder_datasets
from common.errors import ClreproError
from common.runner import RunContext, RunOutcome

DECLARED_DATASETS = register_folder_datasets(Path(__file__).parent)  # datasets.toml here

MESSAGE = (
    "DebCSE is not reproducible here: its method (propensity model, pair weights, sampling "
    "rule, loss, hyper-parameters) is not available offline and no official code was found; "
    f"see papers/{Path(__file__).parent.name}/README.md"
)


class NotReproducibleError(ClreproError):
    """The paper's method cannot be determined from what is available."""


class Config(StrictModel):
    variant: Annotated[str, declared_variant(Path(__file__).parent)] = "debcse"
    model_name_or_path: str = "bert-base-uncased"


def run(config: Config, ctx: RunContext) -> RunOutcome:
    raise NotReproducibleError(MESSAGE)

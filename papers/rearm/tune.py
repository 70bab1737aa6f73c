"""Choose an ID-only baseline's ``reg_weight`` on validation, as MMRec does.

    python -m papers.<this folder>.tune --dataset baby --scale full --data-root DATA
        [--variant bpr] [--regs 1.0,0.1,0.01] [key=value ...]

MMRec runs each baseline over a grid and reports the point with the best validation Recall@20
(enoche/MMRec ``src/configs/model/BPR.yaml``: ``reg_weight`` ∈ {2.0, 1.0, 0.1, 0.01, 1e-3, 1e-4,
1e-5}, the default grid here; ``overall.yaml``: ``valid_metric: Recall@20``). Each point is an
ordinary recorded run (seed 0) under ``results/tuning/<this folder>/<dataset>-<scale>-<variant>/``,
apart from the comparison table; recorded points are skipped, an interrupted one resumes.
``grid.md`` and ``choice.json`` there show the result; test numbers are never looked at.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from common import tuning

from .__main__ import ENTRY
from .train import BASELINES

MMREC_BPR_GRID = (2.0, 1.0, 0.1, 0.01, 1e-3, 1e-4, 1e-5)


def search(variant: str) -> tuning.GridSearch:
    return tuning.GridSearch(
        paper=Path(__file__).parent.name,  # this folder (a fork files its searches apart)
        entry=ENTRY,
        variant=variant,
        axes=(tuning.Axis("baseline.reg_weight", "reg", "reg_weight", MMREC_BPR_GRID),),
        metric="Recall@20",
        title=f"{variant} reg_weight search",
        default_dataset="baby",
        tag=variant,
    )


def main(argv: Sequence[str] | None = None) -> int:
    pick = argparse.ArgumentParser(add_help=False)
    pick.add_argument("--variant", choices=BASELINES, default="bpr")
    known, rest = pick.parse_known_args(argv)
    return tuning.main(search(known.variant), rest, f"python -m {__package__}.tune", __doc__)


if __name__ == "__main__":
    raise SystemExit(main())

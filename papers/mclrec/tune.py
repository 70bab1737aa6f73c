"""Choose MCLRec's λ (``lam``) and β (``beta``) on validation, from a grid.

    python -m papers.<this folder>.tune --dataset toys --data-root DATA [--scale reduced]
        [--lams 0.01,0.05,0.1] [--betas 0.05,0.1,0.4] [key=value ...]

The paper tunes both weights over {0.01, 0.02, 0.03, 0.04, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5}
(the default grid here). Every grid point is an ordinary recorded MCLRec run (seed 0) kept
under ``results/tuning/<this folder>/<dataset>-<scale>[-<overrides>]/``, apart from the comparison
table; a point already recorded there is skipped and an interrupted one resumes. The
choice is the point with the highest validation MRR@10 (the early-stopping metric); test
numbers are never looked at. ``grid.md`` and ``choice.json`` in that folder show the result.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from common import tuning

from .__main__ import ENTRY

PAPER_GRID = (0.01, 0.02, 0.03, 0.04, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5)
SEARCH = tuning.GridSearch(
    paper=Path(__file__).parent.name,  # this folder (a fork files its searches apart)
    entry=ENTRY,
    variant="mclrec",
    axes=(tuning.Axis("lam", "lam", "λ", PAPER_GRID), tuning.Axis("beta", "beta", "β", PAPER_GRID)),
    metric="MRR@10",
    title="MCLRec λ/β search",
    default_dataset="toys",
)


def main(argv: Sequence[str] | None = None) -> int:
    return tuning.main(SEARCH, argv, f"python -m {__package__}.tune", __doc__)


if __name__ == "__main__":
    raise SystemExit(main())

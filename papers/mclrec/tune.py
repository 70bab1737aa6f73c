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

import argparse
import json
import math
import re
from collections.abc import Sequence
from pathlib import Path

from common.cli import fail, repo_root
from common.records import RunRecord, load_records
from common.runner import main as run_paper

from .__main__ import ENTRY

PAPER = Path(__file__).parent.name  # this folder (a fork files its searches apart)
PAPER_GRID = (0.01, 0.02, 0.03, 0.04, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5)
METRIC = "MRR@10"
Point = tuple[float, float]  # (λ, β)


def _weights(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list") from None
    if not values or any(not math.isfinite(v) or v < 0 for v in values):
        raise argparse.ArgumentTypeError(f"{text!r}: weights must be finite and >= 0")
    return values


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"python -m {__package__}.tune", description=__doc__)
    parser.add_argument("--dataset", default="toys")
    parser.add_argument("--scale", default="reduced", choices=("full", "reduced", "smoke"))
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--lams", type=_weights, default=PAPER_GRID)
    parser.add_argument("--betas", type=_weights, default=PAPER_GRID)
    parser.add_argument(
        "--out", default=None, help=f"default: results/tuning/{PAPER}/<ds>-<scale>-..."
    )
    parser.add_argument("--work-dir", default=None)
    parser.add_argument(
        "--no-run",
        action="store_true",
        help="only summarise the points already recorded (cells not run show as —)",
    )
    parser.add_argument("overrides", nargs="*", help="config overrides key=value (the budget)")
    return parser


def _key(lam: float, beta: float) -> Point:
    return round(lam, 6), round(beta, 6)


def default_out(dataset: str, scale: str, overrides: Sequence[str]) -> Path:
    """One folder per dataset, scale and budget, so searches at other budgets never mix."""
    name = "-".join([dataset, scale, *overrides])
    safe = re.sub(r"[^A-Za-z0-9._=-]", "_", name)
    return repo_root() / "results" / "tuning" / PAPER / safe


def recorded_points(out: Path, dataset: str) -> dict[Point, RunRecord]:
    """The MCLRec records per (λ, β) already in ``out`` for this dataset."""
    points = {}
    for record in load_records(out, PAPER):
        if record.dataset == dataset and record.variant == "mclrec":
            points[_key(record.config["lam"], record.config["beta"])] = record
    return points


def choose(points: dict[Point, RunRecord]) -> Point:
    """The (λ, β) with the highest validation MRR@10; ties go to the smaller β, then λ."""
    return max(points, key=lambda k: (points[k].metrics.validation[METRIC], -k[1], -k[0]))


def grid_table(points: dict[Point, RunRecord], lams: Sequence[float], betas: Sequence[float],
               chosen: Point) -> str:  # fmt: skip
    """Markdown: validation MRR@10 ×100 per λ (rows) and β (columns), the choice in bold."""
    lines = ["| λ \\ β | " + " | ".join(f"{b:g}" for b in betas) + " |",
             "|---|" + "---|" * len(betas)]  # fmt: skip
    for lam in lams:
        cells = []
        for beta in betas:
            record = points.get(_key(lam, beta))
            value = f"{100 * record.metrics.validation[METRIC]:.2f}" if record else "—"
            cells.append(f"**{value}**" if _key(lam, beta) == chosen else value)
        lines.append(f"| {lam:g} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    out = Path(args.out or default_out(args.dataset, args.scale, args.overrides)).resolve()
    for key in ("lam", "beta", "variant"):
        if any(o.split("=", 1)[0] == key for o in args.overrides):
            fail(f"{key} is set by the search; remove the {key}= override")
    common = ["--dataset", args.dataset, "--scale", args.scale, "--variants", "mclrec",
              "--results-dir", str(out), "--resume"]  # fmt: skip
    if args.data_root:
        common += ["--data-root", args.data_root]
    if args.work_dir:
        common += ["--work-dir", args.work_dir]
    for lam in args.lams:
        for beta in args.betas:
            if args.no_run or _key(lam, beta) in recorded_points(out, args.dataset):
                continue
            print(f"grid point lam={lam:g} beta={beta:g}", flush=True)
            weights = [f"lam={lam}", f"beta={beta}"]
            status = run_paper(ENTRY, [*common, *args.overrides, *weights], compare=False)
            if status:
                return status
    return summarise(out, args.dataset, args.overrides, args.lams, args.betas, args.scale)


def summarise(out: Path, dataset: str, overrides: Sequence[str], lams: Sequence[float],
              betas: Sequence[float], scale: str) -> int:  # fmt: skip
    wanted = {_key(lam, beta) for lam in lams for beta in betas}
    points = {k: v for k, v in recorded_points(out, dataset).items() if k in wanted}
    if not points:
        fail(f"no grid point of this search is recorded in {out}")
    chosen = choose(points)
    budget = " ".join(overrides) or "none"
    text = (
        f"# MCLRec λ/β search on {dataset} ({scale} recipe; overrides: {budget})\n\n"
        f"Validation {METRIC} ×100 at the best epoch, seed 0; chosen: λ={chosen[0]:g}, "
        f"β={chosen[1]:g}. Test numbers were not used.\n\n"
        + grid_table(points, lams, betas, chosen) + "\n"
    )  # fmt: skip
    (out / "grid.md").write_text(text)
    choice = {"dataset": dataset, "scale": scale, "overrides": list(overrides),
              "lam": chosen[0], "beta": chosen[1], "metric": METRIC,
              "validation": points[chosen].metrics.validation[METRIC],
              "points": len(points)}  # fmt: skip
    (out / "choice.json").write_text(json.dumps(choice, indent=2) + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""A hyper-parameter grid chosen on validation, every point an ordinary recorded run.

A paper's ``tune.py`` names one variant, the config keys it searches (one or two axes) and the
validation metric; ``run_grid`` trains each point (seed 0) into a results folder kept apart from
the comparison table (``results/tuning/<paper>/<dataset>-<scale>[-<overrides>]/``), skips points
already recorded there, resumes an interrupted one, and writes ``grid.md`` (validation ×100, the
choice in bold) and ``choice.json``. The choice is the highest validation value; test numbers
are never looked at. Ties go to the smaller value of the last axis, then of the one before.
"""

from __future__ import annotations

import argparse
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .cli import fail, repo_root
from .records import RunRecord, load_records
from .runner import PaperEntry
from .runner import main as run_paper

Point = tuple[float, ...]


@dataclass(frozen=True)
class Axis:
    """One searched config key (dotted for a nested one), its short name (``--<name>s`` on the
    command line, the key in ``choice.json``), its label in tables and its default values."""

    key: str
    name: str
    label: str
    values: tuple[float, ...]


@dataclass(frozen=True)
class GridSearch:
    """What a paper searches: ``variant``'s ``axes`` (one or two), chosen on ``metric``."""

    paper: str
    entry: PaperEntry
    variant: str
    axes: tuple[Axis, ...]
    metric: str
    title: str
    default_dataset: str | None = None
    tag: str | None = None  # in the default results folder's name, to keep searches apart

    def __post_init__(self) -> None:
        if len(self.axes) not in (1, 2):
            raise ValueError("a grid search has one or two axes")


def weights(text: str) -> tuple[float, ...]:
    """argparse type: a comma-separated list of finite values >= 0."""
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list") from None
    if not values or any(not math.isfinite(v) or v < 0 for v in values):
        raise argparse.ArgumentTypeError(f"{text!r}: values must be finite and >= 0")
    return values


def point_key(values: Sequence[float]) -> Point:
    return tuple(round(v, 6) for v in values)


def config_value(config: Mapping[str, Any], dotted: str) -> Any:
    """``config['a']['b']`` for ``'a.b'``."""
    value: Any = config
    for part in dotted.split("."):
        value = value[part]
    return value


def default_out(search: GridSearch, dataset: str, scale: str, overrides: Sequence[str]) -> Path:
    """One folder per dataset, scale, tag and budget, so searches at other budgets never mix."""
    name = "-".join([dataset, scale, *([search.tag] if search.tag else []), *overrides])
    safe = re.sub(r"[^A-Za-z0-9._=-]", "_", name)
    return repo_root() / "results" / "tuning" / search.paper / safe


def recorded_points(search: GridSearch, out: Path, dataset: str) -> dict[Point, RunRecord]:
    """The searched variant's records per grid point already in ``out`` for this dataset."""
    points = {}
    for record in load_records(out, search.paper):
        if record.dataset == dataset and record.variant == search.variant:
            point = point_key([config_value(record.config, a.key) for a in search.axes])
            points[point] = record
    return points


def choose(points: Mapping[Point, RunRecord], metric: str) -> Point:
    """The point with the highest validation ``metric``; ties go to smaller values, last axis
    first."""
    return max(points, key=lambda k: (points[k].metrics.validation[metric], *(-v for v in k[::-1])))


def _cell(points: Mapping[Point, RunRecord], point: Point, chosen: Point, metric: str) -> str:
    record = points.get(point)
    value = f"{100 * record.metrics.validation[metric]:.2f}" if record else "—"
    return f"**{value}**" if point == chosen else value


def grid_table(search: GridSearch, points: Mapping[Point, RunRecord],
               values: Sequence[Sequence[float]], chosen: Point) -> str:  # fmt: skip
    """Markdown: validation ×100 per point (one axis: a row per value; two: rows × columns)."""
    if len(values) == 1:
        lines = [f"| {search.axes[0].label} | validation {search.metric} ×100 |", "|---|---|"]
        for v in values[0]:
            lines.append(f"| {v:g} | {_cell(points, point_key([v]), chosen, search.metric)} |")
        return "\n".join(lines)
    rows, cols = values
    lines = [f"| {search.axes[0].label} \\ {search.axes[1].label} | "
             + " | ".join(f"{c:g}" for c in cols) + " |", "|---|" + "---|" * len(cols)]  # fmt: skip
    for r in rows:
        cells = [_cell(points, point_key([r, c]), chosen, search.metric) for c in cols]
        lines.append(f"| {r:g} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def parser(search: GridSearch, prog: str, description: str | None) -> argparse.ArgumentParser:
    """The search's command line: one ``--<axis name>s`` option per axis."""
    p = argparse.ArgumentParser(prog=prog, description=description)
    p.add_argument(
        "--dataset", default=search.default_dataset, required=search.default_dataset is None
    )
    p.add_argument("--scale", default="reduced", choices=("full", "reduced", "smoke"))
    p.add_argument("--data-root", default=None)
    for axis in search.axes:
        p.add_argument(f"--{axis.name}s", type=weights, default=axis.values, dest=axis.name)
    p.add_argument(
        "--out", default=None, help=f"default: results/tuning/{search.paper}/<ds>-<scale>-..."
    )
    p.add_argument("--work-dir", default=None)
    p.add_argument(
        "--no-run",
        action="store_true",
        help="only summarise the points already recorded (cells not run show as —)",
    )
    p.add_argument("overrides", nargs="*", help="config overrides key=value (the budget)")
    return p


def main(search: GridSearch, argv: Sequence[str] | None, prog: str, description: str | None) -> int:
    """Run the grid's missing points, then write ``grid.md`` and ``choice.json``."""
    args = parser(search, prog, description).parse_args(argv)
    out = Path(args.out or default_out(search, args.dataset, args.scale, args.overrides)).resolve()
    for key in (*(a.key for a in search.axes), "variant"):
        if any(o.split("=", 1)[0] == key for o in args.overrides):
            fail(f"{key} is set by the search; remove the {key}= override")
    values = [getattr(args, a.name) for a in search.axes]
    common = ["--dataset", args.dataset, "--scale", args.scale, "--variants", search.variant,
              "--results-dir", str(out), "--resume"]  # fmt: skip
    if args.data_root:
        common += ["--data-root", args.data_root]
    if args.work_dir:
        common += ["--work-dir", args.work_dir]
    for point in _product(values):
        if args.no_run or point_key(point) in recorded_points(search, out, args.dataset):
            continue
        settings = [f"{a.key}={v}" for a, v in zip(search.axes, point, strict=True)]
        print("grid point " + " ".join(settings), flush=True)
        status = run_paper(search.entry, [*common, *args.overrides, *settings], compare=False)
        if status:
            return status
    return summarise(search, out, args.dataset, args.scale, args.overrides, values)


def _product(values: Sequence[Sequence[float]]) -> list[tuple[float, ...]]:
    if len(values) == 1:
        return [(v,) for v in values[0]]
    return [(r, c) for r in values[0] for c in values[1]]


def summarise(search: GridSearch, out: Path, dataset: str, scale: str,
              overrides: Sequence[str], values: Sequence[Sequence[float]]) -> int:  # fmt: skip
    wanted = {point_key(p) for p in _product(values)}
    points = {k: v for k, v in recorded_points(search, out, dataset).items() if k in wanted}
    if not points:
        fail(f"no grid point of this search is recorded in {out}")
    chosen = choose(points, search.metric)
    budget = " ".join(overrides) or "none"
    picked = ", ".join(f"{a.label}={v:g}" for a, v in zip(search.axes, chosen, strict=True))
    text = (
        f"# {search.title} on {dataset} ({scale} recipe; overrides: {budget})\n\n"
        f"Validation {search.metric} ×100 at the best epoch, seed 0; chosen: {picked}. "
        "Test numbers were not used.\n\n" + grid_table(search, points, values, chosen) + "\n"
    )
    (out / "grid.md").write_text(text)
    choice: dict[str, Any] = {"dataset": dataset, "scale": scale, "overrides": list(overrides)}
    choice |= {a.name: v for a, v in zip(search.axes, chosen, strict=True)}
    choice |= {"metric": search.metric,
               "validation": points[chosen].metrics.validation[search.metric],
               "points": len(points)}  # fmt: skip
    (out / "choice.json").write_text(json.dumps(choice, indent=2) + "\n")
    print(text)
    return 0

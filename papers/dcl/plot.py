"""kNN top-1 against batch size per loss and dataset (mean ± std over seeds), from run records.

python -m papers.<folder>.plot [--results-dir results]  ->  results/plots/<folder>_batch_size.png
"""

from __future__ import annotations

import argparse
import statistics
from collections import defaultdict
from pathlib import Path

from common.cli import repo_root
from common.records import load_records

METRIC = "kNN top-1"
PAPER = Path(__file__).parent.name  # records and the plot are named after this folder


def collect(results_dir: Path, scale: str) -> dict[str, dict[str, dict[int, list[float]]]]:
    """dataset -> loss -> batch size -> test kNN top-1 of every seed."""
    table: dict[str, dict[str, dict[int, list[float]]]] = defaultdict(
        lambda: defaultdict(lambda: defaultdict(list))
    )
    for rec in load_records(results_dir, PAPER):
        if rec.scale == scale and METRIC in rec.metrics.test:
            table[rec.dataset][rec.variant][int(rec.config["batch_size"])].append(
                rec.metrics.test[METRIC]
            )
    return table


def render(results_dir: Path, scale: str = "reduced") -> Path | None:
    table = collect(results_dir, scale)
    if not table:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(table), figsize=(5 * len(table), 3.8), squeeze=False)
    for ax, (dataset, losses) in zip(axes[0], sorted(table.items()), strict=True):
        for loss, by_size in sorted(losses.items()):
            sizes = sorted(by_size)
            means = [statistics.fmean(by_size[s]) for s in sizes]
            stds = [statistics.stdev(by_size[s]) if len(by_size[s]) > 1 else 0.0 for s in sizes]
            counts = {len(by_size[s]) for s in sizes}
            ax.errorbar(sizes, means, yerr=stds, marker="o", capsize=3,
                        label=f"{loss} (n={'/'.join(map(str, sorted(counts)))})")  # fmt: skip
        ax.set_xscale("log", base=2)
        ax.set_xlabel("batch size")
        ax.set_ylabel(f"test {METRIC} (%)")
        ax.set_title(f"{dataset} ({scale} recipe)")
        ax.legend(fontsize=8)
    fig.tight_layout()
    out = results_dir / "plots" / f"{PAPER}_batch_size.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--results-dir", default=str(repo_root() / "results"))
    parser.add_argument("--scale", default="reduced")
    args = parser.parse_args()
    print(render(Path(args.results_dir), args.scale))

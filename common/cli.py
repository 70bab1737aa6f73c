"""The ``reproduce`` command line, shared by nox and every paper's entry point.

Standard library only, so that ``noxfile.py`` can validate a command (unknown paper, dataset or
option: one line naming the valid choices, exit status 2) before it builds an environment.
Each paper folder describes itself in ``paper.toml``: name, title, environment, datasets,
variants and any extra options of its entry point.
"""

from __future__ import annotations

import argparse
import sys
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

SCALES = ("full", "reduced", "smoke")
DEVICES = ("auto", "cpu", "cuda")
USAGE_EXIT = 2


@dataclass(frozen=True)
class ExtraOption:
    """A paper's own command-line option (``paper.toml`` ``[[options]]``), e.g. --checkpoint."""

    flag: str
    help: str
    is_flag: bool = False

    @property
    def dest(self) -> str:
        """The key the paper reads in ``ctx.options`` (argparse's name for the flag)."""
        return self.flag.lstrip("-").replace("-", "_")


@dataclass(frozen=True)
class PaperInfo:
    """What ``paper.toml`` declares about a paper folder."""

    name: str
    title: str
    folder: Path
    environment: str
    datasets: tuple[str, ...]
    default_dataset: str
    variants: tuple[str, ...]
    extra_options: tuple[ExtraOption, ...] = field(default=())


def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent


def read_paper_info(folder: Path) -> PaperInfo:
    with (folder / "paper.toml").open("rb") as handle:
        raw: dict[str, Any] = tomllib.load(handle)
    datasets = tuple(raw["datasets"])
    return PaperInfo(
        name=folder.name,
        title=str(raw.get("title", folder.name)),
        folder=folder,
        environment=str(raw["environment"]),
        datasets=datasets,
        default_dataset=str(raw.get("default_dataset", datasets[0])),
        variants=tuple(raw["variants"]),
        extra_options=tuple(
            ExtraOption(str(o["flag"]), str(o.get("help", "")), bool(o.get("is_flag", False)))
            for o in raw.get("options", [])
        ),
    )


def discover_papers(papers_dir: Path | None = None) -> dict[str, PaperInfo]:
    """Every folder of ``papers/`` that has a ``paper.toml``, by folder name."""
    base = papers_dir or repo_root() / "papers"
    found = {}
    for folder in sorted(p for p in base.iterdir() if (p / "paper.toml").is_file()):
        found[folder.name] = read_paper_info(folder)
    return found


def fail(message: str) -> NoReturn:
    """Print one line to stderr and exit with the usage status."""
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(USAGE_EXIT)


class OneLineParser(argparse.ArgumentParser):
    """argparse whose errors are one line that names the valid options."""

    def error(self, message: str) -> NoReturn:
        if "unrecognized arguments" in message:
            flags = sorted(
                {s for a in self._actions for s in a.option_strings if s.startswith("--")}
            )
            message += "; valid options: " + ", ".join(flags)
        fail(f"{self.prog}: {message}")


def build_parser(info: PaperInfo) -> OneLineParser:
    parser = OneLineParser(
        prog=f"reproduce {info.name}",
        description=f"Reproduce {info.title}.",
        epilog="Trailing key=value items override config fields (dotted keys for nested ones).",
    )
    parser.add_argument("--dataset", choices=info.datasets, default=info.default_dataset)
    parser.add_argument("--scale", choices=SCALES, default="reduced")
    parser.add_argument(
        "--seeds", type=_positive_int, default=1, help="number of seeds (default 1)"
    )
    parser.add_argument(
        "--first-seed",
        type=_non_negative_int,
        default=0,
        help="run seeds K..K+N-1 (default 0), e.g. to add a third seed later",
    )
    parser.add_argument(
        "--variants",
        type=_variant_list(info.variants),
        default=info.variants,
        help="comma-separated subset of: " + ", ".join(info.variants),
    )
    parser.add_argument("--data-root", default=None, help="folder holding the datasets")
    parser.add_argument("--device", choices=DEVICES, default="auto")
    parser.add_argument("--resume", action="store_true", help="continue interrupted runs")
    parser.add_argument(
        "--rerun",
        action="store_true",
        help="run seeds that already have a record again, as a reproducibility check: the "
        "repeat's record goes to <work-dir>/repeats and its agreement with the recorded run "
        "is printed (the results tables do not change)",
    )
    parser.add_argument("--results-dir", default=None, help="default: <repo>/results")
    parser.add_argument("--work-dir", default=None, help="checkpoints and logs; default ./work")
    parser.add_argument("--tensorboard", action="store_true", help="also log to TensorBoard")
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="check the command, every config, the data root and the output folders; run nothing",
    )
    for option in info.extra_options:
        if option.is_flag:
            parser.add_argument(option.flag, action="store_true", help=option.help)
        else:
            parser.add_argument(option.flag, default=None, help=option.help)
    parser.add_argument("overrides", nargs="*", help="config overrides key=value")
    return parser


def _int_at_least(text: str, minimum: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"must be at least {minimum}")
    return value


def _positive_int(text: str) -> int:
    return _int_at_least(text, 1)


def _non_negative_int(text: str) -> int:
    return _int_at_least(text, 0)


def _variant_list(valid: Sequence[str]) -> Any:
    def parse(text: str) -> tuple[str, ...]:
        chosen = tuple(v.strip() for v in text.split(",") if v.strip())
        unknown = [v for v in chosen if v not in valid]
        if unknown or not chosen:
            raise argparse.ArgumentTypeError(
                f"unknown variant {', '.join(unknown) or text!r}; choose from {', '.join(valid)}"
            )
        return chosen

    return parse


def parse_reproduce_args(
    argv: Sequence[str], papers_dir: Path | None = None
) -> tuple[PaperInfo, argparse.Namespace]:
    """Validate ``<paper> [options] [key=value ...]``; exit 2 with one line on bad input."""
    papers = discover_papers(papers_dir)
    if not argv or argv[0].startswith("-"):
        fail("name a paper first: reproduce <paper> [options]; papers: " + ", ".join(papers))
    name, rest = argv[0], list(argv[1:])
    if name not in papers:
        fail(f"unknown paper {name!r}; valid papers: {', '.join(papers) or '(none)'}")
    info = papers[name]
    args = build_parser(info).parse_args(rest)
    bad = [item for item in args.overrides if "=" not in item]
    if bad:
        fail(f"config overrides must be key=value, got {' '.join(bad)!r}")
    return info, args


if __name__ == "__main__":
    parse_reproduce_args(sys.argv[1:])


@dataclass(frozen=True)
class BenchSetup:
    """What ``paper.toml``'s ``[bench]`` table says about a paper's speed benchmark.

    ``official`` names the official side in the records (``owner/name@commit`` or a package);
    ``checkout`` is set when the official side is a repository that ``benchmark_official.py``
    needs on disk (``owner/name@commit``); ``official_environment`` is its requirements file.
    """

    paper: str
    environment: str
    official_environment: str
    official: str
    checkout: str | None


@dataclass(frozen=True)
class BenchArgs:
    threads: int
    official_dir: Path | None
    harness_args: tuple[str, ...]


def _bench_table(info: PaperInfo) -> dict[str, Any]:
    with (info.folder / "paper.toml").open("rb") as handle:
        table: dict[str, Any] = tomllib.load(handle).get("bench", {})
    return table


def has_bench(info: PaperInfo) -> bool:
    return bool(_bench_table(info))


def read_bench_setup(info: PaperInfo) -> BenchSetup:
    table = _bench_table(info)
    if not table:
        fail(f"{info.name} has no benchmark ([bench] in its paper.toml)")
    checkout = str(table.get("checkout", "")) or None
    return BenchSetup(
        paper=info.name,
        environment=info.environment,
        official_environment=str(table["official_environment"]),
        official=str(table.get("official", checkout or "")),
        checkout=checkout,
    )


def parse_bench_args(
    argv: Sequence[str], papers_dir: Path | None = None
) -> tuple[BenchSetup, BenchArgs]:
    """``<paper> [--threads N] [--official DIR] [harness options]``; exit 2 on bad input."""
    papers = discover_papers(papers_dir)
    benched = [name for name, info in papers.items() if has_bench(info)]
    if not argv or argv[0] not in papers:
        fail(f"name a paper with a benchmark first: bench <paper>; papers: {', '.join(benched)}")
    parser = OneLineParser(prog=f"bench {argv[0]}", add_help=False)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--official", type=Path, default=None)
    args, rest = parser.parse_known_args(list(argv[1:]))
    if not 1 <= args.threads <= 256:
        fail(f"--threads must be between 1 and 256, got {args.threads}")
    return read_bench_setup(papers[argv[0]]), BenchArgs(args.threads, args.official, tuple(rest))


def official_checkout(setup: BenchSetup, official_dir: Path | None, scratch: Path) -> Path | None:
    """Where the official repository is checked out (``--official`` or ``scratch/<owner>+<name>``);
    None when the official side is a package. Exits 2 with what to do when it is absent."""
    if setup.checkout is None:
        return None
    repository, _, commit = setup.checkout.partition("@")
    path = official_dir or scratch / repository.replace("/", "+")
    if not path.is_dir():
        fail(f"the official code is not at {path}: git clone https://github.com/{repository} "
             f"{path} && git -C {path} checkout {commit} (outside this repository), or pass "
             "--official DIR")  # fmt: skip
    return path

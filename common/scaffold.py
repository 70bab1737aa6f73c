"""``nox -s new -- <name> --from <paper>``: fork a paper folder under a new name."""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

from common.cli import discover_papers, fail, repo_root

TEXT_SUFFIXES = {".py", ".md", ".toml", ".yaml", ".yml", ".txt"}
VALID_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


def fork_paper(name: str, source: str, papers_dir: Path) -> Path:
    """Copy ``papers_dir/source`` to ``papers_dir/name``, renaming module paths inside it."""
    papers = discover_papers(papers_dir)
    if source not in papers:
        fail(f"unknown paper {source!r}; valid papers: {', '.join(papers)}")
    if not VALID_NAME.match(name):
        fail(f"{name!r} is not a valid folder name (lower-case letters, digits, underscores)")
    target = papers_dir / name
    if target.exists():
        fail(f"{target} already exists; choose another name")
    shutil.copytree(
        papers_dir / source, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
    )
    for path in target.rglob("*"):
        if path.is_file() and path.suffix in TEXT_SUFFIXES:
            text = path.read_text(encoding="utf-8")
            renamed = text.replace(f"papers.{source}", f"papers.{name}").replace(
                f"papers/{source}", f"papers/{name}"
            )
            if path.name == "paper.toml":
                renamed = re.sub(
                    r'^title = "(.*)"$',
                    lambda m: f'title = "{name}: fork of {source} ({m.group(1)})"',
                    renamed,
                    count=1,
                    flags=re.M,
                )
            path.write_text(renamed, encoding="utf-8")
    return target


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        fail("usage: python -m common.scaffold <new-name> <source-paper>")
    target = fork_paper(argv[0], argv[1], repo_root() / "papers")
    print(
        f"created {target}; run it with: nox -s reproduce -- {argv[0]} --scale smoke "
        f'--data-root DATA; its tests: nox -s "smoke({argv[0]})"'
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

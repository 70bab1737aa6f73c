"""When nox must (re)install a virtualenv: a stamp of the requirements inside the venv.

Standard library only: ``noxfile.py`` imports it before any environment exists. A venv built
from ``environments/<env>.txt`` holds ``.clrepro-requirements.sha256``, the sha256 of that file,
of every file it includes (``-r``/``-c``, recursively) and of ``pyproject.toml`` (the editable
install). A later session reinstalls only when that digest changed, so reusing an environment
costs nothing and a changed pin is never missed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

STAMP_NAME = ".clrepro-requirements.sha256"
_INCLUDES = ("-r", "--requirement", "-c", "--constraint")


def included_files(requirements: Path) -> list[Path]:
    """``requirements`` and every file it includes with ``-r``/``-c``, depth first, once each."""
    seen: list[Path] = []
    _collect(requirements.resolve(), seen)
    return seen


def _collect(path: Path, seen: list[Path]) -> None:
    if path in seen:
        return
    seen.append(path)
    for line in path.read_text(encoding="utf-8").splitlines():
        target = _included(line)
        if target is not None:
            _collect((path.parent / target).resolve(), seen)


def _included(line: str) -> str | None:
    """The file named by an include line (``-r base.txt``, ``--requirement=base.txt``)."""
    text = line.split("#", 1)[0].strip()
    for flag in _INCLUDES:
        for sep in (" ", "="):
            if text.startswith(flag + sep):
                return text[len(flag) + 1 :].strip() or None
    return None


def requirements_digest(requirements: Path, extra: Sequence[Path] = ()) -> str:
    """sha256 over the requirement file, its includes and ``extra`` files (names and bytes)."""
    digest = hashlib.sha256()
    for path in [*included_files(requirements), *(p.resolve() for p in extra)]:
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def stamp_path(venv: Path) -> Path:
    return venv / STAMP_NAME


def installed_digest(venv: Path) -> str | None:
    """The digest the venv was last installed from, or None (never installed by us)."""
    try:
        return stamp_path(venv).read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


def needs_install(venv: Path, digest: str) -> bool:
    """Whether ``venv`` must be (re)installed: it lacks the stamp, or the stamp differs."""
    return installed_digest(venv) != digest


def write_stamp(venv: Path, digest: str) -> None:
    """Record a successful install (call only after every install step has succeeded)."""
    stamp_path(venv).write_text(digest + "\n", encoding="utf-8")

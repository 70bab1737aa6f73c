"""Where the shared real data and official artifacts are, for tests that use them when present."""

from __future__ import annotations

import os
from pathlib import Path

SHARED_ENV = "CLREPRO_SHARED"


def shared_dir() -> Path:
    """``$CLREPRO_SHARED``, else ``../shared`` beside the repository."""
    env = os.environ.get(SHARED_ENV)
    return Path(env) if env else Path(__file__).resolve().parents[2] / "shared"


def shared_datasets() -> Path | None:
    """The folder of real datasets (a valid ``--data-root``), or None where it is absent."""
    path = shared_dir() / "datasets"
    return path if path.is_dir() else None


def shared_artifacts() -> Path | None:
    """The folder of the authors' official artifacts, or None where it is absent."""
    path = shared_dir() / "artifacts"
    return path if path.is_dir() else None

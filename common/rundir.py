"""Run folders: which attempt folder a run uses, what a failed attempt leaves, and checks that
the folders a run writes to can be written before any training starts.

A run folder ``work/<paper>/<dataset>/<variant>-<scale>-seed<k>-<hash>[.N]`` holds the run's
checkpoint, its log and, once it ends, ``record_path.txt`` naming its record (or, when the
record could not be written, the record itself as ``record.pending.json``). A folder with
neither a checkpoint nor a record holds nothing worth keeping: a new attempt reuses it, and a
failed attempt removes it.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from common.errors import ClreproError
from common.records import DONE_NAME, PENDING_NAME

CHECKPOINT_NAME = "checkpoint.pt"
MIN_FREE_BYTES = 1 << 20  # a record is a few kB; below this a write is bound to fail


def holds_state(run_dir: Path) -> bool:
    """Whether ``run_dir`` holds a checkpoint or a record (written or pending)."""
    return any((run_dir / name).is_file() for name in (CHECKPOINT_NAME, DONE_NAME, PENDING_NAME))


def choose_run_dir(base: Path, resume: bool) -> Path:
    """The folder of this attempt: ``base`` or ``base.N``.

    Nothing a finished or checkpointed run wrote is ever replaced: a new attempt reuses the
    newest folder only when it holds neither a checkpoint nor a record (a failed attempt), else
    takes ``base.N+1``. ``--resume`` picks the newest attempt that holds a checkpoint or record.
    """
    attempts = [base, *sorted(base.parent.glob(base.name + ".*"), key=_attempt_number)]
    existing = [p for p in attempts if p.is_dir()]
    if not existing:
        return base
    if resume:
        kept = [p for p in existing if holds_state(p)]
        return (kept or existing)[-1]
    newest = existing[-1]
    if not holds_state(newest):
        return newest
    return base.with_name(f"{base.name}.{_attempt_number(newest) + 1}")


def _attempt_number(path: Path) -> int:
    suffix = path.name.rsplit(".", 1)[-1]
    return int(suffix) if suffix.isdigit() else 1


def remove_failed_attempt(run_dir: Path) -> bool:
    """Remove ``run_dir`` when it holds neither a checkpoint nor a record; True if removed."""
    if not run_dir.is_dir() or holds_state(run_dir):
        return False
    shutil.rmtree(run_dir, ignore_errors=True)
    return not run_dir.exists()


def _nearest_existing(folder: Path) -> Path:
    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return probe


def probe_write(folder: Path) -> None:
    """Create and delete a temporary file in ``folder`` (raises ``OSError`` when it cannot)."""
    with tempfile.TemporaryFile(dir=folder):
        pass


def check_writable(folder: Path, what: str, flag: str) -> None:
    """Fail with one line, before any training, when ``folder`` cannot be written.

    ``what`` names the folder (``results folder``), ``flag`` the option that chooses another.

    ``folder`` need not exist yet (nothing is created): its nearest existing parent is checked.
    """
    probe = _nearest_existing(folder)
    if not probe.is_dir():
        raise ClreproError(f"the {what} {folder} cannot be created: {probe} is not a folder")
    try:
        probe_write(probe)
        free = shutil.disk_usage(probe).free
    except OSError as exc:
        raise ClreproError(
            f"the {what} {folder} is not writable ({exc.strerror or exc}); "
            f"choose another with {flag}"
        ) from exc
    if free < MIN_FREE_BYTES:
        raise ClreproError(
            f"the {what} {folder} is on a full disk ({free} bytes free); choose another with {flag}"
        )

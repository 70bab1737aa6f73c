"""Run records: one JSON file per run, written atomically and never overwritten.

Schema (``schema_version`` 2): what ran (paper, variant, dataset with the sha256 of its files,
scale, the resolved config, seed), what it gave (validation and test metrics, the model
selection rule), how training ended (``training``: by the recipe's own stopping rule, or cut
short by a budget), and where and how (git commit and dirty flag, package versions, device,
hardware, wall time, start and end time). Records live under
``results/runs/<paper>/<dataset>/`` and are the only source of reproduced numbers.

Version 1 records had no ``training`` field; they are read as ``truncated`` (a reduced recipe
cut its epochs) unless they clearly were not: full-scale training ran the paper's recipe with
its own stopping rule, and scored artifacts were not trained here at all.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import platform
import subprocess
import sys
import uuid
from collections.abc import Iterable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from common.cli import repo_root
from common.errors import ClreproError, RecordError

SCHEMA_VERSION = 2
RESULTS_DIR_ENV = "CLREPRO_RESULTS_DIR"
DONE_NAME = "record_path.txt"  # in a run folder: the path of the run's record
PENDING_NAME = "record.pending.json"  # in a run folder: a record that could not be written
Scale = Literal["full", "reduced", "smoke"]
Origin = Literal["trained", "official-checkpoint", "official-embeddings", "pretrained-baseline"]
StopReason = Literal["early-stopping", "recipe-epochs", "recipe", "budget", "not-trained"]
CONVERGED_REASONS: frozenset[str] = frozenset(
    {"early-stopping", "recipe-epochs", "recipe", "not-trained"}
)
TRACKED_PACKAGES = (
    "torch",
    "numpy",
    "scipy",
    "scikit-learn",
    "transformers",
    "faiss-cpu",
    "clrepro-common",
)


class Metrics(BaseModel):
    model_config = ConfigDict(extra="forbid")

    validation: dict[str, float] = Field(default_factory=dict)
    test: dict[str, float] = Field(default_factory=dict)


class GitState(BaseModel):
    model_config = ConfigDict(extra="forbid")

    commit: str
    dirty: bool


class Hardware(BaseModel):
    model_config = ConfigDict(extra="forbid")

    device: str
    device_name: str
    cpu: str
    cpu_count: int
    platform: str
    python: str
    torch_threads: int
    # What decides float results on a CPU beside the code: the processor and the instruction set
    # torch's kernels dispatch to (a seed repeated on another one can differ in the last bits,
    # and a long training amplifies that). None in records written before they were kept.
    cpu_model: str | None = None
    cpu_capability: str | None = None

    def same_kernels(self, other: Hardware) -> bool:
        """Whether two runs' floats are comparable bit for bit (same device, processor, kernels
        and thread count), as far as the records tell."""
        keys = ("device_name", "cpu_model", "cpu_capability", "torch_threads")
        return all(getattr(self, k) == getattr(other, k) for k in keys)


def cpu_model_name() -> str | None:
    """The processor's model name (Linux ``/proc/cpuinfo``), or None where it cannot be read."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                return value.strip()
    except OSError:
        return None
    return None


class Training(BaseModel):
    """How a run's training ended.

    ``early-stopping`` and ``recipe-epochs`` are the recipe's own stopping rule (patience ran out,
    or the paper's full epoch count was reached; ``recipe`` when an old record does not say which);
    ``budget`` means a cap below the recipe's
    (fewer epochs or steps than the paper trains) cut it short: such a run is *truncated* and
    never counts as evidence for or against a claim. ``not-trained`` marks scored artifacts and
    baselines that involve no training here.
    """

    model_config = ConfigDict(extra="forbid")

    stopped_by: StopReason
    epochs: int | None = Field(default=None, ge=0)  # epochs (or steps) actually trained
    best_epoch: int | None = None
    note: str = ""
    curve: dict[str, list[float]] = Field(default_factory=dict)  # e.g. validation MRR@10 per epoch

    @property
    def converged(self) -> bool:
        return self.stopped_by in CONVERGED_REASONS


class RunRecord(BaseModel):
    """Everything needed to trust (or rerun) one reproduced number."""

    model_config = ConfigDict(extra="forbid")

    schema_version: int = SCHEMA_VERSION
    paper: str
    variant: str
    dataset: str
    scale: Scale
    origin: Origin = "trained"
    source: str | None = None
    dataset_files: dict[str, str]
    config: dict[str, Any]
    seed: int
    metrics: Metrics
    selection_rule: str
    training: Training
    deviations: list[str] = Field(default_factory=list)
    git: GitState
    packages: dict[str, str]
    hardware: Hardware
    wall_time_s: float
    started_at: str
    ended_at: str
    resumed: bool = False
    run_dir: str | None = None

    @property
    def truncated(self) -> bool:
        return not self.training.converged


def _upgrade(raw: dict[str, Any]) -> dict[str, Any]:
    """Read a version-1 record as version 2 (see the module docstring for the rule)."""
    if raw.get("schema_version", 1) >= 2:
        return raw
    if raw.get("origin", "trained") != "trained":
        reason, note = "not-trained", "schema v1 record of a scored artifact"
    elif raw.get("scale") == "full":
        reason, note = "recipe", "schema v1 record: the full recipe's own stopping rule"
    else:
        reason, note = "budget", "schema v1 record of a reduced recipe, read as truncated"
    return {**raw, "training": {"stopped_by": reason, "note": note}}


def utc_now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def git_state(repo: Path | None = None, paths: tuple[str, ...] = ()) -> GitState:
    """Current commit and whether files under ``paths`` (default: all) differ from it.

    Modified tracked files and untracked files that git does not ignore both count: a freshly
    forked paper folder, not yet committed, is code the commit does not hold. A run depends on
    its paper folder, ``common`` and the environments; limiting the check to those keeps
    unrelated edits elsewhere in a shared checkout from flagging it.
    """
    cwd = str(repo) if repo else None
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, check=True
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=all", "--", *paths],
            cwd=cwd,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return GitState(commit="unknown", dirty=True)
    return GitState(commit=commit, dirty=bool(status.strip()))


def package_versions(names: tuple[str, ...] = TRACKED_PACKAGES) -> dict[str, str]:
    versions = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def hardware_info(device: str) -> Hardware:
    import torch

    name = platform.processor() or platform.machine()
    if device.startswith("cuda") and torch.cuda.is_available():
        name = torch.cuda.get_device_name(torch.device(device))
    return Hardware(
        device=device,
        device_name=name,
        cpu=platform.processor() or platform.machine(),
        cpu_count=os.cpu_count() or 1,
        platform=platform.platform(),
        python=platform.python_version(),
        torch_threads=torch.get_num_threads(),
        cpu_model=cpu_model_name(),
        cpu_capability=torch.backends.cpu.get_cpu_capability(),
    )


def record_dir(results_dir: Path, paper: str, dataset: str) -> Path:
    return results_dir / "runs" / paper / dataset


def default_results_dir() -> Path:
    """``$CLREPRO_RESULTS_DIR``, else the repository's ``results`` folder."""
    return Path(os.environ.get(RESULTS_DIR_ENV) or repo_root() / "results").resolve()


def _record_json(record: RunRecord) -> str:
    return json.dumps(record.model_dump(), indent=2, sort_keys=False) + "\n"


def write_record(record: RunRecord, results_dir: Path) -> Path:
    """Write ``record`` under ``results/runs/<paper>/<dataset>/`` with a unique name.

    The file is written to a temporary name and linked into place, so a reader never sees a
    partial record and an existing record is never replaced; a failed write (a full disk)
    leaves no temporary file behind.
    """
    folder = record_dir(results_dir, record.paper, record.dataset)
    folder.mkdir(parents=True, exist_ok=True)
    stamp = record.ended_at.replace(":", "").replace("-", "").replace("+0000", "Z")
    name = f"{record.variant}_{record.scale}_seed{record.seed}_{stamp}_{uuid.uuid4().hex[:8]}.json"
    final = folder / name
    tmp = folder / f".{name}.tmp"
    try:
        tmp.write_text(_record_json(record))
        os.link(tmp, final)
    except FileExistsError as exc:
        raise RecordError(f"refusing to overwrite the existing record {final}") from exc
    finally:
        tmp.unlink(missing_ok=True)
    return final


def keep_pending(record: RunRecord, run_dir: Path) -> Path:
    """Keep a record that could not be written in its run folder (``record.pending.json``)."""
    path = run_dir / PENDING_NAME
    tmp = path.with_name(PENDING_NAME + ".tmp")
    try:
        tmp.write_text(_record_json(record))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def import_command(pending: Path, results_dir: Path) -> str:
    """The command that writes a kept record later."""
    command = f"python -m common.records --import {pending}"
    if results_dir != default_results_dir():
        command += f" --results-dir {results_dir}"
    return command


def import_pending(pending: Path, results_dir: Path) -> Path:
    """Write a kept record (see :func:`keep_pending`) into ``results_dir``; mark its run done."""
    done = pending.parent / DONE_NAME
    if done.is_file():
        raise RecordError(f"{pending.parent} is already recorded in {done.read_text().strip()}")
    final = write_record(read_record(pending), results_dir)
    done.write_text(f"{final}\n")
    pending.unlink()
    return final


def read_record(path: Path) -> RunRecord:
    try:
        raw = json.loads(path.read_text())
        if not isinstance(raw, dict):
            raise ValueError("a record is a JSON object")
        return RunRecord.model_validate(_upgrade(raw))
    except (ValidationError, ValueError) as exc:
        raise RecordError(
            f"run record {path} does not match schema v{SCHEMA_VERSION}: {exc}"
        ) from exc


# Config fields that change how fast a run goes, not what it computes.
OPERATIONAL_KEYS = frozenset({"threads", "eval_batch_size"})
SampleKey = tuple[str, str, str, str, str, str, int]


def config_identity(config: dict[str, Any]) -> str:
    """A short hash of what a config computes: operational fields (threads) and fields left
    unset (``None``, as older records that lack a later field) do not count."""
    kept = {k: v for k, v in config.items() if k not in OPERATIONAL_KEYS and v is not None}
    return hashlib.sha256(json.dumps(kept, sort_keys=True).encode()).hexdigest()[:8]


def sample_key(record: RunRecord) -> SampleKey:
    """A seed is one sample: (paper, variant, dataset, scale, origin, config, seed)."""
    return (record.paper, record.variant, record.dataset, record.scale, record.origin,
            config_identity(record.config), record.seed)  # fmt: skip


def unique_seeds(records: Iterable[RunRecord]) -> list[RunRecord]:
    """One record per sample key, the first one run; later repeats are checks, not samples."""
    first: dict[SampleKey, RunRecord] = {}
    for record in sorted(records, key=lambda r: r.started_at):
        first.setdefault(sample_key(record), record)
    return list(first.values())


def repeated_seeds(records: Iterable[RunRecord]) -> dict[SampleKey, list[RunRecord]]:
    """Sample keys recorded more than once (reruns of a seed), oldest first."""
    groups: dict[SampleKey, list[RunRecord]] = {}
    for record in sorted(records, key=lambda r: r.started_at):
        groups.setdefault(sample_key(record), []).append(record)
    return {key: group for key, group in groups.items() if len(group) > 1}


def load_records(results_dir: Path, paper: str | None = None) -> list[RunRecord]:
    """Every record under ``results_dir/runs`` (optionally one paper's), oldest first."""
    root = results_dir / "runs" if paper is None else results_dir / "runs" / paper
    if not root.exists():
        return []
    return [read_record(p) for p in sorted(root.rglob("*.json"))]


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m common.records --import PATH``: write a record kept after a failed write."""
    parser = argparse.ArgumentParser(
        prog="python -m common.records",
        description="Write a run record that a run kept in its work folder (record.pending.json) "
        "because results/ could not be written.",
    )
    parser.add_argument("--import", dest="pending", type=Path, required=True, metavar="PATH")
    parser.add_argument("--results-dir", type=Path, default=None, help="default: results/")
    args = parser.parse_args(argv)
    results_dir = (args.results_dir or default_results_dir()).resolve()
    try:
        final = import_pending(args.pending, results_dir)
    except (ClreproError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"record: {final}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

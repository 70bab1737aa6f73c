"""Run a paper: resolve configs, loop over variants and seeds, checkpoint, resume, record.

A paper's ``__main__.py`` is three lines::

    from common.runner import PaperEntry, main
    from .train import Config, run
    raise SystemExit(main(PaperEntry(folder=Path(__file__).parent, config_model=Config, run=run)))

``run(config, ctx)`` trains (or scores) one (variant, dataset, seed) and returns a
:class:`RunOutcome`; this module writes the run record and prints the paper's comparison.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import shlex
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import torch
from tqdm.auto import tqdm

from common.cli import PaperInfo, parse_reproduce_args, read_paper_info, repo_root
from common.config import StrictModel, load_config
from common.data import resolve_data_root
from common.distributed import init_from_env, is_distributed, rank
from common.errors import ClreproError, RecordError
from common.records import (
    DONE_NAME,
    Metrics,
    Origin,
    RunRecord,
    StopReason,
    Training,
    config_identity,
    default_results_dir,
    git_state,
    hardware_info,
    import_command,
    keep_pending,
    package_versions,
    read_record,
    record_dir,
    utc_now,
    write_record,
)
from common.rundir import CHECKPOINT_NAME, check_writable, choose_run_dir, remove_failed_attempt
from common.seeding import capture_rng_state, restore_rng_state, seed_everything, select_device

T = TypeVar("T")
INTERRUPTED_EXIT = 130  # the shell's status for a process ended by Ctrl-C (128 + SIGINT)
LAUNCHER_ENV = "CLREPRO_LAUNCHER"  # how the user started this run (nox sets it), see main()


@dataclass
class RunOutcome:
    """What one run gives back to the runner (``training`` says how its training ended)."""

    validation: dict[str, float]
    test: dict[str, float]
    selection_rule: str
    dataset_files: dict[str, str]
    training: Training
    origin: Origin = "trained"
    source: str | None = None
    deviations: list[str] = field(default_factory=list)


@dataclass
class RunContext:
    """Everything a paper's ``run`` needs besides its config."""

    paper: str
    variant: str
    dataset: str
    scale: str
    seed: int
    device: torch.device
    data_root: Path
    run_dir: Path
    resume: bool
    options: dict[str, Any]
    logger: logging.Logger
    recipe: Any = None  # the paper's own (full-scale) config for this variant and dataset
    tensorboard: Any = None
    resumed: bool = False
    earlier_seconds: float = 0.0  # training time of the attempts before a resume
    clock: float = field(default_factory=time.perf_counter)

    @property
    def elapsed(self) -> float:
        """Seconds this run has trained, earlier attempts included."""
        return self.earlier_seconds + time.perf_counter() - self.clock

    def stopped_by_cap(self, config: Any, field_name: str = "epochs") -> bool:
        """True when ``config`` caps ``field_name`` (dotted: ``adameow.epochs``) below the
        paper's own recipe: a run that reaches that cap is truncated."""
        if self.recipe is None:
            return False
        return bool(_field(config, field_name) < _field(self.recipe, field_name))

    def training_end(
        self, config: Any, early_stopped: bool, epochs: int, best_epoch: int | None = None,
        field_name: str = "epochs", curve: dict[str, list[float]] | None = None,
    ) -> Training:  # fmt: skip
        """How training ended: patience, the recipe's full count, or a budget below it."""
        reason: StopReason = "early-stopping"
        if not early_stopped:
            reason = "budget" if self.stopped_by_cap(config, field_name) else "recipe-epochs"
        return Training(stopped_by=reason, epochs=epochs, best_epoch=best_epoch, curve=curve or {})

    @property
    def checkpoint_path(self) -> Path:
        return self.run_dir / CHECKPOINT_NAME

    def save_checkpoint(self, state: dict[str, Any]) -> None:
        """Atomically write ``state`` plus every RNG state (a crash never leaves half a file)."""
        if rank() != 0:  # under torchrun every rank holds the same model; one file suffices
            return
        payload = dict(state, _rng=capture_rng_state(), _elapsed=self.elapsed)
        tmp = self.checkpoint_path.with_suffix(".tmp")
        try:
            torch.save(payload, tmp)
            os.replace(tmp, self.checkpoint_path)
        finally:  # a full disk or Ctrl-C while saving leaves the previous checkpoint only
            tmp.unlink(missing_ok=True)

    def load_checkpoint(self) -> dict[str, Any] | None:
        """The last checkpoint when resuming (RNG states restored), else None."""
        if not (self.resume and self.checkpoint_path.is_file()):
            return None
        state: dict[str, Any] = torch.load(
            self.checkpoint_path, map_location="cpu", weights_only=False
        )
        restore_rng_state(state.pop("_rng"))
        self.earlier_seconds = float(state.pop("_elapsed", 0.0))
        self.resumed = True
        self.logger.info("resumed from %s", self.checkpoint_path)
        return state

    def log_metrics(self, step: int, metrics: dict[str, float], prefix: str) -> None:
        shown = "  ".join(f"{k}={v:.4f}" for k, v in metrics.items())
        self.logger.info("[%s %d] %s", prefix, step, shown)
        if self.tensorboard is not None:
            for key, value in metrics.items():
                self.tensorboard.add_scalar(f"{prefix}/{key}", value, step)

    def progress(self, iterable: Iterable[T], desc: str, total: int | None = None) -> Iterable[T]:
        # disable=None: a bar on a terminal, nothing in redirected logs (they keep the epoch lines)
        bar: Iterable[T] = tqdm(
            iterable, desc=desc, total=total, leave=False, dynamic_ncols=True, disable=None
        )
        return bar


def _field(config: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        config = getattr(config, part)
    return config


RunFn = Callable[[Any, RunContext], RunOutcome]


@dataclass(frozen=True)
class PaperEntry:
    folder: Path
    config_model: type[StrictModel]
    run: RunFn


def config_path(folder: Path, scale: str) -> Path:
    return folder / "configs" / f"{scale}.yaml"


def resolve_config(
    entry: PaperEntry, scale: str, dataset: str, variant: str, overrides: Sequence[str]
) -> StrictModel:
    """The config file of ``scale``, its dataset override, the variant, then the command line;
    an error names each bad key and whether it came from the file or the command line."""
    path = config_path(entry.folder, scale)
    source = f"config {_shown(path)}"
    return load_config(entry.config_model, path, dataset, overrides, {"variant": variant}, source)


def _shown(path: Path) -> Path:
    """``path`` relative to the current folder when it lies below it."""
    try:
        return path.relative_to(Path.cwd())
    except ValueError:
        return path


def config_hash(config: StrictModel) -> str:
    text = json.dumps(config.model_dump(mode="json"), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def _barrier() -> None:
    if is_distributed():
        import torch.distributed as dist

        dist.barrier()


def make_logger(run_dir: Path, name: str, process_rank: int = 0) -> logging.Logger:
    logger = logging.getLogger(f"clrepro.{name}.{process_rank}")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S")
    log_name = "train.log" if process_rank == 0 else f"train.rank{process_rank}.log"
    for handler in (logging.FileHandler(run_dir / log_name), logging.StreamHandler(sys.stderr)):
        handler.setFormatter(fmt)
        logger.addHandler(handler)
    return logger


def _tensorboard_writer(enabled: bool, run_dir: Path) -> Any:
    if not enabled:
        return None
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as exc:
        raise ClreproError("--tensorboard needs the tensorboard package installed") from exc
    return SummaryWriter(log_dir=str(run_dir / "tensorboard"))


@dataclass(frozen=True)
class Invocation:
    """The parsed command line, independent of argparse."""

    dataset: str
    scale: str
    seeds: int
    first_seed: int
    variants: tuple[str, ...]
    data_root: Path
    device: torch.device
    resume: bool
    rerun: bool
    results_dir: Path
    work_dir: Path
    tensorboard: bool
    overrides: tuple[str, ...]
    options: dict[str, Any]


def recorded_run(
    results_dir: Path, paper: str, dataset: str, scale: str, config: StrictModel, seed: int
) -> tuple[RunRecord, Path] | None:
    """The first record of this (paper, dataset, scale, resolved config, seed), if any."""
    identity = config_identity(config.model_dump(mode="json"))
    found = []
    for path in sorted(record_dir(results_dir, paper, dataset).glob("*.json")):
        record = read_record(path)
        if (record.scale, record.seed) == (scale, seed) and (
            config_identity(record.config) == identity
        ):
            found.append((record, path))
    return min(found, key=lambda pair: pair[0].started_at) if found else None


def _machine(record: RunRecord) -> str:
    hw = record.hardware
    kernels = f", {hw.cpu_capability}" if hw.cpu_capability else ""
    return f"{hw.cpu_model or hw.device_name}{kernels}, {hw.torch_threads} thread(s)"


def agreement_lines(first: RunRecord, repeat_path: Path) -> list[str]:
    """Each test metric of a repeat beside the recorded run's, with the difference."""
    repeat = read_record(repeat_path)
    lines = [f"repeat of {first.variant} seed {first.seed} (recorded at commit "
             f"{first.git.commit[:7]} on {_machine(first)}; repeat at "
             f"{repeat.git.commit[:7]} on {_machine(repeat)}):"]  # fmt: skip
    if not first.hardware.same_kernels(repeat.hardware):
        lines.append("  (other hardware, kernels or threads than the record's, or a record that "
                     "does not say: floats may differ in the last bits, and training amplifies "
                     "that; repeat on the recording machine to check the code)")  # fmt: skip
    for metric, value in first.metrics.test.items():
        again = repeat.metrics.test.get(metric, float("nan"))
        lines.append(f"  {metric:>16}  recorded {value:.5f}  repeat {again:.5f}  "
                     f"difference {again - value:+.5f}")  # fmt: skip
    return lines


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C during one run: which run, and the checkpoint it can resume from (if any)."""

    def __init__(self, what: str, checkpoint: Path | None) -> None:
        super().__init__(what)
        self.what, self.checkpoint = what, checkpoint


def run_one(entry: PaperEntry, info: PaperInfo, inv: Invocation, variant: str, seed: int) -> Path:
    """Train (or resume, or skip if already recorded) one seed of one variant; return its record.

    A seed that already has a record for the same resolved config is skipped (a seed is one
    sample); ``--rerun`` trains it again and writes the repeat under ``<work>/repeats``.
    """
    config = resolve_config(entry, inv.scale, inv.dataset, variant, inv.overrides)
    found = recorded_run(inv.results_dir, info.name, inv.dataset, inv.scale, config, seed)
    earlier = found[0] if found and inv.scale != "smoke" else None
    if found and earlier is not None and not inv.rerun:
        if rank() == 0:
            hint = "add seeds with --first-seed, or repeat this one with --rerun"
            print(f"skipped: {variant} seed {seed} is already recorded ({found[1]}); {hint}",
                  file=sys.stderr)  # fmt: skip
        return found[1]
    target = inv
    if earlier is not None and inv.rerun:
        target = dataclasses.replace(inv, results_dir=inv.work_dir / "repeats")
    name = f"{variant}-{inv.scale}-seed{seed}-{config_hash(config)}"
    base = inv.work_dir / info.name / inv.dataset / name
    path = _attempt(entry, info, target, variant, seed, config, base)
    if earlier is not None and inv.rerun and rank() == 0:
        print("\n".join(agreement_lines(earlier, path)), file=sys.stderr)
    return path


def _attempt(entry: PaperEntry, info: PaperInfo, inv: Invocation, variant: str, seed: int,
             config: StrictModel, base: Path) -> Path:  # fmt: skip
    """One attempt at a run: a fresh (or resumed) work folder, cleaned up if it fails early."""
    run_dir = choose_run_dir(base, inv.resume)
    done = run_dir / DONE_NAME
    if inv.resume and done.is_file():
        recorded = Path(done.read_text().strip())
        if recorded.resolve().is_relative_to(inv.results_dir.resolve()):
            _barrier()
            print(f"already recorded: {recorded}", file=sys.stderr)
            return recorded
        # finished for another results folder (a tuning search's): a new attempt for this one
        run_dir = choose_run_dir(base, resume=False)
    _barrier()  # every rank chose the same folder before any rank creates it
    run_dir.mkdir(parents=True, exist_ok=True)
    ctx: RunContext | None = None
    try:
        ctx = _context(entry, info, inv, variant, seed, run_dir)
        return _train_and_record(entry, info, inv, config, ctx)
    except BaseException as exc:
        if ctx is not None:
            _close(ctx)
        if rank() == 0:
            remove_failed_attempt(run_dir)  # nothing worth keeping: no checkpoint, no record
        if isinstance(exc, KeyboardInterrupt):
            ckpt = run_dir / CHECKPOINT_NAME
            where = f"{info.name} {variant} on {inv.dataset}, seed {seed}"
            raise RunInterrupted(where, ckpt if ckpt.is_file() else None) from None
        raise


def _context(
    entry: PaperEntry, info: PaperInfo, inv: Invocation, variant: str, seed: int, run_dir: Path
) -> RunContext:
    return RunContext(
        paper=info.name,
        variant=variant,
        dataset=inv.dataset,
        scale=inv.scale,
        seed=seed,
        device=inv.device,
        data_root=inv.data_root,
        run_dir=run_dir,
        resume=inv.resume,
        options=inv.options,
        logger=make_logger(run_dir, f"{info.name}.{variant}.{seed}", rank()),
        recipe=resolve_config(entry, "full", inv.dataset, variant, ()),
        tensorboard=_tensorboard_writer(inv.tensorboard, run_dir),
    )


def _close(ctx: RunContext) -> None:
    """Close the run's TensorBoard writer and log files."""
    if ctx.tensorboard is not None:
        ctx.tensorboard.close()
    for handler in list(ctx.logger.handlers):
        ctx.logger.removeHandler(handler)
        handler.close()


def _train_and_record(
    entry: PaperEntry, info: PaperInfo, inv: Invocation, config: StrictModel, ctx: RunContext
) -> Path:
    ctx.logger.info(
        "%s %s on %s, scale %s, seed %d -> %s",
        info.name,
        ctx.variant,
        inv.dataset,
        inv.scale,
        ctx.seed,
        ctx.run_dir,
    )
    seed_everything(ctx.seed)
    # the code this process runs is the code at its start; later commits must not be credited
    code = (
        git_state(repo_root(), (f"papers/{info.name}", "common", "environments"))
        if rank() == 0
        else None
    )
    started, ctx.clock = utc_now(), time.perf_counter()
    outcome = entry.run(config, ctx)
    if rank() != 0 or code is None:
        _close(ctx)
        return ctx.run_dir
    record = RunRecord(
        paper=info.name,
        variant=ctx.variant,
        dataset=inv.dataset,
        scale=inv.scale,  # type: ignore[arg-type]
        origin=outcome.origin,
        source=outcome.source,
        dataset_files=outcome.dataset_files,
        config=config.model_dump(mode="json"),
        seed=ctx.seed,
        metrics=Metrics(validation=outcome.validation, test=outcome.test),
        selection_rule=outcome.selection_rule,
        training=outcome.training,
        deviations=outcome.deviations,
        git=code,
        packages=package_versions(),
        hardware=hardware_info(str(inv.device)),
        wall_time_s=round(ctx.elapsed, 3),
        started_at=started,
        ended_at=utc_now(),
        resumed=ctx.resumed,
        run_dir=str(ctx.run_dir),
    )
    path = write_or_keep(record, inv.results_dir, ctx.run_dir)
    ctx.logger.info("record: %s  test: %s", path, outcome.test)
    _close(ctx)
    return path


def write_or_keep(record: RunRecord, results_dir: Path, run_dir: Path) -> Path:
    """Write the record and mark the run done; when the write fails (a full disk, a read-only
    folder), keep the record in the run folder and say, in one line, how to write it later."""
    try:
        path = write_record(record, results_dir)
    except OSError as exc:
        target = record_dir(results_dir, record.paper, record.dataset)
        why = exc.strerror or str(exc)
        try:
            pending = keep_pending(record, run_dir)
        except OSError as keep_exc:
            raise RecordError(
                f"could not write the record to {target} ({why}) nor keep it in {run_dir} "
                f"({keep_exc.strerror or keep_exc})"
            ) from exc
        raise RecordError(
            f"could not write the record to {target} ({why}); the finished run's record is "
            f"kept in {pending}: write it later with `{import_command(pending, results_dir)}`"
        ) from exc
    (run_dir / DONE_NAME).write_text(str(path) + "\n")
    return path


def invocation_from_args(args: Any, info: PaperInfo) -> Invocation:
    return Invocation(
        dataset=args.dataset,
        scale=args.scale,
        seeds=args.seeds,
        first_seed=args.first_seed,
        variants=tuple(args.variants),
        data_root=resolve_data_root(args.data_root),
        device=_process_device(select_device(args.device)),
        resume=args.resume,
        rerun=args.rerun,
        results_dir=Path(args.results_dir).resolve() if args.results_dir else default_results_dir(),
        work_dir=Path(args.work_dir or os.environ.get("CLREPRO_WORK_DIR") or "work").resolve(),
        tensorboard=args.tensorboard,
        overrides=tuple(args.overrides),
        options={o.dest: getattr(args, o.dest) for o in info.extra_options},
    )


def _process_device(device: torch.device) -> torch.device:
    """Under torchrun each process takes the GPU of its local rank."""
    local = os.environ.get("LOCAL_RANK")
    if device.type == "cuda" and device.index is None and local is not None:
        return torch.device("cuda", int(local))
    return device


def check_folders(info: PaperInfo, inv: Invocation) -> None:
    """Fail before any training when the record or the run folders cannot be written."""
    check_writable(record_dir(inv.results_dir, info.name, inv.dataset), "results folder",
                   "--results-dir")  # fmt: skip
    check_writable(inv.work_dir / info.name / inv.dataset, "work folder", "--work-dir")


def dry_run_summary(info: PaperInfo, inv: Invocation) -> str:
    """What ``--dry-run`` prints: the runs this command would make, after every check passed."""
    seeds = f"seeds {inv.first_seed}..{inv.first_seed + inv.seeds - 1}"
    variants = ", ".join(inv.variants)
    return (
        f"ok: {info.name} on {inv.dataset}, scale {inv.scale}, variants {variants}, {seeds}; "
        f"records to {record_dir(inv.results_dir, info.name, inv.dataset)}"
    )


def resume_command(paper: str, argv: Sequence[str]) -> str:
    """The command line that continues this invocation (``$CLREPRO_LAUNCHER``: how it was
    started, with ``{paper}`` for the paper; default ``python -m papers.{paper}``)."""
    launcher = os.environ.get(LAUNCHER_ENV) or "python -m papers.{paper}"
    args = [*argv] if "--resume" in argv else [*argv, "--resume"]
    return f"{launcher.format(paper=paper)} {shlex.join(args)}"


def interrupted_line(stop: KeyboardInterrupt, paper: str, argv: Sequence[str]) -> str:
    """One line for Ctrl-C: the run, its checkpoint, and the command that resumes."""
    command = resume_command(paper, argv)
    if not isinstance(stop, RunInterrupted):
        return f"interrupted before any run started; to start again: {command}"
    if stop.checkpoint is None:
        return f"interrupted {stop.what} before its first checkpoint; to continue: {command}"
    return f"interrupted {stop.what}; checkpoint {stop.checkpoint}; to resume: {command}"


def main(entry: PaperEntry, argv: Sequence[str] | None = None, compare: bool = True) -> int:
    """Entry point of ``python -m papers.<name>``; bad input is one line and exit status 2,
    Ctrl-C one line naming the checkpoint and the ``--resume`` command, and exit status 130.

    ``compare=False`` skips the closing reported-vs-reproduced table (for callers, such as a
    hyper-parameter search, whose runs are not comparable rows).
    """
    info = read_paper_info(entry.folder)
    raw = list(sys.argv[1:] if argv is None else argv)
    _, args = parse_reproduce_args([info.name, *raw], entry.folder.parent)
    try:
        init_from_env()  # a no-op unless launched by torchrun
        inv = invocation_from_args(args, info)
        for variant in inv.variants:  # validate every config before the first long run
            resolve_config(entry, inv.scale, inv.dataset, variant, inv.overrides)
        check_folders(info, inv)
        if args.dry_run:
            print(dry_run_summary(info, inv))
            return 0
        done = _run_all(entry, info, inv)
        if compare and rank() == 0:
            from common.report import print_invocation, print_paper_comparison

            print_invocation(done, info.name, inv.results_dir)
            print_paper_comparison(inv.results_dir, info.name, datasets=[inv.dataset])
    except ClreproError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as stop:
        if rank() == 0:
            print(interrupted_line(stop, info.name, raw), file=sys.stderr)
        return INTERRUPTED_EXIT
    return 0


def _run_all(entry: PaperEntry, info: PaperInfo, inv: Invocation) -> list[tuple[str, int, Path]]:
    """Every (variant, seed) of the invocation, with progress lines; (variant, seed, record)."""
    done = []
    seeds = range(inv.first_seed, inv.first_seed + inv.seeds)
    for k, variant in enumerate(inv.variants, 1):
        for j, seed in enumerate(seeds, 1):
            if rank() == 0:
                print(f"== {info.name} · {inv.dataset} · {inv.scale}: variant {k} of "
                      f"{len(inv.variants)} ({variant}), seed {j} of {len(seeds)} ({seed})",
                      file=sys.stderr)  # fmt: skip
            done.append((variant, seed, run_one(entry, info, inv, variant, seed)))
    return done

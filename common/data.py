"""Dataset registry, data root resolution, checksum-verified local files and resumable downloads.

Each dataset is a list of files, each with the official URL, its path under the data root (the
dataset's official layout, so ``../shared/datasets`` works as a data root as it is), sha256 and
size. :func:`ensure_files` returns verified local paths: a local file is hashed and checked, a
missing file is downloaded (resuming a partial ``.part`` file, verifying, then moving into place
atomically), and without a network the error names the URL and how to point ``--data-root`` at a
local copy.
"""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from common.errors import DataError

DATA_ROOT_ENV = "CLREPRO_DATA_ROOT"
_CHUNK = 1 << 20


@dataclass(frozen=True)
class DataFile:
    """One file of a dataset: where it lives under the data root and where it comes from."""

    path: str
    url: str
    sha256: str
    size: int


@dataclass(frozen=True)
class DatasetSpec:
    """A registered dataset: its files plus licence and citation shown to users."""

    name: str
    files: tuple[DataFile, ...]
    licence: str
    citation: str
    homepage: str = ""
    notes: str = ""
    derived: tuple[str, ...] = field(default=())

    def file(self, path: str) -> DataFile:
        for item in self.files:
            if item.path == path:
                return item
        raise DataError(f"dataset {self.name!r} has no file {path!r}")


_REGISTRY: dict[str, DatasetSpec] = {}


def register(spec: DatasetSpec) -> DatasetSpec:
    """Add a dataset to the registry (idempotent for an identical spec)."""
    existing = _REGISTRY.get(spec.name)
    if existing is not None and existing != spec:
        raise ValueError(f"dataset {spec.name!r} is already registered with other files")
    _REGISTRY[spec.name] = spec
    return spec


def get_dataset(name: str) -> DatasetSpec:
    """Look a dataset up by name; an unknown name lists the registered ones."""
    _load_catalog()
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY)) or "(none)"
        raise DataError(f"unknown dataset {name!r}; registered datasets: {known}") from None


def registered_datasets() -> list[str]:
    _load_catalog()
    return sorted(_REGISTRY)


def _load_catalog() -> None:
    import common.catalog  # noqa: F401  (registers the shared datasets on import)


def default_cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "clrepro" / "datasets"


def resolve_data_root(cli_value: str | os.PathLike[str] | None = None) -> Path:
    """``--data-root`` if given, else ``$CLREPRO_DATA_ROOT``, else the user cache folder."""
    if cli_value:
        return Path(cli_value).expanduser().resolve()
    env = os.environ.get(DATA_ROOT_ENV)
    if env:
        return Path(env).expanduser().resolve()
    return default_cache_root()


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_file(path: Path, expected: DataFile) -> None:
    """Raise :class:`DataError` if ``path`` is truncated or its sha256 differs."""
    size = path.stat().st_size
    if size != expected.size:
        raise DataError(
            f"{path} has {size} bytes, expected {expected.size}: the file is truncated or "
            f"corrupt; delete it (it will be downloaded again from {expected.url})"
        )
    actual = sha256_of(path)
    if actual != expected.sha256:
        raise DataError(
            f"{path} fails its checksum (sha256 {actual[:12]}…, expected {expected.sha256[:12]}…); "
            f"delete it and download it again from {expected.url}"
        )


Opener = Callable[[urllib.request.Request], object]


def download(item: DataFile, dest: Path, opener: Opener | None = None) -> Path:
    """Download ``item`` to ``dest``: resume a ``.part`` file, verify, then move into place."""
    if not item.url:
        raise DataError(
            f"{dest} is missing and {item.path} has no single-file official download; place the "
            f"file there or point --data-root (or ${DATA_ROOT_ENV}) at a folder that holds it"
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.exists() else 0
    if have > item.size:
        part.unlink()
        have = 0
    if have < item.size:
        request = urllib.request.Request(item.url)
        if have:
            request.add_header("Range", f"bytes={have}-")
        open_url = opener or (lambda req: urllib.request.urlopen(req, timeout=60))
        try:
            response = open_url(request)
        except (urllib.error.URLError, OSError) as exc:
            raise DataError(
                f"cannot download {item.url} ({exc}). Without internet, copy the file to {dest} "
                f"or point --data-root (or ${DATA_ROOT_ENV}) at a folder that holds {item.path}"
            ) from exc
        _write_response(response, part, resumed=have > 0)
    verify_file(part, item)
    os.replace(part, dest)
    return dest


def _write_response(response: object, part: Path, resumed: bool) -> None:
    status = getattr(response, "status", 200)
    mode = "ab" if resumed and status == 206 else "wb"
    read = getattr(response, "read")  # noqa: B009  (urllib responses and test fakes alike)
    with part.open(mode) as handle:
        for block in iter(lambda: read(_CHUNK), b""):
            handle.write(block)
    close = getattr(response, "close", None)
    if callable(close):
        close()


def ensure_files(
    name: str,
    data_root: Path,
    paths: Iterable[str] | None = None,
    allow_download: bool = True,
    opener: Opener | None = None,
) -> dict[str, Path]:
    """Verified local paths of a dataset's files (all, or those in ``paths``)."""
    spec = get_dataset(name)
    wanted = list(paths) if paths is not None else [f.path for f in spec.files]
    resolved: dict[str, Path] = {}
    for rel in wanted:
        item = spec.file(rel)
        local = data_root / item.path
        if local.is_file():
            verify_file(local, item)
        elif allow_download:
            download(item, local, opener=opener)
        else:
            raise DataError(
                f"{local} is missing; download it from {item.url} or point --data-root at a "
                f"folder holding {item.path}"
            )
        resolved[rel] = local
    return resolved


def checksums(files: dict[str, Path], spec_name: str) -> dict[str, str]:
    """The verified sha256 of each file, for run records."""
    spec = get_dataset(spec_name)
    return {rel: spec.file(rel).sha256 for rel in files}


def spec_for_local_files(name: str, root: Path, paths: Iterable[str]) -> DatasetSpec:
    """A spec describing files that already exist under ``root`` (for tests' generated data)."""
    files = tuple(
        DataFile(rel, "", sha256_of(root / rel), (root / rel).stat().st_size) for rel in paths
    )
    return DatasetSpec(name=name, files=files, licence="test data", citation="generated")


@contextmanager
def temporary_dataset(spec: DatasetSpec) -> Iterator[DatasetSpec]:
    """Register ``spec`` in place of any dataset of that name until the block ends.

    Lets a smoke test run the real loaders, with checksum verification on, over tiny files it
    generated itself.
    """
    _load_catalog()
    previous = _REGISTRY.get(spec.name)
    _REGISTRY[spec.name] = spec
    try:
        yield spec
    finally:
        if previous is None:
            _REGISTRY.pop(spec.name, None)
        else:
            _REGISTRY[spec.name] = previous

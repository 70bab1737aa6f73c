"""Dataset registry, data root resolution, checksum-verified local files and resumable downloads.

Each dataset is a list of files, each with the official URL, its path under the data root (the
dataset's official layout, so ``../shared/datasets`` works as a data root as it is), sha256 and
size (an md5 instead where the official source publishes only that). :func:`ensure_files` returns
verified local paths: a local file is hashed and checked, a missing file is downloaded (resuming a
partial ``.part`` file, verifying, then moving into place atomically) or, when it is a member of
a registered archive, extracted from the verified archive; without a network the error names the
URL and how to point ``--data-root`` at a local copy.

Datasets are declared as data: a paper's own in ``papers/<name>/datasets.toml`` (registered by
the paper's code with :func:`register_folder_datasets`), those two or more papers use once in
``common/datasets.toml`` (registered on first use of the registry). The format is
:class:`DatasetsFile`'s.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import tarfile
import tomllib
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from common.errors import DataError

DATA_ROOT_ENV = "CLREPRO_DATA_ROOT"
_CHUNK = 1 << 20


@dataclass(frozen=True)
class DataFile:
    """One file of a dataset: where it lives under the data root and where it comes from.

    ``sha256`` is the checksum; ``md5`` stands in where the official source publishes only an md5
    (``sha256`` is then empty). ``size`` is None when the official source does not state it.
    ``archive`` names the dataset file (a tar archive in the same folder or above) from which
    this file is extracted; its path inside the archive is its path relative to the archive's
    folder. ``sha256_header`` is for files whose official host publishes the sha256 only in a
    response header (Hugging Face: ``X-Linked-Etag``): the download is verified against it and
    the verified digest is kept next to the file in ``<name>.sha256``.
    """

    path: str
    url: str
    sha256: str
    size: int | None
    md5: str = ""
    archive: str = ""
    sha256_header: str = ""

    def checksum_label(self) -> str:
        """How run records name the verified content: ``<sha256>`` or ``md5:<md5>``."""
        return self.sha256 or f"md5:{self.md5}"


@dataclass(frozen=True)
class DatasetSpec:
    """A registered dataset: its files plus licence and citation shown to users."""

    name: str
    files: tuple[DataFile, ...]
    licence: str
    citation: str
    homepage: str = ""
    notes: str = ""

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
    shared_specs()
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY)) or "(none)"
        raise DataError(f"unknown dataset {name!r}; registered datasets: {known}") from None


def registered_datasets() -> list[str]:
    shared_specs()
    return sorted(_REGISTRY)


DATASETS_FILE = "datasets.toml"
SHARED_DATASETS = Path(__file__).with_name(DATASETS_FILE)

_TOP_KEYS: dict[str, type] = {"shared": list, "datasets": list}
_SPEC_KEYS: dict[str, type] = {
    "name": str, "licence": str, "citation": str, "homepage": str, "notes": str, "files": list,
}  # fmt: skip
_FILE_KEYS: dict[str, type] = {
    "path": str, "url": str, "sha256": str, "size": int, "md5": str, "archive": str,
    "sha256_header": str,
}  # fmt: skip
_TYPE_NAMES = {str: "a string", int: "an integer", list: "a list"}


@dataclass(frozen=True)
class DatasetsFile:
    """A ``datasets.toml``: the datasets it declares and the shared ones it refers to.

    Format (TOML)::

        shared = ["fashion-mnist"]     # optional: names declared in common/datasets.toml

        [[datasets]]
        name = "seqrec-beauty"         # required, as are licence, citation and files
        licence = "..."
        citation = "..."
        homepage = "..."               # optional, as is notes

        [[datasets.files]]
        path = "seqrec/Beauty.txt"     # required: the path under the data root
        url = "https://..."            # optional, as are sha256, size, md5, archive and
        sha256 = "..."                 # sha256_header (the fields of DataFile)
        size = 1090094
    """

    path: Path
    specs: tuple[DatasetSpec, ...]
    shared: tuple[str, ...]


def read_datasets_file(path: Path) -> DatasetsFile:
    """Parse a ``datasets.toml``; a bad key, type or value is a one-line :class:`DataError`."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"{path} not found: it declares the datasets of its folder") from None
    except tomllib.TOMLDecodeError as exc:
        raise DataError(f"{path} is not valid TOML: {exc}") from None
    top = _checked_table(raw, _TOP_KEYS, (), f"{path}")
    shared = tuple(_strings(top.get("shared", []), f"{path}: shared"))
    specs = tuple(
        _spec_from(entry, f"{path}: datasets[{i}]")
        for i, entry in enumerate(top.get("datasets", []))
    )
    names = [spec.name for spec in specs]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise DataError(f"{path}: dataset {repeated[0]!r} is declared more than once")
    return DatasetsFile(path, specs, shared)


def _checked_table(
    table: object, keys: dict[str, type], required: tuple[str, ...], where: str
) -> dict[str, Any]:
    if not isinstance(table, dict):
        raise DataError(f"{where}: expected a table, got {type(table).__name__}")
    for key, value in table.items():
        expected = keys.get(key)
        if expected is None:
            raise DataError(f"{where}: unknown key {key!r} (valid keys: {', '.join(keys)})")
        if type(value) is not expected:
            raise DataError(
                f"{where}: {key} must be {_TYPE_NAMES[expected]}, got {type(value).__name__}"
            )
    missing = [key for key in required if key not in table]
    if missing:
        raise DataError(f"{where}: missing {', '.join(missing)}")
    return table


def _strings(values: list[Any], where: str) -> list[str]:
    for value in values:
        if not isinstance(value, str):
            raise DataError(f"{where}: {value!r} is not a string")
    return values


def _spec_from(entry: object, where: str) -> DatasetSpec:
    table = _checked_table(entry, _SPEC_KEYS, ("name", "licence", "citation", "files"), where)
    where = f"{where} ({table['name']})"
    files = tuple(_file_from(item, f"{where}: files[{j}]") for j, item in enumerate(table["files"]))
    if not files:
        raise DataError(f"{where}: files is empty")
    return DatasetSpec(
        name=table["name"],
        files=files,
        licence=table["licence"],
        citation=table["citation"],
        homepage=table.get("homepage", ""),
        notes=table.get("notes", ""),
    )


def _file_from(entry: object, where: str) -> DataFile:
    table = _checked_table(entry, _FILE_KEYS, ("path",), where)
    return DataFile(
        path=table["path"],
        url=table.get("url", ""),
        sha256=table.get("sha256", ""),
        size=table.get("size"),
        md5=table.get("md5", ""),
        archive=table.get("archive", ""),
        sha256_header=table.get("sha256_header", ""),
    )


@functools.cache
def shared_specs() -> tuple[DatasetSpec, ...]:
    """The datasets of ``common/datasets.toml`` (those two or more papers use), registered."""
    found = read_datasets_file(SHARED_DATASETS)
    if found.shared:
        raise DataError(f"{SHARED_DATASETS}: the shared file cannot refer to shared datasets")
    for spec in found.specs:
        register(spec)
    return found.specs


def register_folder_datasets(folder: Path) -> tuple[DatasetSpec, ...]:
    """Register the datasets ``folder/datasets.toml`` declares (a paper calls this with its own
    folder, so that a copy of the folder registers its copy); check its shared references."""
    found = read_datasets_file(folder / DATASETS_FILE)
    shared = {spec.name for spec in shared_specs()}
    unknown = [name for name in found.shared if name not in shared]
    if unknown:
        raise DataError(f"{found.path}: shared dataset {unknown[0]!r} is not in {SHARED_DATASETS}")
    for spec in found.specs:
        if spec.name in shared:
            raise DataError(
                f"{found.path}: {spec.name!r} is declared in {SHARED_DATASETS} already; "
                f"list it under shared instead"
            )
        existing = _REGISTRY.get(spec.name)
        if existing is not None and existing != spec:
            raise DataError(
                f"{found.path}: dataset {spec.name!r} differs from the one registered already "
                f"(two folders declare it differently; rename one)"
            )
        register(spec)
    return found.specs


def default_cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "clrepro" / "datasets"


def resolve_data_root(cli_value: str | os.PathLike[str] | None = None) -> Path:
    """``--data-root`` if given, else ``$CLREPRO_DATA_ROOT``, else the user cache folder.

    A root given by the flag or the variable must be an existing folder (a misspelt path is an
    error naming it, not a new empty folder); only the default cache folder is created on use.
    """
    given = ((cli_value, "--data-root"), (os.environ.get(DATA_ROOT_ENV), f"${DATA_ROOT_ENV}"))
    for value, origin in given:
        if value:
            root = Path(value).expanduser().resolve()
            if not root.is_dir():
                raise DataError(f"{origin} {root} does not exist or is not a folder")
            return root
    return default_cache_root()


SHARED_ENV = "CLREPRO_SHARED"


def shared_dir() -> Path:
    """The project machines' shared folder: ``$CLREPRO_SHARED``, else ``../shared`` beside the
    repository. It holds ``datasets/`` (a valid data root) and ``artifacts/`` (the authors'
    released checkpoints and embeddings)."""
    env = os.environ.get(SHARED_ENV)
    return Path(env) if env else Path(__file__).resolve().parents[2] / "shared"


def shared_datasets() -> Path | None:
    """The shared folder of real datasets, or None where it is absent."""
    path = shared_dir() / "datasets"
    return path if path.is_dir() else None


def shared_artifacts() -> Path | None:
    """The shared folder of the authors' official artifacts, or None where it is absent."""
    path = shared_dir() / "artifacts"
    return path if path.is_dir() else None


def sha256_of(path: Path) -> str:
    return _digest(path, "sha256")


def _digest(path: Path, algorithm: str) -> str:
    digest = hashlib.new(algorithm)
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def sidecar(path: Path) -> Path:
    """Where the verified sha256 of a file with a server-published checksum is kept."""
    return path.with_name(path.name + ".sha256")


def _with_kept_sha256(path: Path, expected: DataFile) -> DataFile:
    if expected.sha256 or expected.md5 or not expected.sha256_header:
        return expected
    kept = sidecar(path)
    if not kept.is_file():
        raise DataError(
            f"{path} has no recorded checksum: delete it so that it is downloaded again from "
            f"{expected.url} (verified against the sha256 the server publishes), or write its "
            f"sha256 (from the host's file page) into {kept}"
        )
    return replace(expected, sha256=kept.read_text().strip())


def verify_file(path: Path, expected: DataFile) -> None:
    """Raise :class:`DataError` if ``path`` is truncated or its checksum differs."""
    expected = _with_kept_sha256(path, expected)
    origin = expected.url or expected.archive or "its official source"
    size = path.stat().st_size
    if expected.size is not None and size != expected.size:
        raise DataError(
            f"{path} has {size} bytes, expected {expected.size}: the file is truncated or "
            f"corrupt; delete it (it will be fetched again from {origin})"
        )
    algorithm, wanted = ("sha256", expected.sha256) if expected.sha256 else ("md5", expected.md5)
    if not wanted:
        raise DataError(f"the registry has no checksum for {expected.path}")
    actual = _digest(path, algorithm)
    if actual != wanted:
        raise DataError(
            f"{path} fails its checksum ({algorithm} {actual[:12]}…, expected {wanted[:12]}…); "
            f"delete it and fetch it again from {origin}"
        )


Opener = Callable[[urllib.request.Request], object]


def download(item: DataFile, dest: Path, opener: Opener | None = None) -> Path:
    """Download ``item`` to ``dest``: resume a ``.part`` file, verify, then move into place."""
    if not item.url:
        raise DataError(
            f"{dest} is missing and {item.path} has no single-file official download; place the "
            f"file there or point --data-root (or ${DATA_ROOT_ENV}) at a folder that holds it"
        )
    published = ""
    if item.sha256_header and not (item.sha256 or item.md5):
        published = published_sha256(item, opener)
        item = replace(item, sha256=published)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.exists() else 0
    if item.size is None or have > item.size:  # no stated size: a partial file cannot be trusted
        part.unlink(missing_ok=True)
        have = 0
    if item.size is None or have < item.size:
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
    if published:
        sidecar(dest).write_text(published + "\n")
    os.replace(part, dest)
    return dest


def _no_redirect_open(request: urllib.request.Request) -> object:
    """Open without following redirects: the checksum header is on the first response."""

    class _Stop(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: object, **kwargs: object) -> None:
            return None

    return urllib.request.build_opener(_Stop).open(request, timeout=60)


def published_sha256(item: DataFile, opener: Opener | None = None) -> str:
    """The sha256 the official host publishes for ``item`` in its ``sha256_header``."""
    request = urllib.request.Request(item.url, method="HEAD")
    try:
        response = (opener or _no_redirect_open)(request)
    except urllib.error.HTTPError as exc:  # a redirect not followed still carries the header
        response = exc
    except (urllib.error.URLError, OSError) as exc:
        raise DataError(
            f"cannot reach {item.url} ({exc}). Without internet, copy the file to "
            f"<data root>/{item.path} with its sha256 in {item.path}.sha256, or point "
            f"--data-root (or ${DATA_ROOT_ENV}) at a folder that holds them"
        ) from exc
    headers = getattr(response, "headers", None)
    value = (headers.get(item.sha256_header, "") if headers is not None else "").strip('"')
    if not re.fullmatch(r"[0-9a-f]{64}", value.lower()):
        raise DataError(
            f"{item.url} did not publish a sha256 in its {item.sha256_header!r} header "
            f"(got {value[:80]!r}); the file cannot be verified, so it is not downloaded"
        )
    return value.lower()


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
    return {rel: _ensure_one(spec, rel, data_root, allow_download, opener) for rel in wanted}


def _ensure_one(
    spec: DatasetSpec, rel: str, data_root: Path, allow_download: bool, opener: Opener | None
) -> Path:
    item = spec.file(rel)
    local = data_root / item.path
    if local.is_file():
        verify_file(local, item)
    elif item.archive:
        archive = _ensure_one(spec, item.archive, data_root, allow_download, opener)
        extract_member(archive, item, local)
    elif allow_download:
        download(item, local, opener=opener)
    else:
        raise DataError(
            f"{local} is missing; download it from {item.url} or point --data-root at a "
            f"folder holding {item.path}"
        )
    return local


def extract_member(archive: Path, item: DataFile, dest: Path) -> Path:
    """Extract ``item`` from the verified tar ``archive`` (safely: no links, no paths outside)."""
    member = Path(item.path).relative_to(Path(item.archive).parent).as_posix()
    part = dest.with_name(dest.name + ".part")
    try:
        with tarfile.open(archive) as tar:
            info = tar.getmember(member)
            source = tar.extractfile(info) if info.isfile() else None
            if source is None:
                raise DataError(f"{archive} holds {member!r}, but not as a regular file")
            part.parent.mkdir(parents=True, exist_ok=True)
            with source, part.open("wb") as handle:
                for block in iter(lambda: source.read(_CHUNK), b""):
                    handle.write(block)
    except KeyError:
        raise DataError(
            f"{archive} has no member {member!r}; is it the official archive?"
        ) from None
    except tarfile.TarError as exc:
        raise DataError(f"{archive} is not a readable tar archive ({exc}); delete it") from exc
    verify_file(part, item)
    os.replace(part, dest)
    return dest


def checksums(files: dict[str, Path], spec_name: str) -> dict[str, str]:
    """The verified checksum of each file, for run records (``md5:`` marks an md5)."""
    spec = get_dataset(spec_name)
    return {rel: _with_kept_sha256(path, spec.file(rel)).checksum_label()
            for rel, path in files.items()}  # fmt: skip

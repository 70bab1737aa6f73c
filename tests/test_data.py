from __future__ import annotations

import hashlib
import io
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from common.data import (
    DATA_ROOT_ENV,
    DataFile,
    DatasetSpec,
    checksums,
    download,
    ensure_files,
    get_dataset,
    register_folder_datasets,
    resolve_data_root,
    shared_datasets,
)
from common.errors import DataError
from tests.support.datasets import spec_for_local_files, temporary_dataset

PAYLOAD = b"user 1 2 3\n" * 1000
PAPERS = Path(__file__).resolve().parents[1] / "papers"


def _item(url: str = "https://example.org/d/Beauty.txt") -> DataFile:
    return DataFile("seqrec/Beauty.txt", url, hashlib.sha256(PAYLOAD).hexdigest(), len(PAYLOAD))


class FakeServer:
    """Serves PAYLOAD, honouring Range requests like a real HTTP server (status 206)."""

    def __init__(self) -> None:
        self.ranges: list[str | None] = []

    def __call__(self, request: urllib.request.Request) -> io.BytesIO:
        header = request.get_header("Range")
        self.ranges.append(header)
        start = int(header.split("=")[1].rstrip("-")) if header else 0
        response = io.BytesIO(PAYLOAD[start:])
        response.status = 206 if header else 200  # type: ignore[attr-defined]
        return response


def test_download_resumes_partial_file_and_moves_into_place(tmp_path: Path) -> None:
    dest = tmp_path / "seqrec" / "Beauty.txt"
    dest.parent.mkdir()
    dest.with_name("Beauty.txt.part").write_bytes(PAYLOAD[:4000])
    server = FakeServer()
    download(_item(), dest, opener=server)
    assert dest.read_bytes() == PAYLOAD
    assert server.ranges == ["bytes=4000-"]
    assert not dest.with_name("Beauty.txt.part").exists()


def test_download_with_wrong_checksum_is_not_moved_into_place(tmp_path: Path) -> None:
    bad = DataFile("x.txt", "https://example.org/x", "0" * 64, len(PAYLOAD))
    with pytest.raises(DataError, match="fails its checksum"):
        download(bad, tmp_path / "x.txt", opener=FakeServer())
    assert not (tmp_path / "x.txt").exists()


def test_offline_error_names_url_and_data_root(tmp_path: Path) -> None:
    def offline(request: urllib.request.Request) -> io.BytesIO:
        raise urllib.error.URLError("no network")

    with pytest.raises(DataError) as exc:
        download(_item(), tmp_path / "Beauty.txt", opener=offline)
    message = str(exc.value)
    assert "https://example.org/d/Beauty.txt" in message and "--data-root" in message


def _tiny_dataset(tmp_path: Path, name: str = "seqrec-beauty") -> DatasetSpec:
    (tmp_path / "seqrec").mkdir(exist_ok=True)
    (tmp_path / "seqrec" / "Beauty.txt").write_bytes(PAYLOAD)
    return spec_for_local_files(name, tmp_path, ["seqrec/Beauty.txt"])


def test_local_files_are_verified(tmp_path: Path) -> None:
    with temporary_dataset(_tiny_dataset(tmp_path)):
        paths = ensure_files("seqrec-beauty", tmp_path)
        assert paths["seqrec/Beauty.txt"].read_bytes() == PAYLOAD
        (tmp_path / "seqrec" / "Beauty.txt").write_bytes(PAYLOAD[:-5])
        with pytest.raises(DataError, match="truncated"):
            ensure_files("seqrec-beauty", tmp_path)
        (tmp_path / "seqrec" / "Beauty.txt").write_bytes(PAYLOAD[:-5] + b"XXXXX")
        with pytest.raises(DataError, match="checksum"):
            ensure_files("seqrec-beauty", tmp_path)


def test_temporary_dataset_restores_the_registry(tmp_path: Path) -> None:
    original = get_dataset("wiki1m-prefix")
    with temporary_dataset(_tiny_dataset(tmp_path, "wiki1m-prefix")):
        assert get_dataset("wiki1m-prefix") != original
    assert get_dataset("wiki1m-prefix") == original


def test_unknown_dataset_lists_the_registered_ones() -> None:
    with pytest.raises(DataError, match=r"registered datasets: .*wiki1m-prefix"):
        get_dataset("nosuch")


def test_missing_file_without_download(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"wiki1m_for_simcse\.prefix\.txt is missing"):
        ensure_files("wiki1m-prefix", tmp_path, allow_download=False)


def test_data_root_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "cli").mkdir()
    (tmp_path / "env").mkdir()
    monkeypatch.setenv(DATA_ROOT_ENV, str(tmp_path / "env"))
    assert resolve_data_root(str(tmp_path / "cli")) == tmp_path / "cli"
    assert resolve_data_root(None) == tmp_path / "env"
    monkeypatch.delenv(DATA_ROOT_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert resolve_data_root(None) == tmp_path / "cache" / "clrepro" / "datasets"


def test_a_data_root_that_does_not_exist_is_an_error_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    typo = tmp_path / "datsets"
    with pytest.raises(DataError, match=f"--data-root {typo} does not exist"):
        resolve_data_root(str(typo))
    monkeypatch.setenv(DATA_ROOT_ENV, str(typo))
    with pytest.raises(DataError, match=f"\\${DATA_ROOT_ENV} {typo} does not exist"):
        resolve_data_root(None)
    assert not typo.exists()


def test_shared_folder_matches_the_declared_datasets() -> None:
    """The real data on hand verifies against the declared datasets, as a data root, unchanged."""
    root = shared_datasets()
    if root is None:
        pytest.skip("../shared/datasets is not on this machine")
    for paper in ("mclrec", "meow", "dcl"):
        register_folder_datasets(PAPERS / paper)
    for name in ("seqrec-beauty", "hetero-acm", "wiki1m-prefix", "cifar10-subset"):
        paths = ensure_files(name, root, allow_download=False)
        assert all(p.is_file() for p in paths.values())


def _archive_spec(tmp_path: Path) -> tuple[DatasetSpec, bytes]:
    """A dataset whose two files live in a tar.gz with md5-only checksums, like CIFAR-10."""
    import tarfile

    members = {"batches/a.bin": b"alpha" * 100, "batches/b.bin": b"beta" * 100}
    source = tmp_path / "build.tar.gz"
    with tarfile.open(source, "w:gz") as tar:
        for name, payload in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    blob = source.read_bytes()
    archive = DataFile(
        "img/ds/ds.tar.gz", "https://example.org/ds.tar.gz", "", len(blob),
        md5=hashlib.md5(blob).hexdigest(),
    )  # fmt: skip
    files = tuple(
        DataFile(f"img/ds/{name}", "", "", None, md5=hashlib.md5(payload).hexdigest(),
                 archive=archive.path)
        for name, payload in members.items()
    )  # fmt: skip
    spec = DatasetSpec(name="archived", files=(archive, *files), licence="x", citation="y")
    return spec, blob


def test_archive_members_are_downloaded_extracted_and_verified(tmp_path: Path) -> None:
    spec, blob = _archive_spec(tmp_path)
    calls: list[str] = []

    def opener(request: urllib.request.Request) -> io.BytesIO:
        calls.append(request.full_url)
        return io.BytesIO(blob)

    root = tmp_path / "root"
    with temporary_dataset(spec):
        paths = ensure_files("archived", root, ["img/ds/batches/a.bin"], opener=opener)
        assert paths["img/ds/batches/a.bin"].read_bytes() == b"alpha" * 100
        ensure_files("archived", root, ["img/ds/batches/b.bin"], opener=opener)
        assert calls == ["https://example.org/ds.tar.gz"]  # the verified archive is reused
        assert not list(root.rglob("*.part"))
        label = checksums(paths, "archived")["img/ds/batches/a.bin"]
        assert label == "md5:" + hashlib.md5(b"alpha" * 100).hexdigest()


def test_corrupt_member_or_archive_is_rejected(tmp_path: Path) -> None:
    spec, blob = _archive_spec(tmp_path)
    root = tmp_path / "root"
    (root / "img/ds/batches").mkdir(parents=True)
    (root / "img/ds/batches/a.bin").write_bytes(b"tampered")
    with temporary_dataset(spec), pytest.raises(DataError, match="md5"):
        ensure_files("archived", root, ["img/ds/batches/a.bin"], allow_download=False)
    (root / "img/ds/batches/a.bin").unlink()
    (root / "img/ds/ds.tar.gz").write_bytes(blob[:-1] + b"x")
    with temporary_dataset(spec), pytest.raises(DataError, match="fails its checksum"):
        ensure_files("archived", root, ["img/ds/batches/a.bin"], allow_download=False)


def test_archive_without_the_member_says_so(tmp_path: Path) -> None:
    spec, blob = _archive_spec(tmp_path)
    ghost = DataFile("img/ds/batches/c.bin", "", "", None, md5="0" * 32, archive="img/ds/ds.tar.gz")
    spec = DatasetSpec(name="archived", files=(*spec.files, ghost), licence="x", citation="y")
    root = tmp_path / "root"
    (root / "img/ds").mkdir(parents=True)
    (root / "img/ds/ds.tar.gz").write_bytes(blob)
    with temporary_dataset(spec), pytest.raises(DataError, match="has no member"):
        ensure_files("archived", root, ["img/ds/batches/c.bin"], allow_download=False)


class PublishingServer:
    """An official host that publishes the sha256 in a header of the HEAD response only."""

    def __init__(self, digest: str) -> None:
        self.digest, self.methods = digest, []  # type: ignore[var-annotated]

    def __call__(self, request: urllib.request.Request) -> io.BytesIO:
        self.methods.append(request.get_method())
        response = io.BytesIO(b"" if request.get_method() == "HEAD" else PAYLOAD)
        response.headers = {"X-Linked-Etag": f'"{self.digest}"'}  # type: ignore[attr-defined]
        return response


def _published_spec() -> DatasetSpec:
    item = DataFile("wiki/corpus.txt", "https://example.org/corpus.txt", "", None,
                    sha256_header="X-Linked-Etag")  # fmt: skip
    return DatasetSpec(name="published", files=(item,), licence="x", citation="y")


def test_download_verified_against_the_published_sha256(tmp_path: Path) -> None:
    digest = hashlib.sha256(PAYLOAD).hexdigest()
    server = PublishingServer(digest)
    with temporary_dataset(_published_spec()):
        paths = ensure_files("published", tmp_path, opener=server)
        assert server.methods == ["HEAD", "GET"]
        local = paths["wiki/corpus.txt"]
        assert local.read_bytes() == PAYLOAD
        assert (tmp_path / "wiki/corpus.txt.sha256").read_text().strip() == digest
        assert checksums(paths, "published") == {"wiki/corpus.txt": digest}
        ensure_files("published", tmp_path, allow_download=False)  # verified from the kept sum
        local.write_bytes(PAYLOAD[:-1] + b"!")
        with pytest.raises(DataError, match="fails its checksum"):
            ensure_files("published", tmp_path, allow_download=False)


def test_published_sha256_mismatch_or_absence_is_refused(tmp_path: Path) -> None:
    with temporary_dataset(_published_spec()):
        with pytest.raises(DataError, match="fails its checksum"):
            ensure_files("published", tmp_path, opener=PublishingServer("0" * 64))
        assert not (tmp_path / "wiki/corpus.txt").exists()
        with pytest.raises(DataError, match="did not publish a sha256"):
            ensure_files("published", tmp_path, opener=PublishingServer("not-a-digest"))


def test_copied_file_without_a_kept_sha256_says_what_to_do(tmp_path: Path) -> None:
    (tmp_path / "wiki").mkdir()
    (tmp_path / "wiki/corpus.txt").write_bytes(PAYLOAD)
    with (
        temporary_dataset(_published_spec()),
        pytest.raises(DataError, match=r"corpus\.txt\.sha256"),
    ):
        ensure_files("published", tmp_path, allow_download=False)

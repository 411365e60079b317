"""CIFAR on disk: every way the data can be found, verified, extracted, downloaded, or be missing or damaged."""

from __future__ import annotations

import pickle
import shutil
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch
from _data_helpers import make_tiny_archive, make_tiny_cifar, publish_checksums, py2_pickle

from degradation.data import cifar, load_cifar
from degradation.errors import UsageError


def _assert_same(loaded: dict[str, torch.Tensor], written: dict[str, np.ndarray]) -> None:
    for key in ("train_x", "test_x"):
        assert loaded[key].dtype == torch.uint8 and loaded[key].shape[1:] == (3, 32, 32)
        np.testing.assert_array_equal(loaded[key].numpy(), written[key])
    for key in ("train_y", "test_y"):
        assert loaded[key].dtype == torch.int64
        np.testing.assert_array_equal(loaded[key].numpy(), written[key])


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Any download attempt fails as it does offline; the list records the attempts."""
    calls: list[str] = []

    def offline(url: str, folder: Path, filename: str, md5: str) -> None:
        calls.append(url)
        raise urllib.error.URLError("[Errno -2] Name or service not known")

    monkeypatch.setattr(cifar, "_download", offline)
    return calls


def test_python2_pickles_load_with_bytes_keys_and_with_str_keys(tmp_path: Path) -> None:
    data = np.arange(2 * 3072).astype(np.uint8).reshape(2, 3072)
    raw = py2_pickle(data, [7, 2])
    assert set(pickle.loads(raw, encoding="bytes")) == {b"batch_label", b"labels", b"data", b"filenames"}
    assert set(pickle.loads(raw, encoding="latin1")) == {"batch_label", "labels", "data", "filenames"}
    as_str = {"data": data, "labels": [7, 2]}  # a re-pickled copy with str keys reads the same
    for i, content in enumerate((raw, pickle.dumps(as_str))):
        (tmp_path / f"b{i}").write_bytes(content)
        images, labels = cifar.read_batch(tmp_path / f"b{i}", None, "labels")
        assert images.shape == (2, 3, 32, 32) and images.dtype == np.uint8
        assert images[1, 0, 0, 0] == data[1, 0] and images[0, 2, 31, 31] == data[0, 3071]  # R, G, B planes
        assert labels.tolist() == [7, 2] and labels.dtype == np.int64


def test_official_folder_is_used_as_it_is(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_network: list) -> None:
    written = make_tiny_cifar(tmp_path, per_file=3)
    publish_checksums(monkeypatch, "cifar10", tmp_path / "cifar-10-batches-py")
    loaded = load_cifar("cifar10", tmp_path, download=True)
    assert loaded["train_x"].shape[0] == 15 and loaded["test_x"].shape[0] == 3  # five train batches, one test
    _assert_same(loaded, written)
    assert no_network == []


def test_cifar100_fine_labels(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    written = make_tiny_cifar(tmp_path, "cifar100", per_file=5, num_classes=100)
    publish_checksums(monkeypatch, "cifar100", tmp_path / "cifar-100-python")
    loaded = load_cifar("cifar100", tmp_path, download=False)
    _assert_same(loaded, written)


def test_archive_is_verified_then_extracted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_network: list) -> None:
    archive, written = make_tiny_archive(tmp_path, per_file=2)
    publish_checksums(monkeypatch, "cifar10", tmp_path / "cifar-10-batches-py", archive)
    assert not (tmp_path / "cifar-10-batches-py").exists()
    _assert_same(load_cifar("cifar10", tmp_path, download=False), written)
    assert (tmp_path / "cifar-10-batches-py" / "data_batch_5").is_file()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no scratch folder left
    archive.unlink()  # the folder alone is now enough
    _assert_same(load_cifar("cifar10", tmp_path, download=False), written)
    assert no_network == []


def test_wrong_checksum_archive_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_network: list) -> None:
    archive, _ = make_tiny_archive(tmp_path, per_file=2)
    publish_checksums(monkeypatch, "cifar10", tmp_path / "cifar-10-batches-py", archive)
    archive.write_bytes(archive.read_bytes()[:-10])  # truncated download
    with pytest.raises(UsageError) as err:
        load_cifar("cifar10", tmp_path, download=True)
    message = str(err.value)
    assert str(archive) in message and "md5" in message and "\n" not in message
    assert not (tmp_path / "cifar-10-batches-py").exists() and no_network == []


def test_truncated_batch_file_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_tiny_cifar(tmp_path, per_file=2)
    folder = tmp_path / "cifar-10-batches-py"
    publish_checksums(monkeypatch, "cifar10", folder)
    damaged = folder / "data_batch_3"
    damaged.write_bytes(damaged.read_bytes()[:500])
    with pytest.raises(UsageError, match="data_batch_3 is truncated or corrupt") as err:
        load_cifar("cifar10", tmp_path, download=False)
    assert str(damaged) in str(err.value) and "\n" not in str(err.value)


def test_a_readable_batch_with_changed_bytes_fails_its_md5(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the checksum can tell: the file is a valid pickle of the right shapes, with other pixels."""
    make_tiny_cifar(tmp_path, per_file=2)
    folder = tmp_path / "cifar-10-batches-py"
    publish_checksums(monkeypatch, "cifar10", folder)
    damaged = folder / "data_batch_3"
    images, labels = cifar.read_batch(damaged, None, "labels")
    changed = images.reshape(2, 3072).copy()
    changed[0, 0] ^= 0xFF  # one pixel: a bit rot the unpickler cannot notice
    damaged.write_bytes(py2_pickle(changed, labels.tolist()))
    assert cifar.read_batch(damaged, None, "labels")[0].shape == (2, 3, 32, 32)  # readable without the md5
    with pytest.raises(UsageError, match="data_batch_3 is truncated or corrupt \\(its md5 is not the published"):
        load_cifar("cifar10", tmp_path, download=False)


@pytest.mark.parametrize(("name", "dataset"), [("cifar10", "CIFAR10"), ("cifar100", "CIFAR100")])
def test_published_checksums_match_torchvisions(name: str, dataset: str) -> None:
    """The fixtures replace the published md5s, so pin them here against an independent source."""
    datasets = pytest.importorskip("torchvision.datasets")
    theirs, ours = getattr(datasets, dataset), cifar.SPECS[name]
    assert (ours.archive, ours.url, ours.archive_md5) == (theirs.filename, theirs.url, theirs.tgz_md5)
    assert ours.folder == theirs.base_folder
    assert [list(f) for f in ours.train_files] == [list(f) for f in theirs.train_list]
    assert [list(f) for f in ours.test_files] == [list(f) for f in theirs.test_list]


@pytest.mark.parametrize(
    "content",
    [b"\x80\x02not a pickle", pickle.dumps({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}),
     pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0]}), pickle.dumps({b"labels": [0]})],
)
def test_unreadable_batch_is_named_even_without_a_checksum(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "data_batch_1"
    path.write_bytes(content)
    with pytest.raises(UsageError, match="data_batch_1 is truncated or corrupt"):
        cifar.read_batch(path, None, "labels")


def test_nothing_on_disk_and_offline_says_what_to_put_where(tmp_path: Path, no_network: list) -> None:
    root = tmp_path / "data"
    with pytest.raises(UsageError) as err:
        load_cifar("cifar10", root, download=True)
    message = str(err.value)
    assert no_network == [cifar.SPECS["cifar10"].url]
    assert f"put cifar-10-python.tar.gz ({cifar.SPECS['cifar10'].url}" in message
    assert f"in {root}/" in message and "cifar-10-batches-py" in message
    assert "data=synthetic works offline" in message and "download" in message and "\n" not in message
    assert [p.name for p in root.iterdir()] == []  # no partial archive left behind


def test_download_false_never_touches_the_network(tmp_path: Path, no_network: list) -> None:
    with pytest.raises(UsageError, match="data.download=false.*put cifar-100-python.tar.gz.*data=synthetic"):
        load_cifar("cifar100", tmp_path, download=False)
    assert no_network == []


def test_incomplete_folder_names_the_missing_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_tiny_cifar(tmp_path, per_file=2)
    publish_checksums(monkeypatch, "cifar10", tmp_path / "cifar-10-batches-py")
    (tmp_path / "cifar-10-batches-py" / "test_batch").unlink()
    with pytest.raises(UsageError, match="cifar-10-batches-py/test_batch is missing"):
        load_cifar("cifar10", tmp_path, download=False)


def test_download_is_checked_then_extracted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = tmp_path / "server"
    archive, written = make_tiny_archive(source, per_file=2)
    publish_checksums(monkeypatch, "cifar10", source / "cifar-10-batches-py", archive)
    fetched: list[str] = []

    def fake_download(url: str, folder: Path, filename: str, md5: str) -> None:
        assert md5 == cifar.SPECS["cifar10"].archive_md5  # the checksum always travels with the download
        fetched.append(filename)
        shutil.copy(archive, Path(folder) / filename)

    monkeypatch.setattr(cifar, "_download", fake_download)
    root = tmp_path / "fresh" / "data"
    _assert_same(load_cifar("cifar10", root, download=True), written)
    assert fetched == ["cifar-10-python.tar.gz.part"]
    assert sorted(p.name for p in root.iterdir()) == ["cifar-10-batches-py", "cifar-10-python.tar.gz"]
    load_cifar("cifar10", root, download=True)
    assert len(fetched) == 1  # found the second time


def test_failed_download_leaves_nothing_half_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken_download(url: str, folder: Path, filename: str, md5: str) -> None:
        (Path(folder) / filename).write_bytes(b"half an archive")
        raise RuntimeError("File not found or corrupted.")

    monkeypatch.setattr(cifar, "_download", broken_download)
    with pytest.raises(UsageError, match=r"downloading it failed \(File not found or corrupted.\)"):
        load_cifar("cifar10", tmp_path, download=True)
    assert list(tmp_path.iterdir()) == []


def test_unknown_name_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="choose from cifar10, cifar100"):
        load_cifar("cifar11", tmp_path)

"""CIFAR-10 / CIFAR-100 from the official Python archives: find, verify, extract or download, and read.

Where the data come from, in order: the extracted official folder under `root`; else the official archive
under `root` (its published md5 checked, then extracted); else a download with torchvision's utilities (md5
checked). Every batch file is checked against its published md5 before it is read, so a truncated or corrupt
file is an error naming it, never a silently smaller data set.

The batch files are Python 2 pickles: their keys load as `bytes` under `encoding="bytes"` (what the CIFAR page
recommends) and as `str` under `encoding="latin1"`; both are accepted.
"""

from __future__ import annotations

import hashlib
import pickle
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from degradation.errors import UsageError, first_line

IMAGE_SHAPE = (3, 32, 32)


@dataclass(frozen=True)
class CifarSpec:
    """The published facts about one official archive: names, address, checksums, label key."""

    title: str
    folder: str
    archive: str
    url: str
    archive_md5: str
    train_files: tuple[tuple[str, str], ...]  # (file name, md5)
    test_files: tuple[tuple[str, str], ...]
    label_key: str


SPECS: dict[str, CifarSpec] = {
    "cifar10": CifarSpec(
        title="CIFAR-10",
        folder="cifar-10-batches-py",
        archive="cifar-10-python.tar.gz",
        url="https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
        archive_md5="c58f30108f718f92721af3b95e74349a",
        train_files=(
            ("data_batch_1", "c99cafc152244af753f735de768cd75f"),
            ("data_batch_2", "d4bba439e000b95fd0a9bffe97cbabec"),
            ("data_batch_3", "54ebc095f3ab1f0389bbae665268c751"),
            ("data_batch_4", "634d18415352ddfa80567beed471001a"),
            ("data_batch_5", "482c414d41f54cd18b22e5b47cb7c3cb"),
        ),
        test_files=(("test_batch", "40351d587109b95175f43aff81a1287e"),),
        label_key="labels",
    ),
    "cifar100": CifarSpec(
        title="CIFAR-100",
        folder="cifar-100-python",
        archive="cifar-100-python.tar.gz",
        url="https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
        archive_md5="eb9058c3a382ffc7106e4002c42a8d85",
        train_files=(("train", "16019d7e3df5f24257cddd939b257f8d"),),
        test_files=(("test", "f0ef6b0ae62326f3e7ffdfab6717acfc"),),
        label_key="fine_labels",
    ),
}


def _md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def _download(url: str, folder: Path, filename: str, md5: str) -> None:
    """torchvision's downloader (follows redirects, checks the md5); replaced by a fake in the tests."""
    from torchvision.datasets.utils import download_url

    download_url(url, str(folder), filename=filename, md5=md5)


def _extract(archive: Path, into: Path) -> None:
    from torchvision.datasets.utils import extract_archive

    extract_archive(str(archive), str(into))


def _where_to_put(spec: CifarSpec, root: Path) -> str:
    return (
        f"put {spec.archive} ({spec.url}, md5 {spec.archive_md5}) in {root}/ or its extracted folder at "
        f"{root / spec.folder}/ (data.root or DEGRADATION_DATA chooses the folder); data=synthetic works offline"
    )


def _missing(spec: CifarSpec, folder: Path) -> list[str]:
    return [name for name, _ in spec.train_files + spec.test_files if not (folder / name).is_file()]


def is_extracted(name: str, root: str | Path) -> bool:
    """Whether the official folder is under root with every batch file (not checksummed: see `verify`)."""
    spec = _spec(name)
    folder = Path(root).expanduser() / spec.folder
    return folder.is_dir() and not _missing(spec, folder)


def verify(name: str, root: str | Path) -> Path:
    """The extracted folder, every batch file checked against its published md5; UsageError naming what is wrong."""
    spec = _spec(name)
    root = Path(root).expanduser()
    folder = root / spec.folder
    if not folder.is_dir():
        raise UsageError(f"{spec.title} is not extracted under {root}/; {_where_to_put(spec, root)}")
    missing = _missing(spec, folder)
    if missing:
        raise UsageError(f"{folder}/{missing[0]} is missing; delete {folder} and fetch it again")
    for file_name, md5 in spec.train_files + spec.test_files:
        if _md5(folder / file_name) != md5:
            raise UsageError(f"{folder / file_name} is truncated or corrupt (its md5 is not the published one); "
                             f"delete {folder} and fetch it again")
    return folder


def _extract_verified(spec: CifarSpec, root: Path, archive: Path) -> None:
    """Check the archive's published md5, then extract it next to itself, atomically (temp folder + rename)."""
    actual = _md5(archive)
    if actual != spec.archive_md5:
        raise UsageError(
            f"{archive} has md5 {actual}, not the published {spec.archive_md5} (truncated or not the official "
            f"file); delete it and run again to download it, or {_where_to_put(spec, root)}"
        )
    with tempfile.TemporaryDirectory(prefix=".extract-", dir=root) as scratch:
        try:
            _extract(archive, Path(scratch))
        except Exception as exc:
            raise UsageError(f"cannot extract {archive}: {exc}; delete it and run again") from None
        extracted = Path(scratch) / spec.folder
        if not extracted.is_dir() or _missing(spec, extracted):
            raise UsageError(
                f"{archive} does not contain the official {spec.folder}/ folder; {_where_to_put(spec, root)}"
            )
        target = root / spec.folder
        if target.exists():  # an incomplete folder: moved aside in one rename, so no reader sees it half-deleted
            stale = Path(scratch) / "incomplete"
            target.rename(stale)
        extracted.rename(target)


def _download_verified(spec: CifarSpec, root: Path) -> None:
    """Download to a temporary name (md5 checked), rename into place: an interrupted download leaves no archive."""
    partial = f"{spec.archive}.part"
    try:
        root.mkdir(parents=True, exist_ok=True)
        _download(spec.url, root, partial, spec.archive_md5)
    except Exception as exc:
        (root / partial).unlink(missing_ok=True)
        raise UsageError(f"{spec.title} is not under {root}/ and downloading it failed ({first_line(exc)}); "
                         f"{_where_to_put(spec, root)}") from None
    (root / partial).replace(root / spec.archive)


def locate(name: str, root: str | Path, download: bool = True) -> Path:
    """The folder holding the official batch files: found, extracted from the archive, or downloaded first."""
    spec = _spec(name)
    root = Path(root).expanduser()
    folder = root / spec.folder
    if folder.is_dir() and not _missing(spec, folder):
        return folder
    archive = root / spec.archive
    if not archive.is_file():
        if not download:
            if folder.is_dir():
                missing = f"{folder}/{_missing(spec, folder)[0]} is missing"
            else:
                missing = f"{spec.title} is not under {root}/"
            raise UsageError(f"{missing} and data.download=false; {_where_to_put(spec, root)}")
        _download_verified(spec, root)
    _extract_verified(spec, root, archive)
    return folder


def _spec(name: str) -> CifarSpec:
    if name not in SPECS:
        raise UsageError(f"unknown CIFAR data set '{name}'; choose from {', '.join(SPECS)}")
    return SPECS[name]


def read_batch(path: Path, md5: str | None, label_key: str) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 [n,3,32,32], int64 [n]) from one official batch file; UsageError naming the file if it is damaged."""
    damaged = f"{path} is truncated or corrupt"
    fix = f"delete the folder {path.parent} and run again to extract or download it afresh"
    raw = path.read_bytes()
    if md5 is not None and hashlib.md5(raw, usedforsecurity=False).hexdigest() != md5:
        raise UsageError(f"{damaged} (its md5 is not the published one); {fix}")
    try:
        batch = pickle.loads(raw, encoding="bytes")
        batch = {key.decode("latin1") if isinstance(key, bytes) else key: value for key, value in batch.items()}
        data = np.asarray(batch["data"], dtype=np.uint8)
        labels = np.asarray(batch[label_key], dtype=np.int64)
    except Exception as exc:
        raise UsageError(f"{damaged} ({type(exc).__name__}: {str(exc)[:80]}); {fix}") from None
    pixels = int(np.prod(IMAGE_SHAPE))
    if data.ndim != 2 or data.shape[1] != pixels or labels.shape != (data.shape[0],):
        shapes = f"data {data.shape} with {labels.shape[0]} labels; expected [n, {pixels}] and n labels"
        raise UsageError(f"{damaged} ({shapes}); {fix}")
    return data.reshape(-1, *IMAGE_SHAPE), labels


def _read_split(folder: Path, files: tuple[tuple[str, str], ...], label_key: str) -> tuple[torch.Tensor, torch.Tensor]:
    parts = [read_batch(folder / name, md5, label_key) for name, md5 in files]
    images = np.concatenate([p[0] for p in parts]) if len(parts) > 1 else parts[0][0]
    labels = np.concatenate([p[1] for p in parts]) if len(parts) > 1 else parts[0][1]
    return torch.from_numpy(np.ascontiguousarray(images)), torch.from_numpy(labels)


def load_cifar(name: str, root: str | Path = "data", download: bool = True) -> dict[str, torch.Tensor]:
    """{"train_x": uint8 [50000,3,32,32], "train_y": int64, "test_x": uint8 [10000,...], "test_y"}.

    CIFAR-100 gives its 100 fine labels.
    """
    spec = _spec(name)
    folder = locate(name, root, download)
    train_x, train_y = _read_split(folder, spec.train_files, spec.label_key)
    test_x, test_y = _read_split(folder, spec.test_files, spec.label_key)
    return {"train_x": train_x, "train_y": train_y, "test_x": test_x, "test_y": test_y}

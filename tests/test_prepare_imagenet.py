"""`degradation prepare-imagenet` on tiny archives in the official formats (checksums replaced for the test only)."""

from __future__ import annotations

import io
import json
import sys
import tarfile
import types
from pathlib import Path

import pytest
from _image_helpers import SMALL, make_folder
from torchvision.datasets import imagenet
from torchvision.datasets.utils import calculate_md5

from degradation.cli import main
from degradation.data.folders import scan

WNIDS = ("n01440764", "n01443537", "n01484850")
PUBLISHED = dict(imagenet.ARCHIVE_META)


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def _fake_scipy(monkeypatch) -> None:
    """scipy is not installed here: a stand-in loadmat reads the JSON our devkit holds in place of meta.mat."""
    scipy, scipy_io = types.ModuleType("scipy"), types.ModuleType("scipy.io")
    scipy_io.loadmat = lambda path, squeeze_me=True: {"synsets": [tuple(s) for s in json.loads(Path(path).read_text())]}
    scipy.io = scipy_io
    monkeypatch.setitem(sys.modules, "scipy", scipy)
    monkeypatch.setitem(sys.modules, "scipy.io", scipy_io)


def make_archives(folder: Path, images: Path) -> dict[str, str]:
    """The three archives built from a generated folder; returns each one's MD5."""
    folder.mkdir()
    synsets = [(i + 1, w, f"class {i}, thing {i}", "gloss", 0) for i, w in enumerate(WNIDS)]
    synsets.append((len(WNIDS) + 1, "n00001740", "entity", "a parent", 3))  # not a leaf: dropped
    val = [(w, p) for w in WNIDS for p in sorted((images / "val" / w).iterdir())]
    truth = "".join(f"{WNIDS.index(w) + 1}\n" for w, _ in val)
    with tarfile.open(folder / "ILSVRC2012_devkit_t12.tar.gz", "w:gz") as tar:
        _add(tar, "ILSVRC2012_devkit_t12/data/meta.mat", json.dumps(synsets).encode())
        _add(tar, "ILSVRC2012_devkit_t12/data/ILSVRC2012_validation_ground_truth.txt", truth.encode())
    with tarfile.open(folder / "ILSVRC2012_img_val.tar", "w") as tar:
        for i, (_, path) in enumerate(val):
            _add(tar, f"ILSVRC2012_val_{i + 1:08d}.JPEG", path.read_bytes())
    with tarfile.open(folder / "ILSVRC2012_img_train.tar", "w") as tar:
        for w in WNIDS:
            inner = io.BytesIO()
            with tarfile.open(fileobj=inner, mode="w") as class_tar:
                for path in sorted((images / "train" / w).iterdir()):
                    _add(class_tar, path.name, path.read_bytes())
            _add(tar, f"{w}.tar", inner.getvalue())
    return {step: calculate_md5(str(folder / name)) for step, (name, _) in PUBLISHED.items()}


@pytest.fixture
def archives(tmp_path, monkeypatch):
    images = make_folder(tmp_path / "source", classes=WNIDS, per_class=4, val_per_class=2)
    md5 = make_archives(tmp_path / "archives", images)
    _fake_scipy(monkeypatch)
    return tmp_path / "archives", md5, monkeypatch


def _use(monkeypatch, md5: dict[str, str]) -> None:
    table = {step: (name, md5.get(step, published)) for step, (name, published) in PUBLISHED.items()}
    monkeypatch.setattr(imagenet, "ARCHIVE_META", table)


def test_prepare_builds_the_layout_and_is_resumable(archives, tmp_path, capsys) -> None:
    folder, md5, monkeypatch = archives
    _use(monkeypatch, md5)
    out = tmp_path / "imagenet"
    assert main(["prepare-imagenet", "--archives", str(folder), "--out", str(out)]) == 0
    splits = scan(out, "imagenet")
    assert splits.train.classes == WNIDS and (len(splits.train), len(splits.val)) == (12, 6)
    assert all(Path(p).parent.name == WNIDS[label] for p, label in zip(splits.val.paths, splits.val.labels,
                                                                         strict=True))
    source = tmp_path / "source" / "val"
    for path, label in zip(splits.val.paths, splits.val.labels, strict=True):  # each val image in its class folder
        assert any(Path(path).read_bytes() == p.read_bytes() for p in (source / WNIDS[label]).iterdir())
    assert not list(out.glob(".prepare-*"))
    (out / "train").rename(out / "old")  # as if killed before the train step finished
    assert main(["prepare-imagenet", "--archives", str(folder), "--out", str(out)]) == 0
    assert "extracting ILSVRC2012_img_train.tar" in capsys.readouterr().out
    assert sorted(p.name for p in (out / "train").iterdir()) == list(WNIDS)
    monkeypatch.delitem(sys.modules, "scipy")  # the stand-in must not reach Lightning's import checks
    monkeypatch.delitem(sys.modules, "scipy.io")
    assert main(["train", "model.family=imagenet", "model.depth=18", "model.width=0.125", "data=imagenet",
                 f"data.root={out}", "data.num_classes=3", *SMALL, "schedule=imagenet_smoke",
                 "schedule.max_iters=2", "trainer.accelerator=cpu", "trainer.progress=none",
                 f"results_dir={tmp_path / 'results'}"]) == 0


def test_wrong_devkit_checksum_is_one_line_and_creates_nothing(archives, tmp_path, capsys) -> None:
    folder, md5, monkeypatch = archives
    _use(monkeypatch, {k: v for k, v in md5.items() if k != "devkit"})  # the devkit keeps the published MD5
    out = tmp_path / "imagenet"
    assert main(["prepare-imagenet", "--archives", str(folder), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "ILSVRC2012_devkit_t12.tar.gz: its MD5 is not the published fa75699e" in err
    assert not out.exists()
    _use(monkeypatch, {k: v for k, v in md5.items() if k != "val"})
    assert main(["prepare-imagenet", "--archives", str(folder), "--out", str(out)]) == 2
    assert "ILSVRC2012_img_val.tar: its MD5 is not the published" in capsys.readouterr().err
    assert not (out / "val").exists() and not list(out.glob(".prepare-*"))


def test_missing_archive_is_named(tmp_path, capsys) -> None:
    (tmp_path / "archives").mkdir()
    assert main(["prepare-imagenet", "--archives", str(tmp_path / "archives"), "--out", str(tmp_path / "o")]) == 2
    assert "ILSVRC2012_devkit_t12.tar.gz is missing" in capsys.readouterr().err

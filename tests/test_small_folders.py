"""Small-image folders get the paper's CIFAR recipe (issue 27); training subsets are balanced, seeded and in the run
id; bad input (a subset too large, one class, an unreadable image, mixed sizes) is one line, exit 2, nothing made."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from degradation.cli import main
from degradation.conf import compose, run_id
from degradation.data.build import build_data
from degradation.data.stream import BatchStream

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real-cifar10-subset.npz"
NET = ["model.width=0.25", "trainer.accelerator=cpu", "trainer.progress=none", "trainer.threads=1"]


def write_folder(root: Path, per_class: dict[str, int], val_per_class: int = 2, size: tuple[int, int] = (32, 32),
                 seed: int = 0) -> dict[str, np.ndarray]:
    """train/<class>/*.png and val/<class>/*.png of random RGB images; returns the train images in file order."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    written: dict[str, list] = {}
    for split in ("train", "val"):
        for name, count in per_class.items():
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count if split == "train" else val_per_class):
                pixels = rng.integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
                Image.fromarray(pixels).save(folder / f"{i:03d}.png")
                written.setdefault(f"{split}/{name}", []).append(pixels)
    return {key: np.stack(value) for key, value in written.items()}


def _cfg(root: Path, *extra: str):
    return compose(["model=resnet", "data=imagefolder", f"data.root={root}", "schedule=smoke",
                    "schedule.batch_size=8", *NET, *extra])


def test_a_32px_folder_is_trained_with_pad_and_crop_and_never_resized(tmp_path, monkeypatch) -> None:
    """auto picks CIFAR's recipe for 32x32 images: the exact decoded bytes are held in memory and fed to CIFAR's
    stream (pad 4, random 32x32 crop, flip, per-pixel mean); the val images are the test set, evaluated plain; no
    10-crop, and no resize anywhere, through a whole training run."""
    import torchvision.transforms.v2.functional as TF

    import degradation.data.imageaug as imageaug
    import degradation.data.smallfolder as smallfolder
    from degradation.train.run import train

    written = write_folder(tmp_path / "img", {"cat": 6, "dog": 6, "emu": 6})

    def no_resize(*args, **kwargs):
        raise AssertionError("a small-image folder under the CIFAR recipe must never be resized")

    monkeypatch.setattr(imageaug, "resize_shorter", no_resize)
    monkeypatch.setattr(smallfolder, "resized_centre", no_resize)
    monkeypatch.setattr(TF, "resize", no_resize)
    cfg = _cfg(tmp_path / "img", f"results_dir={tmp_path / 'r'}")
    assert (cfg.data.recipe, cfg.data.recipe_why) == ("cifar", "auto: images 32x32 px, at most 64")
    data = build_data(cfg.data, batch_size=8, seed=0)
    assert isinstance(data.train, BatchStream) and data.ten_crop is None and set(data.eval_sets) == {"test"}
    assert data.info["recipe"] == "cifar" and data.info["test_source"] == "val/"
    assert (data.train_size, len(data.eval_sets["test"])) == (18, 6)
    expected = torch.from_numpy(np.concatenate([written[f"train/{c}"] for c in ("cat", "dog", "emu")]))
    x, _ = next(iter(data.train))
    assert x.shape == (8, 3, 32, 32)
    mean = expected.permute(0, 3, 1, 2).double().mean(0) / 255  # the per-pixel training mean, as CIFAR's
    assert data.normalizer.mode == "mean_image" and torch.allclose(data.normalizer.mean.double(), mean, atol=1e-6)
    info = train(cfg)
    assert info["status"] == "done" and info["final_test_error"] is not None and info.get("tencrop_top1_error") is None
    assert info["config"]["data"]["recipe"] == "cifar"


def test_auto_keeps_imagenets_recipe_for_large_images_and_the_recipe_is_in_the_run_id(tmp_path) -> None:
    write_folder(tmp_path / "big", {"a": 2, "b": 2}, size=(96, 80))
    write_folder(tmp_path / "small", {"a": 2, "b": 2})
    big = _cfg(tmp_path / "big")
    assert (big.data.recipe, big.data.recipe_why) == ("imagenet", "auto: images up to 96x80 px, over 64")
    chosen = _cfg(tmp_path / "small", "data.recipe=cifar")
    assert chosen.data.recipe_why == "data.recipe=cifar"
    assert run_id(_cfg(tmp_path / "small")) == run_id(chosen)  # auto's choice is the same result as asking for it
    assert run_id(_cfg(tmp_path / "small", "data.recipe=imagenet", "data.crop=24", "data.scale_min=24",
                       "data.scale_max=28", "data.eval_resize=24")) != run_id(chosen)


def test_a_folder_subset_trains_on_n_balanced_images_and_is_in_the_run_id(tmp_path) -> None:
    write_folder(tmp_path / "img", {"a": 9, "b": 9, "c": 9})
    whole = _cfg(tmp_path / "img")
    part = _cfg(tmp_path / "img", "data.train_subset=12")
    assert run_id(part) != run_id(whole) and run_id(part) != run_id(_cfg(tmp_path / "img", "data.train_subset=15"))
    data = build_data(part.data, batch_size=4, seed=0)
    assert data.train_size == 12 and data.info["train_subset"] == 12
    assert torch.bincount(data.train._labels.cpu()).tolist() == [4, 4, 4]
    assert build_data(part.data, batch_size=4, seed=5).train_size == 12


def test_a_cifar10_subset_is_taken_after_the_holdout_and_named_in_the_run_id(tmp_path, monkeypatch) -> None:
    from _data_helpers import make_tiny_cifar, publish_checksums

    written = make_tiny_cifar(tmp_path, per_file=20)
    publish_checksums(monkeypatch, "cifar10", tmp_path / "cifar-10-batches-py")
    base = ["data=cifar10", f"data.root={tmp_path}", "data.download=false"]
    cfg = compose([*base, "data.train_subset=30", "data.split=holdout", "data.val_size=20"])
    data = build_data(cfg.data, batch_size=5, seed=0)
    assert (data.train_size, len(data.eval_sets["val"])) == (30, 20)
    assert run_id(cfg) != run_id(compose([*base, "data.split=holdout", "data.val_size=20"]))
    assert run_id(compose(base)) == run_id(compose([*base, "data.train_subset=null"]))  # unset: the old run ids
    assert len(written["train_y"]) == 100


def _sweep_exit(tmp_path: Path, root: Path, *extra: str) -> int:
    return main(["sweep", "--depths", "20", "--archs", "resnet", "--data", "imagefolder", "--preset", "smoke",
                 "--results", str(tmp_path / "results"), "--", f"data.root={root}", *NET, *extra])


@pytest.mark.parametrize("damage, message", [
    ("subset", "data.train_subset=99 is larger than the training split of"),
    ("one class", "has 1 class folder; a classifier needs at least 2"),
    ("unreadable", "is not a JPEG, PNG or WebP image"),
    ("mixed sizes", "is 40x32 px but"),
])
def test_bad_small_folders_are_one_line_exit_2_and_nothing_is_created(tmp_path, capsys, damage, message) -> None:
    root = tmp_path / "img"
    write_folder(root, {"a": 4} if damage == "one class" else {"a": 4, "b": 4})
    extra = ["data.train_subset=99"] if damage == "subset" else []
    if damage == "unreadable":
        (root / "train" / "b" / "003.png").write_bytes(b"not an image at all")
    if damage == "mixed sizes":
        write_folder(tmp_path / "odd", {"b": 1}, val_per_class=0, size=(40, 32), seed=1)
        (tmp_path / "odd" / "train" / "b" / "000.png").rename(root / "train" / "b" / "zzz.png")
    assert _sweep_exit(tmp_path, root, *extra) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and len(err.splitlines()) == 1, err
    assert "Traceback" not in err and not (tmp_path / "results").exists()


def test_a_cifar10_subset_larger_than_the_set_is_refused_before_anything_is_made(tmp_path, capsys) -> None:
    code = main(["sweep", "--depths", "20", "--archs", "resnet", "--data", "cifar10", "--preset", "smoke",
                 "--results", str(tmp_path / "results"), "--dry-run", "--", "data.train_subset=60000",
                 f"data.root={tmp_path / 'none'}"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "data.train_subset=60000 is larger than CIFAR-10's training set (50,000 images)" in err
    assert len(err.splitlines()) == 1 and not (tmp_path / "results").exists()


def test_mixed_sizes_train_when_a_resize_is_asked_for(tmp_path) -> None:
    root = tmp_path / "img"
    write_folder(root, {"a": 3, "b": 3}, size=(40, 36))
    write_folder(tmp_path / "odd", {"b": 1}, val_per_class=0, size=(33, 30), seed=1)
    (tmp_path / "odd" / "train" / "b" / "000.png").rename(root / "train" / "b" / "zzz.png")
    cfg = _cfg(root, "data.recipe=cifar", "data.resize=32")
    data = build_data(cfg.data, batch_size=4, seed=0)
    assert data.train_size == 7 and next(iter(data.train))[0].shape == (4, 3, 32, 32)


@pytest.mark.skipif(not REAL.is_file(), reason=f"the real CIFAR-10 subset is not at {REAL}")
def test_real_photos_pass_through_the_folder_path_bit_exact(tmp_path) -> None:
    """Real CIFAR-10 photographs written as PNGs come back byte for byte, trained under CIFAR's recipe."""
    from PIL import Image

    real = np.load(REAL)
    names = ("airplane", "automobile", "bird")
    for split, (x, y) in {"train": (real["x_train"], real["y_train"]), "val": (real["x_val"], real["y_val"])}.items():
        for label, name in enumerate(names):
            (tmp_path / split / name).mkdir(parents=True)
            for i in np.flatnonzero(y == label)[:10]:
                Image.fromarray(x[i]).save(tmp_path / split / name / f"{i:05d}.png")
    from degradation.data.smallfolder import load_folder_arrays

    arrays, _ = load_folder_arrays(_cfg(tmp_path).data)
    expected = np.concatenate([real["x_train"][np.flatnonzero(real["y_train"] == k)[:10]] for k in range(3)])
    assert np.array_equal(arrays["train_x"].permute(0, 2, 3, 1).numpy(), expected)
    assert arrays["train_y"].tolist() == [0] * 10 + [1] * 10 + [2] * 10

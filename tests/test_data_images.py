"""Image folders: every odd file read as RGB, bad input named in one line, and a stream whose batches are a pure
function of (seed, position) whatever the number of workers or ranks."""

from __future__ import annotations

import pytest
import torch
from _image_helpers import SMALL, make_folder

from degradation.conf import compose, run_id
from degradation.data import build_data
from degradation.data.decode import ImageError, read_rgb
from degradation.data.folders import scan
from degradation.data.imageaug import AugmentSpec, draw_epoch, resize_shorter, ten_views, train_view
from degradation.errors import UsageError


def _cfg(root, *extra, data="imagenet"):
    return compose(["model.family=imagenet", "model.depth=18", f"data={data}", f"data.root={root}", *SMALL,
                    *(["data.num_classes=3"] if data == "imagenet" else []), "schedule=smoke", *extra])


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return make_folder(tmp_path_factory.mktemp("images"))


def test_every_file_kind_decodes_to_rgb(folder) -> None:
    paths = sorted((folder / "train" / "n01440764").iterdir())
    shapes = [read_rgb(str(p)).shape for p in paths]
    assert all(s[0] == 3 for s in shapes) and len(shapes) == 6  # RGB, grayscale, CMYK, PNG-as-JPEG
    from PIL import Image

    cmyk = paths[2]
    assert Image.open(cmyk).mode == "CMYK" and Image.open(paths[3]).format == "PNG"
    ours = read_rgb(str(cmyk)).permute(1, 2, 0)
    theirs = torch.tensor(list(Image.open(cmyk).convert("RGB").getdata()), dtype=torch.int16).view(ours.shape)
    assert (ours.to(torch.int16) - theirs).abs().max() <= 2


def test_classes_and_splits(folder) -> None:
    splits = scan(folder, "imagenet")
    assert splits.train.classes == ("n01440764", "n01443537", "n01484850")
    assert (len(splits.train), len(splits.val), splits.val_source) == (18, 6, "val/")
    flat = make_folder(folder.parent / "flat", val=False, per_class=10)
    held = scan(flat, "imagefolder", holdout_per_class=50, split_seed=0)
    assert len(held.val) == 3 and len(held.train) == 27  # 10% of each class, at least 1
    assert set(held.val.paths).isdisjoint(held.train.paths)
    assert scan(flat, "imagefolder", split_seed=0).val == held.val  # seeded
    assert scan(flat, "imagefolder", split_seed=1).val != held.val


def test_imagefolder_counts_classes_and_tells_folders_apart(folder, tmp_path) -> None:
    cfg = _cfg(folder, data="imagefolder")
    assert cfg.data.num_classes == 3 and cfg.model.num_classes == 3
    other = make_folder(tmp_path / "other", classes=("cat", "dog", "fox"))
    assert run_id(_cfg(other, data="imagefolder")) != run_id(cfg)


def _bad(tmp_path, name):
    return make_folder(tmp_path / name, per_class=2, val_per_class=1)


def test_bad_folders_are_named(tmp_path) -> None:
    with pytest.raises(UsageError, match="is not a folder"):
        _cfg(tmp_path / "missing")
    root = _bad(tmp_path, "wnid")
    (root / "train" / "n0144O764").mkdir()
    with pytest.raises(UsageError, match="n0144O764 is not an ImageNet wnid"):
        _cfg(root)
    root = _bad(tmp_path, "empty")
    (root / "train" / "n99999999").mkdir()
    with pytest.raises(UsageError, match="n99999999 holds no images"):
        build_data(_cfg(root, "data.num_classes=4").data, batch_size=2, seed=0)
    root = _bad(tmp_path, "count")
    with pytest.raises(UsageError, match="has 3 class folders, but data.num_classes=1000"):
        _cfg(root, "data.num_classes=1000")


def test_corrupt_image_is_named_never_dropped(tmp_path) -> None:
    root = _bad(tmp_path, "corrupt")
    bad = root / "train" / "n01443537" / "broken.JPEG"
    bad.write_bytes(b"this is not an image")
    with pytest.raises(UsageError, match="broken.JPEG is not a JPEG, PNG or WebP image"):
        build_data(_cfg(root).data, batch_size=2, seed=0)
    bad.write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 40)  # a JPEG signature, then garbage: its header is broken
    with pytest.raises(UsageError, match="broken.JPEG: a JPEG segment of length 0"):
        build_data(_cfg(root).data, batch_size=2, seed=0)
    whole = (root / "train" / "n01443537" / "n01443537_train_0.JPEG").read_bytes()
    bad.write_bytes(whole[: len(whole) // 2])  # a sound header, a truncated body: found when decoded
    with pytest.raises(ImageError, match="cannot decode image .*broken.JPEG: Image is incomplete or truncated"):
        build_data(_cfg(root, "data.verify=decode").data, batch_size=2, seed=0)
    with pytest.raises(ImageError, match="broken.JPEG"):  # when the mean or the stream reaches it (policy: stop)
        data = build_data(_cfg(root, "data.mean_samples=1", "data.split_seed=5", "data.bad_images=stop").data,
                          batch_size=7, seed=0)
        for _ in range(3):
            next(data.train)


def test_stream_is_a_function_of_seed_and_position_for_any_workers_and_ranks(folder) -> None:
    cfg = _cfg(folder)
    one = build_data(cfg.data, batch_size=4, seed=3)
    batches = [next(one.train) for _ in range(7)]  # 28 samples: across an epoch boundary (18 images)
    cfg.data.workers = 2
    two = build_data(cfg.data, batch_size=4, seed=3)
    again = [next(two.train) for _ in range(7)]
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(batches, again, strict=True))
    ranks = [build_data(cfg.data, batch_size=4, seed=3, world_size=2, rank=r) for r in (0, 1)]
    for x, y in batches:
        parts = [next(r.train) for r in ranks]
        assert torch.equal(torch.cat([p[0] for p in parts]), x) and torch.equal(torch.cat([p[1] for p in parts]), y)
    resumed = build_data(cfg.data, batch_size=4, seed=3)
    resumed.train.load_state_dict(one.train.state_dict() | {"samples": 12})
    assert torch.equal(next(resumed.train)[0], batches[3][0])
    other = build_data(cfg.data, batch_size=4, seed=4)
    assert not torch.equal(next(other.train)[0], batches[0][0])


def test_paper_augmentation_draws() -> None:
    spec = AugmentSpec()
    draws = draw_epoch(20000, spec, seed=0, epoch=0)
    assert int(draws.scale.min()) == 256 and int(draws.scale.max()) == 480
    assert 0.45 < draws.flip.float().mean() < 0.55
    assert draws.alpha.std().item() == pytest.approx(0.1, rel=0.05)
    image = torch.randint(0, 255, (3, 300, 400), dtype=torch.uint8)
    assert resize_shorter(image, 256).shape == (3, 256, 341)
    view = train_view(image, spec, 300, (0.999, 0.0), flip=False)
    assert view.shape == (3, 224, 224) and torch.equal(view, image[:, 76:300, :224])
    assert torch.equal(train_view(image, spec, 300, (0.0, 0.0), flip=True), image[:, :224, :224].flip(-1))
    ten = ten_views(image, spec)
    assert ten.shape == (10, 3, 224, 224) and torch.equal(ten[5:], ten[:5].flip(-1))


def test_channel_normalisation_and_eval_sets(folder) -> None:
    data = build_data(_cfg(folder, "data.normalize=channel").data, batch_size=4, seed=0)
    assert data.normalizer.mode == "channel" and torch.all(data.normalizer.inv_std > 1)
    xs = [x for x, _ in data.eval_sets["val"]]
    assert sum(len(x) for x in xs) == len(data.eval_sets["val"]) == 6
    ten = [(x, y) for x, y in data.ten_crop]
    assert sum(len(y) for _, y in ten) == 6 and all(len(x) == 10 * len(y) for x, y in ten)


def test_loader_bench_prints_both_loaders(folder, capsys) -> None:
    from degradation.cli import main

    assert main(["bench", "--data", "imagenet", "--iters", "1", "--rounds", "1", "--", f"data.root={folder}",
                 "data.num_classes=3", *SMALL, "schedule.batch_size=4"]) == 0
    out = capsys.readouterr().out
    assert "degradation FileStream" in out and "torchvision ImageFolder + PIL" in out and "1.00x" in out
    assert main(["bench", "--data", "cifar10"]) == 2


def test_decoding_on_the_device_draws_the_same_batches(folder) -> None:
    """data.decode=device on a CPU: the main process decodes; the same samples, crops and flips as the workers."""
    cfg = _cfg(folder)
    workers = build_data(cfg.data, batch_size=4, seed=1)
    cfg.data.decode = "device"
    device = build_data(cfg.data, batch_size=4, seed=1)
    for _ in range(6):
        (a, y), (b, z) = next(workers.train), next(device.train)
        assert torch.equal(y, z) and torch.equal(a, b)

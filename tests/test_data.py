"""build_data end to end, the train/val splits and the synthetic data set."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from _data_helpers import make_tiny_cifar, publish_checksums

from degradation.conf import compose
from degradation.data import build_data, fit_normalizer, make_synthetic, split_indices
from degradation.data.splits import balanced_subset
from degradation.errors import UsageError


def _synthetic_cfg(**changes: object) -> dict:
    cfg = {
        "name": "synthetic", "train_size": 120, "test_size": 30, "num_classes": 10, "seed": 0,
        "split": "full", "val_size": 20, "split_seed": 0, "normalize": "mean_image",
    }
    cfg.update(changes)
    return cfg


def test_holdout_split_is_disjoint_complete_and_fixed() -> None:
    train, val = split_indices(500, "holdout", 50, split_seed=0)
    assert len(train) == 450 and len(val) == 50 and train.dtype == val.dtype == torch.int64
    assert set(train.tolist()).isdisjoint(val.tolist())
    assert sorted(train.tolist() + val.tolist()) == list(range(500))
    again_train, again_val = split_indices(500, "holdout", 50, split_seed=0)
    assert torch.equal(val, again_val) and torch.equal(train, again_train)
    assert not torch.equal(val, split_indices(500, "holdout", 50, split_seed=1)[1])


def test_papers_45k_5k_holdout_and_full_split() -> None:
    train, val = split_indices(50_000, "holdout", 5000, split_seed=0)
    assert (len(train), len(val)) == (45_000, 5000)
    assert torch.unique(torch.cat([train, val])).numel() == 50_000
    train, val = split_indices(50_000, "full", 5000, split_seed=0)
    assert torch.equal(train, torch.arange(50_000)) and len(val) == 0


@pytest.mark.parametrize(("split", "val_size", "message"), [("holdout", 0, "between 1 and 99"),
                                                           ("holdout", 100, "between 1 and 99"),
                                                           ("halves", 10, "choose full or holdout")])
def test_bad_split_settings_are_usage_errors(split: str, val_size: int, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        split_indices(100, split, val_size, 0)


def test_the_smallest_and_largest_holdouts_are_allowed() -> None:
    assert [len(part) for part in split_indices(100, "holdout", 1, 0)] == [99, 1]
    assert [len(part) for part in split_indices(100, "holdout", 99, 0)] == [1, 99]


def test_a_subset_is_class_balanced_seeded_and_as_even_as_the_classes_allow() -> None:
    labels = torch.tensor([0] * 50 + [1] * 7 + [2] * 40)
    picked = balanced_subset(labels, 60, seed=3, what="the set")
    counts = torch.bincount(labels[picked], minlength=3).tolist()
    assert len(picked) == 60 and counts[1] == 7 and sorted([counts[0], counts[2]]) == [26, 27]  # 7 + 53 shared
    assert picked.dtype == torch.int64 and torch.equal(picked, picked.unique())  # sorted, no repeats
    assert torch.equal(picked, balanced_subset(labels, 60, seed=3, what="the set"))  # deterministic
    assert not torch.equal(picked, balanced_subset(labels, 60, seed=4, what="the set"))  # split_seed chooses
    even = balanced_subset(torch.arange(10).repeat(20), 30, seed=0, what="the set")
    assert torch.bincount(torch.arange(10).repeat(20)[even]).tolist() == [3] * 10


def test_small_classes_give_all_they_have_and_the_rest_share_evenly() -> None:
    labels = torch.tensor([0] * 3 + [1] * 5 + [2] * 100 + [3] * 100)
    counts = torch.bincount(labels[balanced_subset(labels, 48, seed=0, what="the set")]).tolist()
    assert counts == [3, 5, 20, 20]  # the two small classes are full; 40 left for two classes
    whole = balanced_subset(labels, len(labels), seed=0, what="the set")
    assert torch.equal(whole, torch.arange(len(labels)))  # the whole set is every image once
    for seed in range(4):  # a class exactly at its share is full, and the odd image goes to the other one
        picked = balanced_subset(torch.tensor([0] * 10 + [1] * 100), 21, seed=seed, what="the set")
        assert torch.bincount(torch.tensor([0] * 10 + [1] * 100)[picked]).tolist() == [10, 11]
    assert len(balanced_subset(labels, 4, seed=0, what="the set")) == 4  # one image per class is allowed


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_the_remainder_goes_one_each_to_classes_chosen_by_the_seed(seed: int) -> None:
    labels = torch.arange(10).repeat(20)
    counts = torch.bincount(labels[balanced_subset(labels, 34, seed=seed, what="the set")], minlength=10)
    assert sorted(counts.tolist()) == [3] * 6 + [4] * 4
    order = torch.randperm(10, generator=torch.Generator().manual_seed(seed)).tolist()
    assert sorted(torch.nonzero(counts == 4).flatten().tolist()) == sorted(order[:4])


@pytest.mark.parametrize(("size", "message"), [
    (58, "data.train_subset=58 is larger than the set (57 training images); choose at most 57, or null for all"),
    (2, "data.train_subset=2 is fewer than the 3 classes of the set; choose at least 3 (one image per class)"),
])
def test_a_subset_too_large_or_smaller_than_the_classes_is_refused(size: int, message: str) -> None:
    labels = torch.tensor([0] * 50 + [1] * 4 + [2] * 3)
    with pytest.raises(UsageError, match=re.escape(message)):
        balanced_subset(labels, size, seed=0, what="the set")


def test_synthetic_is_cifar_shaped_balanced_and_a_function_of_its_seed() -> None:
    data = make_synthetic(200, 50, 10, seed=3)
    assert data["train_x"].shape == (200, 3, 32, 32) and data["test_x"].shape == (50, 3, 32, 32)
    assert data["train_x"].dtype == torch.uint8 and data["train_y"].dtype == torch.int64
    assert torch.bincount(data["train_y"]).tolist() == [20] * 10
    assert int(data["test_y"].min()) >= 0 and int(data["test_y"].max()) < 10
    again = make_synthetic(200, 50, 10, seed=3)
    assert all(torch.equal(data[k], again[k]) for k in data)
    other = make_synthetic(200, 50, 10, seed=4)
    assert not torch.equal(data["train_x"], other["train_x"])
    assert not torch.equal(data["train_x"][:50], data["test_x"])  # train and test are different draws
    assert data["train_x"].float().std() > 20  # real images, not a constant
    few = make_synthetic(30, 10, 3, seed=0)
    assert set(few["train_y"].tolist()) == {0, 1, 2}


@pytest.mark.parametrize(("args", "message"), [((0, 10, 10, 0), "train_size=0"),
                                               ((10, 10, 11, 0), "between 2 and 10")])
def test_bad_synthetic_settings_are_usage_errors(args: tuple, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        make_synthetic(*args)


def test_build_data_full_split_on_synthetic() -> None:
    bundle = build_data(_synthetic_cfg(), batch_size=16, seed=0, device="cpu")
    assert bundle.name == "synthetic" and bundle.num_classes == 10 and bundle.train_size == 120
    assert set(bundle.eval_sets) == {"test"} and len(bundle.eval_sets["test"]) == 30
    x, y = next(bundle.train)
    assert x.shape == (16, 3, 32, 32) and y.dtype == torch.int64 and bundle.train.epoch_size_float == 120 / 16


def test_build_data_holdout_fits_statistics_on_the_training_part_only() -> None:
    cfg = _synthetic_cfg(split="holdout", normalize="channel")
    bundle = build_data(cfg, batch_size=8, seed=0, device="cpu", memory_format=torch.channels_last)
    assert bundle.train_size == 100 and len(bundle.eval_sets["val"]) == 20 and len(bundle.eval_sets["test"]) == 30
    data = make_synthetic(120, 30, 10, 0)
    train_idx, val_idx = split_indices(120, "holdout", 20, 0)
    expected = fit_normalizer(data["train_x"][train_idx], "channel")
    assert torch.equal(bundle.normalizer.mean, expected.mean)
    assert torch.equal(bundle.normalizer.inv_std, expected.inv_std)
    val_labels = torch.cat([y for _, y in bundle.eval_sets["val"]])
    assert torch.equal(val_labels, data["train_y"][val_idx])
    x, _ = next(iter(bundle.eval_sets["val"]))
    assert x.is_contiguous(memory_format=torch.channels_last)


def test_build_data_from_the_composed_config_and_with_ranks() -> None:
    cfg = compose(["data=synthetic", "data.train_size=64", "data.test_size=16"]).data
    whole = build_data(cfg, batch_size=16, seed=1)
    half = build_data(cfg, batch_size=16, seed=1, world_size=2, rank=1)
    x, y = next(whole.train)
    xh, yh = next(half.train)
    assert torch.equal(xh, x[8:]) and torch.equal(yh, y[8:])


def test_build_data_reads_cifar_from_its_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    written = make_tiny_cifar(tmp_path, per_file=4)
    publish_checksums(monkeypatch, "cifar10", tmp_path / "cifar-10-batches-py")
    cfg = {"name": "cifar10", "root": str(tmp_path), "download": False, "split": "holdout", "val_size": 5,
           "split_seed": 0, "normalize": "mean_image", "num_classes": 10}
    bundle = build_data(cfg, batch_size=4, seed=0)
    assert bundle.train_size == 15 and len(bundle.eval_sets["val"]) == 5 and len(bundle.eval_sets["test"]) == 4
    assert torch.equal(torch.cat([y for _, y in bundle.eval_sets["test"]]), torch.from_numpy(written["test_y"]))


def test_labels_beyond_num_classes_are_a_usage_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_tiny_cifar(tmp_path, per_file=4, num_classes=100)
    publish_checksums(monkeypatch, "cifar10", tmp_path / "cifar-10-batches-py")
    cfg = {"name": "cifar10", "root": str(tmp_path), "download": False, "split": "full", "val_size": 1,
           "split_seed": 0, "normalize": "mean_image", "num_classes": 10}
    with pytest.raises(UsageError, match="set data.num_classes"):
        build_data(cfg, batch_size=4, seed=0)

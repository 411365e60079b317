"""The presets as a run composes them: the paper's numbers read from conf/, never from a class's defaults.

A test that builds `AugmentSpec()` or passes `val_size=5000` by hand passes whatever conf/ says; these compose the
config a user's run gets and check each recipe number against the paper (typed here, not read from the code).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from degradation.conf import compose, validate
from degradation.data.imageaug import AugmentSpec, draw_epoch
from degradation.data.splits import split_indices


def _wnid_folder(root: Path, classes: int = 2) -> Path:
    """An ImageNet-shaped root (train/<wnid>/): enough to compose data=imagenet, which counts the class folders."""
    for i in range(classes):
        (root / "train" / f"n{i:08d}").mkdir(parents=True)
    return root


@pytest.mark.parametrize("data", ["cifar10", "cifar100"])
def test_the_holdout_is_the_papers_45k_5k(data: str) -> None:
    """Section 4.2: "45k/5k train/val split" (used to choose the schedule): data.split=holdout as composed."""
    d = compose([f"data={data}", "data.split=holdout"]).data
    train, val = split_indices(50000, d.split, d.val_size, d.split_seed)
    assert (len(train), len(val)) == (45000, 5000)


def test_imagenet_augmentation_is_the_papers(tmp_path: Path) -> None:
    """Section 3.4: shorter side drawn from [256, 480], a 224 crop, flips, the standard colour augmentation;
    evaluation at 256 (centre crop, and 10-crop for the tables)."""
    cfg = compose(["model.family=imagenet", "model.depth=18", "data=imagenet", f"data.root={_wnid_folder(tmp_path)}",
                   "data.num_classes=2", "schedule=imagenet"])
    validate(cfg)
    spec = AugmentSpec.from_cfg(cfg.data)
    assert (spec.crop, spec.scale_min, spec.scale_max, spec.eval_resize) == (224, 256, 480, 256)
    assert spec.flip is True and spec.lighting == pytest.approx(0.1)
    draws = draw_epoch(5000, spec, seed=0, epoch=0)
    assert (int(draws.scale.min()), int(draws.scale.max())) == (256, 480)
    assert cfg.data.normalize == "mean_image"  # "the per-pixel mean subtracted"


def test_imagefolder_shares_the_imagenet_augmentation(tmp_path: Path) -> None:
    root = _wnid_folder(tmp_path)
    cfg = compose(["model.family=imagenet", "model.depth=18", "data=imagefolder", f"data.root={root}",
                   "data.recipe=imagenet"])
    assert AugmentSpec.from_cfg(cfg.data) == AugmentSpec(224, 256, 480, 256, True, 0.1)
    assert cfg.data.num_classes == 2 and cfg.model.num_classes == 2


def test_imagenet_schedule_is_the_papers() -> None:
    """Section 3.4: SGD, mini-batch 256, lr 0.1 divided by 10 (fixed here at Figure 4's drops), up to 60e4
    iterations, weight decay 0.0001, momentum 0.9; no warm-up."""
    s = compose(["schedule=imagenet"]).schedule
    assert (s.batch_size, s.lr, s.momentum, s.weight_decay, s.nesterov) == (256, 0.1, 0.9, 1e-4, False)
    assert (s.max_iters, list(s.milestones), s.gamma) == (600000, [150000, 300000], 0.1)
    assert s.warmup.enabled is False


def test_cifar_nets_are_the_papers() -> None:
    """Section 4.2: 16/32/64 filters (width 1), option A shortcuts for the ResNets, 10 classes for CIFAR-10."""
    m = compose([]).model
    assert (m.arch, m.family, m.shortcut, m.width, m.num_classes) == ("resnet", "cifar", "A", 1.0, 10)
    assert compose(["model=plain"]).model.arch == "plain"

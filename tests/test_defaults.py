"""The defaults that make this a faithful reproduction, each pinned to the paper (He et al. 2015, Section 4.2).

Numbers are typed here from the paper, not read from the modules that hold them: a changed constant fails.
"""

from __future__ import annotations

import math

import pytest

from degradation.conf import compose
from degradation.figures.table6 import paper_reference
from degradation.train.schedule import Schedule


@pytest.mark.parametrize("data", ["cifar10", "cifar100", "synthetic"])
def test_every_data_set_subtracts_the_per_pixel_mean_by_default(data: str) -> None:
    """"the per-pixel mean subtracted": the mean image, not per-channel statistics."""
    cfg = compose([f"data={data}"])
    assert cfg.data.normalize == "mean_image"
    assert cfg.data.split == "full"  # train on all 50k, test on the 10k, as the paper's curves and table


def test_the_warm_up_is_on_by_default_exactly_from_depth_110() -> None:
    """"we use 0.01 to warm up the training until the training error is below 80% (about 400 iterations), and
    then go back to 0.1" - for the 110-layer net (and 1202, trained the same way)."""
    for preset in ("paper", "quick", "demo", "smoke"):
        s = compose([f"schedule={preset}"]).schedule
        assert s.warmup.enabled == "auto" and s.warmup.min_depth == 110, preset
        assert (s.warmup.lr, s.warmup.until_train_error) == (0.01, 0.8), preset
    paper = compose(["schedule=paper"]).schedule
    assert [Schedule(paper, depth=d).warmup.active for d in (20, 32, 44, 56, 110, 1202)] == [False] * 4 + [True] * 2
    assert Schedule(paper, depth=110).lr(0) == pytest.approx(0.01)
    assert Schedule(paper, depth=56).lr(0) == pytest.approx(0.1)


# Table 6, CIFAR-10 test error (%), ResNets with option-A shortcuts. ResNet-110: best of 5 runs 6.43, mean 6.61 ± 0.16.
TABLE6 = {20: "8.75", 32: "7.51", 44: "7.17", 56: "6.97", 110: "6.43 (best of 5; mean 6.61 ± 0.16)", 1202: "7.93"}
COMPARED_WITH = {20: 8.75, 32: 7.51, 44: 7.17, 56: 6.97, 110: 6.61, 1202: 7.93}  # 110: the mean, not the best


@pytest.mark.parametrize("depth", sorted(TABLE6))
def test_table6_shows_each_papers_number_and_compares_with_the_right_one(depth: int) -> None:
    reference, text = paper_reference("resnet", "A", depth)
    assert text == TABLE6[depth]
    assert reference == COMPARED_WITH[depth]


def test_the_paper_has_no_number_for_plain_nets_other_shortcuts_or_depths() -> None:
    for arch, shortcut, depth in (("plain", "none", 56), ("resnet", "B", 56), ("resnet", "A", 26)):
        reference, _ = paper_reference(arch, shortcut, depth)
        assert math.isnan(reference)

"""The ImageNet recipe's augmentation function by function: the resize keeps the aspect and antialiases, the crops
reach every offset evenly, the centre is the centre, the lighting noise is AlexNet's PCA, the epoch draws are
seeded per epoch, and the spec's checks draw the line where the paper's sizes allow."""

from __future__ import annotations

import re

import pytest
import torch

from degradation.data.imageaug import (
    EIGVAL,
    EIGVEC,
    AugmentSpec,
    draw_epoch,
    lighting_shift,
    resize_shorter,
    resized_centre,
    resized_size,
    train_view,
)
from degradation.errors import UsageError


def _coordinates(h: int, w: int) -> torch.Tensor:
    """uint8 [3,h,w]: channel 0 holds the row, channel 1 the column."""
    image = torch.zeros(3, h, w, dtype=torch.uint8)
    image[0] = torch.arange(h, dtype=torch.uint8).view(h, 1)
    image[1] = torch.arange(w, dtype=torch.uint8).view(1, w)
    return image


def test_the_shorter_side_is_resized_and_the_aspect_kept() -> None:
    assert resized_size(200, 400, 100) == (100, 200)  # landscape
    assert resized_size(400, 200, 100) == (200, 100)  # portrait
    assert resized_size(300, 300, 100) == (100, 100)
    assert resized_size(1000, 10, 20) == (2000, 20)
    assert resized_size(100, 101, 100) == (100, 101)  # already there: untouched
    assert resize_shorter(_coordinates(30, 60), 15).shape == (3, 15, 30)


def test_downscaling_is_antialiased() -> None:
    stripes = torch.zeros(3, 48, 48, dtype=torch.uint8)
    stripes[:, :, ::2] = 255  # one-pixel columns: sampled without a low-pass they alias to 0/255 stripes
    small = resize_shorter(stripes, 16).float()
    assert small.shape == (3, 16, 16) and small.std() < 30 and abs(small.mean() - 127.5) < 5


def test_the_centre_crop_is_centred() -> None:
    view = resized_centre(_coordinates(20, 31), 20, 10)  # margins 10 and 21: top 5, left 10
    assert view.shape == (3, 10, 10) and int(view[0, 0, 0]) == 5 and int(view[1, 0, 0]) == 10


def test_training_crops_reach_every_offset_evenly_and_stay_inside() -> None:
    image, spec = _coordinates(20, 30), AugmentSpec(crop=10, scale_min=20, scale_max=20, eval_resize=20)
    fracs = [i / 1100 for i in range(1100)]
    tops = [int(train_view(image, spec, 20, (f, 0.0), False)[0, 0, 0]) for f in fracs]
    lefts = [int(train_view(image, spec, 20, (0.0, f), False)[1, 0, 0]) for f in fracs]
    assert [tops.count(t) for t in range(11)] == [100] * 11  # rows 0..10, each as often
    counts = [lefts.count(x) for x in range(21)]  # columns 0..20: 1,100 fractions over 21 offsets
    assert sum(counts) == 1100 and max(counts) - min(counts) <= 1
    corner = train_view(image, spec, 20, (1.0, 1.0), False)  # the far edge, however the fraction rounds
    assert corner.shape == (3, 10, 10) and (int(corner[0, 0, 0]), int(corner[1, 0, 0])) == (10, 20)
    mirrored = train_view(image, spec, 20, (0.0, 0.0), True)
    assert torch.equal(mirrored, image[:, :10, :10].flip(-1))


def test_lighting_is_alexnets_pca_noise() -> None:
    shift = lighting_shift(torch.eye(3))  # one unit of each principal component
    expected = torch.tensor(EIGVEC).T * torch.tensor(EIGVAL).view(3, 1)  # row i: eigval_i * eigvec_i
    torch.testing.assert_close(shift, expected)
    torch.testing.assert_close(lighting_shift(torch.tensor([[0.0, 2.0, 0.0]])), 2 * expected[1:2])


def test_epoch_draws_are_seeded_per_epoch_and_keep_to_the_spec() -> None:
    spec = AugmentSpec(crop=8, scale_min=10, scale_max=14, eval_resize=10, flip=True, lighting=0.1)
    first, again, second = draw_epoch(500, spec, 3, 0), draw_epoch(500, spec, 3, 0), draw_epoch(500, spec, 3, 1)
    assert torch.equal(first.order, again.order) and torch.equal(first.frac, again.frac)
    assert not torch.equal(first.order, second.order) and not torch.equal(first.flip, second.flip)
    assert sorted(first.order.tolist()) == list(range(500))
    assert set(first.scale.tolist()) == set(range(10, 15))  # every scale of [scale_min, scale_max]
    assert 0.4 < first.flip.float().mean() < 0.6 and 0.05 < float(first.alpha.std()) < 0.15
    assert not draw_epoch(500, AugmentSpec(8, 10, 14, 10, flip=False), 3, 0).flip.any()


def test_epoch_draws_are_pinned_so_a_resumed_run_draws_what_it_would_have() -> None:
    """A checkpoint written by one version of the tool and resumed by the next continues the same augmentation."""
    draws = draw_epoch(6, AugmentSpec(8, 10, 14, 10), seed=0, epoch=0)
    assert draws.order.tolist() == [1, 0, 2, 4, 3, 5] and draws.scale.tolist() == [10, 14, 10, 14, 10, 14]
    assert draws.frac.dtype == torch.float64 and round(float(draws.frac[0, 0]), 6) == 0.724959
    assert draws.flip.tolist() == [True, True, True, False, True, True]


def test_the_spec_is_read_from_every_key_of_the_data_config() -> None:
    cfg = {"crop": 8, "scale_min": 9, "scale_max": 10, "eval_resize": 11, "flip": False, "lighting": 0.0}
    assert AugmentSpec.from_cfg(cfg) == AugmentSpec(8, 9, 10, 11, False, 0.0)


def test_the_spec_allows_every_size_the_rule_allows() -> None:
    for spec in (AugmentSpec(1, 1, 1, 1), AugmentSpec(8, 8, 8, 8), AugmentSpec(8, 9, 9, 8, lighting=0.0)):
        spec.check()  # crop = scale_min = scale_max = eval_resize is allowed; so is lighting 0


@pytest.mark.parametrize("sizes", [(0, 1, 1, 1), (9, 8, 10, 10), (8, 10, 9, 10), (8, 9, 10, 7)])
def test_sizes_out_of_order_are_refused_naming_the_rule(sizes: tuple[int, int, int, int]) -> None:
    crop, scale_min, scale_max, eval_resize = sizes
    message = (f"data.crop={crop}, scale_min={scale_min}, scale_max={scale_max}, eval_resize={eval_resize}: need 1 "
               "<= crop <= scale_min <= scale_max and crop <= eval_resize (the paper: 224, 256, 480, 256)")
    with pytest.raises(UsageError, match=re.escape(message)):
        AugmentSpec(*sizes).check()


def test_negative_lighting_is_refused() -> None:
    with pytest.raises(UsageError, match=re.escape("data.lighting=-0.1 must be >= 0 (the paper: 0.1; 0 switches it")):
        AugmentSpec(lighting=-0.1).check()

"""Tables 2-3's 10-crop error: the softmax of all ten views averaged, not the centre crop, not the logits."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from degradation.data.imageaug import AugmentSpec, ten_views
from degradation.train.tencrop import ten_crop_errors

CENTRE = 4  # ten_views: four corners, the centre, then the five mirrored


class ViewReader(nn.Module):
    """A fake net that reads which view it sees from pixel [0, 0, 0]: the centre crop answers class 1 with a huge
    logit, every other view class 0 with a modest one. The averaged softmax says 0, the centre crop (and the
    averaged logits) say 1."""

    def __init__(self, classes: int = 7) -> None:
        super().__init__()
        self.classes = classes
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        assert not self.training, "10-crop testing runs the net in eval mode"
        view = x[:, 0, 0, 0].round().long()
        logits = torch.zeros(len(x), self.classes)
        logits[:, 0] = 5.0
        logits[:, 2:] = -torch.arange(2, self.classes, dtype=torch.float32)  # ranks 2 > 3 > ... below 0 and 1
        logits[view == CENTRE] = 0.0
        logits[view == CENTRE, 1] = 100.0
        return logits


def _batch(labels: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """[b*10, 3, 2, 2] with each image's ten views numbered 0..9, as ten_views lays them out."""
    x = torch.arange(10, dtype=torch.float32).repeat(len(labels)).view(-1, 1, 1, 1).expand(-1, 3, 2, 2).contiguous()
    return x, torch.tensor(labels)


def test_ten_crop_averages_the_softmax_of_all_ten_views() -> None:
    net = ViewReader().train()
    errors = ten_crop_errors(net, [_batch([0, 0, 1]), _batch([0])])
    assert errors["tencrop_images"] == 4
    assert errors["tencrop_top1_error"] == pytest.approx(1 / 4)  # the averaged answer is 0: only the label 1 is wrong
    assert net.training, "the net's mode is restored"


def test_ten_crop_top5_ranks_the_averaged_scores() -> None:
    # averaged: 0 > 1 > 2 > 3 > 4 > 5 > 6; class 4 is fifth (right), class 5 and 6 are sixth and seventh (wrong)
    errors = ten_crop_errors(ViewReader(), [_batch([4, 5, 6, 0])])
    assert errors["tencrop_top5_error"] == pytest.approx(2 / 4)
    assert errors["tencrop_top1_error"] == pytest.approx(3 / 4)


def test_no_images_gives_no_number() -> None:
    assert ten_crop_errors(ViewReader(), []) == {"tencrop_top1_error": None, "tencrop_top5_error": None,
                                                 "tencrop_images": 0}


def test_ten_views_are_the_corners_the_centre_and_their_mirrors() -> None:
    image = torch.arange(3 * 6 * 8, dtype=torch.int32).view(3, 6, 8).to(torch.uint8)
    spec = AugmentSpec(crop=4, scale_min=6, scale_max=6, eval_resize=6)
    views = ten_views(image, spec)
    expected = [image[:, :4, :4], image[:, :4, 4:], image[:, 2:, :4], image[:, 2:, 4:], image[:, 1:5, 2:6]]
    for got, want in zip(views[:5], expected, strict=True):
        assert torch.equal(got, want)
    assert torch.equal(views[5:], views[:5].flip(-1))

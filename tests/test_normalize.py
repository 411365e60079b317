"""The normaliser's statistics (exact, in any chunking, for any image size) and the affine form the streams apply."""

from __future__ import annotations

import re

import pytest
import torch

from degradation.data.normalize import IntegerSums, Normalizer, fit_normalizer


def _images(n: int = 12, h: int = 5, w: int = 7, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 3, h, w), generator=gen, dtype=torch.uint8)


def test_mean_image_is_the_per_pixel_mean_and_nothing_else() -> None:
    images = _images()
    norm = fit_normalizer(images, "mean_image")
    assert norm.mode == "mean_image" and norm.mean.shape == (3, 5, 7) and norm.mean.dtype == torch.float32
    torch.testing.assert_close(norm.mean.double(), images.double().mean(0) / 255, atol=1e-7, rtol=0)
    assert torch.equal(norm.inv_std, torch.ones(3))


def test_channel_statistics_over_every_pixel_of_non_square_images() -> None:
    images = _images(h=4, w=9)  # H != W: the pixel count is N * H * W
    norm = fit_normalizer(images, "channel")
    pixels = images.double().permute(1, 0, 2, 3).reshape(3, -1) / 255
    assert norm.mode == "channel" and norm.mean.shape == (3, 4, 9)
    torch.testing.assert_close(norm.mean.double()[:, 0, 0], pixels.mean(1), atol=1e-7, rtol=0)
    torch.testing.assert_close(norm.inv_std.double(), 1 / pixels.std(1, unbiased=False), rtol=1e-5, atol=0)


def test_a_channel_of_tiny_variance_keeps_its_own_std() -> None:
    images = torch.zeros(8, 3, 4, 4, dtype=torch.uint8)
    images[:, :, :, 1::2] = 1  # half 0, half 1: std 0.5/255, far below one grey level
    norm = fit_normalizer(images, "channel")
    torch.testing.assert_close(norm.inv_std, torch.full((3,), 255 / 0.5), rtol=1e-5, atol=0)


def test_sums_in_chunks_equal_sums_in_one_go() -> None:
    images = _images(30)
    sums = IntegerSums()
    for chunk in images.split(7):
        sums.add(chunk)
    for mode in ("mean_image", "channel"):
        whole, chunked = fit_normalizer(images, mode), sums.normalizer(mode)
        assert torch.equal(whole.mean, chunked.mean) and torch.equal(whole.inv_std, chunked.inv_std)
    assert sums.count == 30
    with pytest.raises(ValueError, match="^no images were added$"):
        IntegerSums().normalizer("channel")


def test_the_affine_form_is_pixel_over_255_minus_mean_times_inv_std() -> None:
    images = _images()
    norm = Normalizer("channel", torch.rand(3, 5, 7), torch.tensor([2.0, 3.0, 0.5]))
    offset, scale = norm.affine()
    expected = (images.float() / 255 - norm.mean) * norm.inv_std.view(1, 3, 1, 1)
    torch.testing.assert_close(torch.addcmul(offset, images.float(), scale.view(1, 3, 1, 1)), expected)


@pytest.mark.parametrize("images", [torch.zeros(2, 3, 4, 4), torch.zeros(3, 4, 4, dtype=torch.uint8),
                                    torch.zeros(0, 3, 4, 4, dtype=torch.uint8)], ids=["float", "3d", "empty"])
def test_images_of_another_type_or_shape_or_none_are_refused_saying_what_came(images: torch.Tensor) -> None:
    message = f"expected uint8 [N,C,H,W] images with N > 0, got {images.dtype} {tuple(images.shape)}"
    with pytest.raises(ValueError, match=re.escape(message)):
        fit_normalizer(images)

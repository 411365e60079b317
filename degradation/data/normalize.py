"""Input normalisation, fitted on the training split actually used (45k under holdout, never the test set).

Pixels are scaled to [0, 1] first. `mean_image` (the paper's choice) subtracts the per-pixel mean image and
nothing else; `channel` subtracts a per-channel mean and divides by a per-channel standard deviation (the
population std over every pixel of the training split). Sums are taken in exact integer arithmetic, so the
statistics do not depend on chunking or summation order. Both data paths (images in memory, image files) fit
through `IntegerSums` and apply the result through `Normalizer.affine`, so they normalise identically.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from degradation.errors import UsageError

MODES = ("mean_image", "channel")


@dataclass(frozen=True)
class Normalizer:
    """x_float = (x_uint8 / 255 - mean) * inv_std, with mean [C,H,W] and inv_std [C] (ones for mean_image)."""

    mode: str
    mean: torch.Tensor  # float32 [C, H, W], in [0, 1] units
    inv_std: torch.Tensor  # float32 [C]

    def affine(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(offset [C,H,W], scale [C]) with x_float = offset + x_uint8 * scale: the form the streams apply in one
        fused multiply-add (torch.addcmul) per batch."""
        inv_std = self.inv_std.float()
        return -self.mean.float() * inv_std.view(-1, 1, 1), inv_std / 255.0


@dataclass
class IntegerSums:
    """Exact running sums over uint8 [N,C,H,W] batches: per-pixel sums and per-channel sums of squares (int64; the
    squares through a 256-bin histogram per channel), so a fit in chunks equals a fit in one go."""

    total: torch.Tensor | None = None  # int64 [C,H,W]
    squares: torch.Tensor | None = None  # int64 [C]
    count: int = 0  # images

    def add(self, images: torch.Tensor) -> None:
        images = images.cpu()
        total = images.sum(dim=0, dtype=torch.int64)
        values = torch.arange(256, dtype=torch.int64)
        counts = [torch.bincount(images[:, ch].reshape(-1), minlength=256) for ch in range(images.shape[1])]
        squares = torch.stack([(count * values * values).sum() for count in counts])
        self.total = total if self.total is None else self.total + total
        self.squares = squares if self.squares is None else self.squares + squares
        self.count += images.shape[0]

    def normalizer(self, mode: str) -> Normalizer:
        """The statistics of everything added, for `mode` (mean_image or channel)."""
        if self.count == 0:
            raise ValueError("no images were added")
        assert self.total is not None and self.squares is not None  # set by the first add()
        pixel_mean = self.total.double() / (self.count * 255.0)  # [C,H,W]
        if mode == "mean_image":
            return Normalizer(mode, pixel_mean.float(), torch.ones(self.total.shape[0]))
        pixels = self.count * self.total.shape[1] * self.total.shape[2]
        channel_mean = self.total.double().sum(dim=(1, 2)) / pixels  # in 0..255 units
        variance = self.squares.double() / pixels - channel_mean**2
        std = variance.clamp_min(1e-12).sqrt() / 255.0
        mean = (channel_mean / 255.0).view(-1, 1, 1).expand_as(pixel_mean)
        return Normalizer(mode, mean.float().contiguous(), (1.0 / std).float())


def check_mode(mode: str) -> str:
    """`mode` if it is one of MODES, else a UsageError naming the choices."""
    if mode not in MODES:
        raise UsageError(f"data.normalize={mode!r}; choose mean_image or channel")
    return mode


def fit_normalizer(train_images: torch.Tensor, mode: str = "mean_image") -> Normalizer:
    """Statistics of uint8 [N,C,H,W] training images; a UsageError for an unknown mode, a ValueError for images of
    another type or shape, or none."""
    check_mode(mode)
    if train_images.dtype != torch.uint8 or train_images.ndim != 4 or train_images.shape[0] == 0:
        got = f"{train_images.dtype} {tuple(train_images.shape)}"
        raise ValueError(f"expected uint8 [N,C,H,W] images with N > 0, got {got}")
    sums = IntegerSums()
    sums.add(train_images)
    return sums.normalizer(mode)
